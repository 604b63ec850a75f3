#!/usr/bin/env node
// `make demo` (npm run demo): trace-operator end to end on this machine, for real.
//
//  1. runs `npm run setup` (hack/setup.ts: Debian packages, the control plane
//     and kubelet, the images from the Dockerfile; cached, seconds when done);
//  2. starts the local control plane with its real node, real-node-0
//     (kubelet + containerd on this machine, as `npm run cluster:up -- --real-node`);
//  3. installs the TraceJob CRD and starts the manager in the background
//     (log .cluster/logs/manager.log, pid .cluster/pids/manager.pid, so
//     `npm run cluster:down` stops it with the cluster), watching only the
//     demo's namespace, with the runner image built from the Dockerfile;
//  4. applies the biolatency sample for real-node-0: its trace pod runs the
//     runner image, and bpftrace traces this machine's block I/O while the
//     demo makes some (fsync'd writes);
//  5. waits until the TraceJob has Succeeded and shows its status.result and
//     the kept output ConfigMap.
//
// Nothing is simulated. Where a real trace cannot run (not root, no BPF, a
// missing package), the demo stops with the reason and what to do, and shows
// no result.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Histogram, TraceJob } from '../src/tracejob/index.ts';
import { up } from '../test/cluster/control-plane.ts';
import { REAL_NODE_NAME, upRealNode, type RealNodeInfo } from '../test/cluster/real-node.ts';
import { clusterPaths } from '../test/cluster/paths.ts';
import { logFile, startDetached, stopProcess, type ProcessDirs } from '../test/cluster/processes.ts';
import { kubectl } from '../test/support/cluster.ts';
import { eventually } from '../test/support/eventually.ts';
import { installCrd } from '../test/support/manager.ts';
import { getConfigMap, getTraceJob, sample, waitForTraceJob } from '../test/support/tracejobs.ts';
import { setup, SetupError } from './setup.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLE = path.join(root, 'config', 'samples', 'observe_v1alpha1_tracejob.yaml');
const NAME = 'biolatency';
const NAMESPACE = 'trace-operator-demo';
/** The sample's deadline, shortened so the demo does not wait its full minute. */
const TRACE_SECONDS = 20;
const paths = clusterPaths();
const dirs: ProcessDirs = { pids: path.join(paths.state, 'pids'), logs: paths.logs };

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const step = (text: string): void => say(`\n==> ${text}`);

async function must(args: string[], what: string, namespace?: string, input?: string): Promise<string> {
  const result = await kubectl(args, {
    ...(namespace === undefined ? {} : { namespace }),
    ...(input === undefined ? {} : { input }),
  });
  if (result.exitCode !== 0) throw new Error(`${what} failed (kubectl ${args.join(' ')}):\n${result.stderr}`);
  return result.stdout;
}

// ---- some block I/O for the trace to see ----

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

// ---- the manager ----

async function startManagerInBackground(node: RealNodeInfo): Promise<{ probes: string; metrics: string }> {
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
    // The runner image built from the Dockerfile and imported into the node's containerd: never pulled.
    `--default-image=${node.runnerImage}`,
    `--allowed-images=${node.runnerImage}`,
    '--image-pull-policy=Never',
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

/** The demo cannot trace here: says why and what to do; shows no result. */
class Stopped extends Error {}

async function main(): Promise<void> {
  const began = Date.now();
  say('trace-operator demo: a TraceJob from apply to its kept result, traced for real on this machine.');
  say(`The trace pod runs on ${REAL_NODE_NAME}, a real node (kubelet + containerd here), with the runner image`);
  say('built from the Dockerfile; bpftrace in it traces block I/O latency while the demo writes to disk.');

  step('Setup (npm run setup: packages, the control plane, the images; cached after the first run)');
  try {
    await setup((line) => say(`    ${line}`));
  } catch (error) {
    if (error instanceof SetupError) throw new Stopped(error.message);
    throw error;
  }

  step(`Starting the local control plane and the real node ${REAL_NODE_NAME} (npm run cluster:up -- --real-node)`);
  await up((line) => say(`    ${line}`), paths);
  const node = await upRealNode((line) => say(`    ${line}`), paths);

  step('Installing the TraceJob CRD');
  await installCrd();
  const created = await kubectl(['create', 'namespace', NAMESPACE]);
  if (created.exitCode !== 0 && !created.stderr.includes('AlreadyExists'))
    throw new Error(`could not create namespace ${NAMESPACE}: ${created.stderr}`);

  step(`Starting the manager in the background, for namespace ${NAMESPACE}`);
  const manager = await startManagerInBackground(node);
  say(
    `    log: ${path.relative(process.cwd(), logFile(dirs, 'manager'))}   metrics: http://${manager.metrics}/metrics   probes: http://${manager.probes}/readyz`,
  );
  say(`    runner image: ${node.runnerImage}`);

  // An earlier demo's TraceJob has finished; a finished trace never runs again, so start afresh.
  await must(
    ['delete', 'tracejob', NAME, '--ignore-not-found', '--wait=true'],
    'removing the previous demo TraceJob',
    NAMESPACE,
  );

  const tj = sample(path.basename(SAMPLE));
  tj.metadata.namespace = NAMESPACE;
  tj.spec.hostname = node.nodeName;
  tj.spec.deadline = TRACE_SECONDS;
  step(
    `Applying the biolatency sample (${path.relative(root, SAMPLE)}) with spec.hostname=${node.nodeName}, spec.deadline=${TRACE_SECONDS}`,
  );
  say(await must(['apply', '-f', '-'], 'applying the sample', NAMESPACE, JSON.stringify(tj)));
  const running = await waitForTraceJob(
    NAMESPACE,
    NAME,
    'runs or ends',
    (t) => ['Running', 'Succeeded', 'Failed'].includes(t.status?.phase ?? ''),
    180_000,
  );
  if (running.status?.phase === 'Failed') {
    for (const c of running.status.conditions ?? [])
      say(`  condition ${c.type}=${c.status} (${c.reason}): ${c.message}`);
    throw new Error(
      `the TraceJob failed before its trace ran (conditions above); see kubectl get events -n ${NAMESPACE} and ${logFile(dirs, 'manager')}`,
    );
  }
  const id = running.status?.id ?? '';
  say(await must(['get', 'tracejob', NAME, '-o', 'wide'], 'listing TraceJobs', NAMESPACE));
  say(`The operator created ConfigMap and Job kubectl-trace-${id}; the Job's pod runs on ${node.nodeName}:`);
  say(
    await must(
      ['get', 'configmap,job,pod', '-o', 'wide', '-l', `iovisor.org/kubectl-trace-id=${id}`],
      'listing the trace objects',
      NAMESPACE,
    ),
  );

  step(`Tracing for ${TRACE_SECONDS}s while writing to disk (64 KiB writes, each fsync'd)`);
  const io = new AbortController();
  const writing = makeBlockIo(io.signal);
  let done: TraceJob;
  try {
    done = await eventually(
      'the TraceJob has finished',
      async () => {
        const got = await getTraceJob(NAMESPACE, NAME);
        return got?.status?.phase === 'Succeeded' || got?.status?.phase === 'Failed' ? got : undefined;
      },
      (TRACE_SECONDS + 120) * 1000,
    );
  } finally {
    io.abort();
    await writing;
  }

  step('The TraceJob');
  say(await must(['get', 'tracejob', NAME, '-o', 'wide'], 'listing TraceJobs', NAMESPACE));
  if (done.status?.phase !== 'Succeeded') {
    for (const c of done.status?.conditions ?? []) say(`  condition ${c.type}=${c.status} (${c.reason}): ${c.message}`);
    throw new Error(
      `the TraceJob ended ${done.status?.phase ?? '?'}: see its conditions above, kubectl describe tracejob ${NAME} -n ${NAMESPACE}, and ${logFile(dirs, 'manager')}`,
    );
  }
  step(`Its status (kubectl get tracejob ${NAME} -n ${NAMESPACE} -o yaml)`);
  showStatus(done);
  const outputName = done.status?.output?.configMapName;
  if (outputName !== undefined) {
    step(`The kept output (ConfigMap ${outputName}, stays until the TraceJob is deleted)`);
    const output = await getConfigMap(NAMESPACE, outputName);
    say((output?.data?.['output.txt'] ?? '').replace(/\n+$/, ''));
  }
  say(`\nThe histogram is from bpftrace in the trace pod on ${node.nodeName}, tracing this machine's block I/O.`);
  say(`Done in ${Math.round((Date.now() - began) / 1000)}s. The manager and the node keep running. Try:`);
  say(`  export KUBECONFIG=${paths.kubeconfig}`);
  say(`  kubectl get tracejobs -n ${NAMESPACE}`);
  say(`  kubectl describe tracejob ${NAME} -n ${NAMESPACE}`);
  say('  npm run cluster:down     # stops the control plane, the real node and the manager');
}

try {
  await main();
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Stopped) {
    process.stderr.write(`\ndemo stopped: a real trace cannot run on this machine.\n${message}\n`);
    process.stderr.write('No trace was run, so there is no result to show.\n');
  } else {
    process.stderr.write(
      `\ndemo failed: ${message}\nNo result to show. npm run cluster:down stops what the demo started.\n`,
    );
  }
  process.exitCode = 1;
}
