#!/usr/bin/env node
// `make demo` (npm run demo): trace-operator end to end on this machine.
//
//  1. starts the local control plane (as `npm run cluster:up`: etcd, the API
//     server, controller manager and scheduler, and kwok's simulated nodes);
//  2. installs the TraceJob CRD and starts the manager in the background
//     (log .cluster/logs/manager.log, pid .cluster/pids/manager.pid, so
//     `npm run cluster:down` stops it with the cluster), watching only the
//     demo's namespace;
//  3. meanwhile runs the biolatency sample with the real bpftrace here
//     (`trace-operator run-local`, as root), to have a real trace output;
//  4. applies the sample, waits until its trace pod runs on kwok-node-0,
//     then plays the end of that pod as a kubelet would report it: the
//     output from step 3 becomes the pod's log and its termination message;
//  5. waits until the TraceJob has Succeeded and shows what it kept.
//
// What is simulated: the node and the trace pod are kwok's, so no bpftrace
// runs inside the cluster; the output is from a real bpftrace run on this
// machine (or, where bpftrace cannot run or with --canned, a canned one, and
// the demo says so).
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseRunnerOutput, stripResultLine } from '../src/runner/result-parse.ts';
import type { Histogram, TraceJob, TraceResult } from '../src/tracejob/index.ts';
import { up } from '../test/cluster/control-plane.ts';
import { clusterPaths } from '../test/cluster/paths.ts';
import { logFile, startDetached, stopProcess, type ProcessDirs } from '../test/cluster/processes.ts';
import { kubectl } from '../test/support/cluster.ts';
import { eventually } from '../test/support/eventually.ts';
import { installCrd } from '../test/support/manager.ts';
import { finishTracePod } from '../test/support/trace-pod.ts';
import { getConfigMap, getTraceJob, waitForPhase, waitForTracePod } from '../test/support/tracejobs.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLE = path.join(root, 'config', 'samples', 'observe_v1alpha1_tracejob.yaml');
const NAME = 'biolatency';
const NAMESPACE = 'trace-operator-demo';
const TRACE_SECONDS = 5;
const paths = clusterPaths();
const dirs: ProcessDirs = { pids: path.join(paths.state, 'pids'), logs: paths.logs };

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const step = (text: string): void => say(`\n==> ${text}`);

async function must(args: string[], what: string, namespace?: string): Promise<string> {
  const result = await kubectl(args, namespace === undefined ? {} : { namespace });
  if (result.exitCode !== 0) throw new Error(`${what} failed (kubectl ${args.join(' ')}):\n${result.stderr}`);
  return result.stdout;
}

// ---- the real trace: run-local with bpftrace on this machine ----

interface LocalTrace {
  text: string;
  result: TraceResult;
  /** Why the canned output is used, when it is. */
  canned?: string;
}

const CANNED_TEXT = [
  'Attaching 4 probes...',
  'Tracing block device I/O latency... Hit Ctrl-C to end.',
  '',
  '',
  '@usecs:',
  '[64, 128)             12 |@@@                                                 |',
  '[128, 256)            95 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |',
  '[256, 512)           187 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|',
  '[512, 1K)             41 |@@@@@@@@@@@                                         |',
  '[1K, 2K)               3 |                                                    |',
  '',
].join('\n');
const CANNED_RESULT: TraceResult = {
  outcome: 'DeadlineReached',
  exitCode: 0,
  maps: [
    {
      name: '@usecs',
      kind: 'histogram',
      histograms: [
        {
          buckets: [
            { low: 64, high: 128, count: 12 },
            { low: 128, high: 256, count: 95 },
            { low: 256, high: 512, count: 187 },
            { low: 512, high: 1024, count: 41 },
            { low: 1024, high: 2048, count: 3 },
          ],
          total: 338,
          p50: 512,
          p90: 1024,
          p99: 2048,
        },
      ],
    },
  ],
  truncated: false,
};

/** Writes and fsyncs a small file now and then, so the block tracepoints see some I/O. */
async function makeBlockIo(signal: AbortSignal): Promise<void> {
  const file = path.join(paths.state, 'demo-io.tmp');
  const handle = await open(file, 'w');
  try {
    const block = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; !signal.aborted; i++) {
      await handle.write(block, 0, block.length, (i % 64) * block.length);
      await handle.sync();
      await sleep(20);
    }
  } finally {
    await handle.close();
    await rm(file, { force: true });
  }
}

async function runLocalTrace(): Promise<LocalTrace> {
  const canned = (why: string): LocalTrace => ({ text: CANNED_TEXT, result: CANNED_RESULT, canned: why });
  if (process.argv.includes('--canned')) return canned('asked for with --canned');
  if (process.getuid?.() !== 0)
    return canned('bpftrace needs root to load BPF programs, and this demo does not run as root');
  const io = new AbortController();
  const writing = makeBlockIo(io.signal).catch(() => undefined);
  try {
    const child = spawn(
      process.execPath,
      [path.join(root, 'src', 'cli.ts'), 'run-local', '-f', SAMPLE, `--deadline=${TRACE_SECONDS}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number>((resolve) => {
      child.on('error', () => resolve(-1));
      child.on('close', (exit) => resolve(exit ?? -1));
    });
    const result = parseRunnerOutput(stdout);
    if (code !== 0 || result === undefined)
      return canned(
        `the real bpftrace run failed (exit ${code}): ${(result?.message ?? stderr.trim().split('\n').at(-1)) || 'no result'}`,
      );
    return { text: stripResultLine(stdout), result };
  } finally {
    io.abort();
    await writing;
  }
}

// ---- the manager ----

async function startManagerInBackground(): Promise<{ probes: string; metrics: string }> {
  // A manager from an earlier demo runs older code or an older cluster's kubeconfig: replace it.
  await stopProcess(dirs, 'manager');
  await mkdir(paths.logs, { recursive: true });
  const log = logFile(dirs, 'manager');
  await rm(log, { force: true });
  const pid = await startDetached(dirs, 'manager', process.execPath, [
    path.join(root, 'src', 'cli.ts'),
    'manager',
    `--kubeconfig=${paths.kubeconfig}`,
    `--watch-namespaces=${NAMESPACE}`,
    `--namespaces=${NAMESPACE}`,
    `--leader-election-namespace=${NAMESPACE}`,
    '--metrics-bind-address=127.0.0.1:0',
    '--health-probe-bind-address=127.0.0.1:0',
  ]);
  const started = await eventually(
    'the manager logs its addresses',
    async () => {
      try {
        process.kill(pid, 0);
      } catch {
        throw new Error(`the manager exited at start; see ${log}`);
      }
      const line = (await readFile(log, 'utf8').catch(() => ''))
        .split('\n')
        .find((l) => l.includes('"manager starting"'));
      return line === undefined ? undefined : (JSON.parse(line) as { probes: string; metrics: string });
    },
    30_000,
  );
  await eventually(
    'the manager is ready',
    async () => ((await fetch(`http://${started.probes}/readyz`)).ok ? true : undefined),
    30_000,
  );
  return started;
}

// ---- showing the result ----

function bound(n: number | undefined): string {
  if (n === undefined) return '';
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}M`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}

function showHistogram(name: string, h: Histogram): void {
  const max = Math.max(1, ...h.buckets.map((b) => b.count));
  say(`  ${name}${h.key === undefined ? '' : `[${h.key}]`} (microseconds), ${h.total} I/Os`);
  for (const b of h.buckets) {
    const label = `[${bound(b.low)}, ${bound(b.high)})`;
    say(
      `    ${label.padEnd(14)} ${String(b.count).padStart(7)} |${'@'.repeat(Math.round((b.count / max) * 40)).padEnd(40)}|`,
    );
  }
  say(`    p50 <= ${h.p50 ?? '?'} us   p90 <= ${h.p90 ?? '?'} us   p99 <= ${h.p99 ?? '?'} us`);
}

function showStatus(tj: TraceJob): void {
  const s = tj.status;
  say(`  id:       ${s?.id ?? ''}`);
  say(`  node:     ${s?.node ?? ''}`);
  say(`  phase:    ${s?.phase ?? ''}`);
  say(`  outcome:  ${s?.result?.outcome ?? ''}`);
  for (const c of s?.conditions ?? []) say(`  condition ${c.type}=${c.status} (${c.reason}): ${c.message}`);
  for (const map of s?.result?.maps ?? []) {
    if (map.kind === 'histogram') for (const h of map.histograms ?? []) showHistogram(map.name, h);
    else if (map.kind === 'scalar') say(`  ${map.name}: ${map.value ?? ''}`);
    else for (const e of map.entries ?? []) say(`  ${map.name}[${e.key}]: ${e.value}`);
  }
  if ((s?.result?.maps ?? []).length === 0) say('  (no maps: bpftrace saw no block I/O during the trace)');
}

// ---- the demo ----

async function main(): Promise<void> {
  const began = Date.now();
  say('trace-operator demo: a TraceJob from apply to its kept result, on a local control plane.');
  say("Simulated: the node kwok-node-0 and the trace pod are kwok's (no bpftrace runs in the cluster).");
  say('Real: the API server, controllers and scheduler, the operator, and the trace output, which comes');
  say(`from the same sample program run with bpftrace on this machine for ${TRACE_SECONDS}s.`);

  const localTrace = runLocalTrace();

  step('Starting the local control plane (npm run cluster:up)');
  await up((line) => say(`    ${line}`), paths);

  step('Installing the TraceJob CRD');
  await installCrd();
  const created = await kubectl(['create', 'namespace', NAMESPACE]);
  if (created.exitCode !== 0 && !created.stderr.includes('AlreadyExists'))
    throw new Error(`could not create namespace ${NAMESPACE}: ${created.stderr}`);

  step(`Starting the manager in the background, for namespace ${NAMESPACE}`);
  const manager = await startManagerInBackground();
  say(
    `    log: ${path.relative(process.cwd(), logFile(dirs, 'manager'))}   metrics: http://${manager.metrics}/metrics   probes: http://${manager.probes}/readyz`,
  );

  // An earlier demo's TraceJob has finished; a finished trace never runs again, so start afresh.
  await must(
    ['delete', 'tracejob', NAME, '--ignore-not-found', '--wait=true'],
    'removing the previous demo TraceJob',
    NAMESPACE,
  );

  step(`Applying the biolatency sample (${path.relative(root, SAMPLE)}, node kwok-node-0)`);
  say(await must(['apply', '-f', SAMPLE], 'applying the sample', NAMESPACE));
  const running = await waitForPhase(NAMESPACE, NAME, 'Running');
  const id = running.status?.id ?? '';
  const pod = await waitForTracePod(NAMESPACE, id);
  say(await must(['get', 'tracejob', NAME, '-o', 'wide'], 'listing TraceJobs', NAMESPACE));
  say(
    `The operator created ConfigMap and Job kubectl-trace-${id}; the Job's pod runs on ${pod.spec?.nodeName ?? '?'}:`,
  );
  say(
    await must(
      ['get', 'configmap,job,pod', '-l', `iovisor.org/kubectl-trace-id=${id}`],
      'listing the trace objects',
      NAMESPACE,
    ),
  );

  step(`Waiting for the trace output: the sample program under bpftrace on this machine (${TRACE_SECONDS}s)`);
  const trace = await localTrace;
  if (trace.canned === undefined)
    say(`    bpftrace ran the sample program here: ${trace.result.outcome}, exit code ${trace.result.exitCode}.`);
  else say(`    NOT a real trace: ${trace.canned}; using a canned biolatency output instead.`);

  step('Ending the trace pod as its node would (simulated by kwok): its log and termination message');
  await finishTracePod(
    NAMESPACE,
    { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
    { exitCode: trace.result.exitCode, text: trace.text, result: trace.result },
  );
  const done = await eventually('the TraceJob has finished', async () => {
    const tj = await getTraceJob(NAMESPACE, NAME);
    return tj?.status?.phase === 'Succeeded' || tj?.status?.phase === 'Failed' ? tj : undefined;
  });

  step('The TraceJob');
  say(await must(['get', 'tracejob', NAME, '-o', 'wide'], 'listing TraceJobs', NAMESPACE));
  step(`Its status (kubectl get tracejob ${NAME} -n ${NAMESPACE} -o yaml)`);
  showStatus(done);
  const outputName = done.status?.output?.configMapName;
  if (outputName !== undefined) {
    step(`The kept output (ConfigMap ${outputName}, stays until the TraceJob is deleted)`);
    const output = await getConfigMap(NAMESPACE, outputName);
    say((output?.data?.['output.txt'] ?? '').replace(/\n+$/, ''));
  }
  say(
    `\n${trace.canned === undefined ? 'The histogram is from a real bpftrace run on this machine' : `The histogram is CANNED (${trace.canned})`}; the node and pod were simulated by kwok.`,
  );
  say(`Done in ${Math.round((Date.now() - began) / 1000)}s. The manager keeps running. Try:`);
  say(`  export KUBECONFIG=${paths.kubeconfig}`);
  say(`  kubectl get tracejobs -n ${NAMESPACE}`);
  say(`  kubectl describe tracejob ${NAME} -n ${NAMESPACE}`);
  say('  npm run cluster:down     # stops the control plane and the manager');
  if (done.status?.phase !== 'Succeeded')
    throw new Error(`the TraceJob ended ${done.status?.phase ?? '?'}: see ${logFile(dirs, 'manager')}`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
