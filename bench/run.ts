// npm run bench [-- --quick] [-- --sizes=100,1000 --fleet-sizes=20,200 --skip-runner --skip-cluster --skip-fleet --skip-stop ...]
//
// Measures the operator on the local control plane (npm run cluster:up) and
// the runner with real bpftrace, and prints tables whose figures are ratios
// against baselines measured in the same run: the operator against a plain
// client making the same writes (bench/ceiling.ts), the runner against
// bpftrace alone; and, on the real node, how long a stop takes by each path.
// A benchmark, not a test: it never fails on a number.
// bench/README.md explains each figure and records a run.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { KubeClient } from '../src/runtime/kube-client.ts';
import { benchClient, clusterProblem, deleteNamespaces, ensureCrd, leftoverNamespaces } from './lib/kube.ts';
import { loadAverage } from './lib/procfs.ts';
import { liveChildren } from './lib/processes.ts';
import { clusterReport, runnerReport, type SizeResult } from './lib/report.ts';
import {
  buildDist,
  outputThroughput,
  runnerProblem,
  runnerStartup,
  type StartupResult,
  type ThroughputPoint,
} from './lib/runner-bench.ts';
import { runCeiling, runOperator, runOperatorBurst, type ScenarioOptions } from './lib/scenario.ts';
import { deleteNodePools, fleetReport, runFleetSize, type FleetSizeResult } from './lib/fleet-bench.ts';
import { createMemoryCgroup, shippedMemoryLimit } from './lib/memory-limit.ts';
import { formatBytes, formatMs } from './lib/stats.ts';
import { runStopBench, stopBenchProblem, stopReport, type StopPathResult } from './lib/stop-bench.ts';
import { runWebhookBench, webhookReport, type WebhookBenchResult } from './lib/webhook-bench.ts';

const USAGE = `usage: npm run bench [-- flags]

  --quick                  N=100 only, short runner runs, 2 stops per path (a few minutes with a real node)
  --sizes=100,1000,10000   TraceJob counts to burst (default 100,1000,10000)
  --namespaces=4           namespaces the TraceJobs are spread over
  --create-concurrency=32  TraceJob creates in flight during a burst
  --concurrency=8          the manager's --concurrency, and the ceiling client's writes in flight
  --steady-seconds=30      steady-state window in which the settled manager's writes are counted
  --max-load-wait=120      before a burst of 1000 or more, wait up to this many seconds for the 1-minute load to fall under the number of CPUs
  --skip-cluster / --skip-runner / --skip-ceiling / --skip-webhook / --skip-fleet / --skip-stop
  --stops=10               traces stopped per stop path on the real node (fast path, then the ConfigMap fallback;
                           the fallback waits for the kubelet's pod sync, about a minute each: ~10 minutes at 10)
  --webhook-n=200          Alertmanager notifications posted to the trigger webhook (vs as many plain TraceJob creates)
  --fleet-sizes=20,200     kwok nodes a TraceTrigger fleet run selects (default 20,200; --quick: 20)
  --manager-src            run the manager from src/*.ts (Node strips the types: ~16 MiB more RSS) instead of
                           a dist/ compiled as the image does (the default)
  --no-memory-limit        run the manager (bursts, fleet, stop) unconstrained, not in a memory cgroup with the shipped limit
                           (config/manager/manager.yaml), which is what Node sizes its heap from in the pod
  --repeats=3              operator and ceiling bursts at each N below 10 000, alternating (ceiling, operator,
                           ceiling, then operator and ceiling again); the ratio is of their means. From 10 000 on:
                           --repeats-large=1. --quick: 1 (and no ceiling after the operator)
  --restarts=3             restarts of the manager over each size's settled TraceJobs; the median /readyz is reported
                           (--quick: 1)
  --restart-node-options='--max-old-space-size=256'
                           one more restart of the manager with these node flags (an experiment; none by default)
  --burst-cpu-prof         profile the CPU of the manager and of the ceiling client through each burst (first create
                           to last reconciled) into .cpuprofile files in the run directory (the profiler costs some CPU)
  --json=FILE              also write every figure as JSON
`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    sizes: { type: 'string' },
    namespaces: { type: 'string' },
    'create-concurrency': { type: 'string' },
    concurrency: { type: 'string' },
    'steady-seconds': { type: 'string' },
    'max-load-wait': { type: 'string' },
    'skip-cluster': { type: 'boolean' },
    'skip-runner': { type: 'boolean' },
    'skip-ceiling': { type: 'boolean' },
    'skip-webhook': { type: 'boolean' },
    'webhook-n': { type: 'string' },
    'skip-fleet': { type: 'boolean' },
    'skip-stop': { type: 'boolean' },
    stops: { type: 'string' },
    'fleet-sizes': { type: 'string' },
    restarts: { type: 'string' },
    repeats: { type: 'string' },
    'repeats-large': { type: 'string' },
    'restart-node-options': { type: 'string' },
    'burst-cpu-prof': { type: 'boolean' },
    'manager-src': { type: 'boolean' },
    'no-memory-limit': { type: 'boolean' },
    json: { type: 'string' },
    help: { type: 'boolean' },
  },
  strict: true,
});
if (values.help === true) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const quick = values.quick === true;
const int = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`bench: --${name} must be a whole number, got '${text}'\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
const sizes =
  values.sizes === undefined
    ? quick
      ? [100]
      : [100, 1000, 10_000]
    : values.sizes
        .split(',')
        .map((s) => int('sizes', s.trim(), 0))
        .filter((n) => n > 0);
const fleetSizes =
  values['fleet-sizes'] === undefined
    ? quick
      ? [20]
      : [20, 200]
    : values['fleet-sizes']
        .split(',')
        .map((s) => int('fleet-sizes', s.trim(), 0))
        .filter((n) => n > 0);
const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

const started = performance.now();
const runId = randomBytes(2).toString('hex');
const runDir = await mkdtemp(path.join(os.tmpdir(), `trace-operator-bench-${runId}-`));
const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), ${formatBytes(os.totalmem())} RAM, Linux ${os.release()}, node ${process.version}`;
log(`run ${runId}: ${machine}; load ${loadAverage().join(' ')}; logs and raw figures in ${runDir}`);

// Made on first use: without a kubeconfig the cluster parts say why they are skipped, and the runner part still runs.
let kube: KubeClient | undefined;
const client = (): KubeClient => (kube ??= benchClient(64));
let interrupted = false;
async function sweep(): Promise<void> {
  if (kube === undefined) return;
  const mine = (await leftoverNamespaces(client()).catch(() => [] as string[])).filter((ns) =>
    ns.startsWith(`bench-${runId}-`),
  );
  if (mine.length > 0) await deleteNamespaces(client(), mine).catch(() => undefined);
}
process.once('SIGINT', () => {
  interrupted = true;
  log("interrupted: stopping the manager/ceiling and deleting this run's namespaces");
  for (const child of liveChildren) child.kill('SIGKILL');
  void Promise.all([
    sweep(),
    (kube === undefined ? Promise.resolve() : deleteNodePools(kube, runId)).catch(() => undefined),
  ]).finally(() => process.exit(130));
});

// ---- runner ----
let startup: StartupResult | undefined;
let points: ThroughputPoint[] = [];
let runnerSkipped: string | undefined =
  values['skip-runner'] === true ? 'skipped (--skip-runner)' : await runnerProblem();
const runnerLoad = loadAverage();
if (runnerSkipped === undefined) {
  try {
    log('runner: compiling dist/ (as the image does) into the run directory');
    const distCli = await buildDist(path.join(runDir, 'build'));
    log('runner: start-up');
    startup = await runnerStartup({ runs: quick ? 3 : 7, distCli, dir: runDir });
    log('runner: output throughput');
    const floodDir = await mkdtemp(path.join(os.tmpdir(), 'trace-operator-bench-flood-'));
    try {
      points = await outputThroughput({
        dir: floodDir,
        perTick: quick ? [20, 200] : [10, 20, 50, 75, 100, 150, 200, 500, 1000],
        seconds: quick ? 1 : 3,
      });
    } finally {
      await rm(floodDir, { recursive: true, force: true });
    }
  } catch (error) {
    runnerSkipped = `failed: ${error instanceof Error ? error.message : String(error)}`;
    log(`runner: ${runnerSkipped}`);
  }
}

// ---- cluster ----
const results: SizeResult[] = [];
let clusterSkipped: string | undefined =
  values['skip-cluster'] === true ? 'skipped (--skip-cluster)' : await clusterProblem(client);
const scenario: ScenarioOptions = {
  get client() {
    return client();
  },
  runId,
  runDir,
  namespaces: Math.max(1, int('namespaces', values.namespaces, 4)),
  createConcurrency: Math.max(1, int('create-concurrency', values['create-concurrency'], 32)),
  concurrency: Math.max(1, int('concurrency', values.concurrency, 8)),
  steadySeconds: int('steady-seconds', values['steady-seconds'], quick ? 10 : 30),
  restartQuietSeconds: quick ? 3 : 5,
  restarts: Math.max(1, int('restarts', values.restarts, quick ? 1 : 3)),
  ...(values['restart-node-options'] === undefined
    ? {}
    : { restartNodeOptions: values['restart-node-options'].split(/\s+/).filter((o) => o !== '') }),
  skipCeiling: values['skip-ceiling'] === true,
  burstCpuProfile: values['burst-cpu-prof'] === true,
  log,
};
const managerMemory = ((): string => {
  if (values['no-memory-limit'] === true) return 'unconstrained (--no-memory-limit)';
  const cgroup = createMemoryCgroup('trace-operator-bench-', runId, shippedMemoryLimit());
  if ('unavailable' in cgroup) return `unconstrained (${cgroup.unavailable})`;
  scenario.managerCgroup = cgroup;
  return `in a memory cgroup limited to ${cgroup.limit}, the shipped limit`;
})();
const maxLoadWait = int('max-load-wait', values['max-load-wait'], quick ? 0 : 120);
// One ceiling run drifted as much as the gap it measured (bench/README.md, 2026-12-04): short bursts
// alternate several times; a 10 000 burst takes minutes and varies less.
const LARGE = 10_000;
const repeats = (n: number): number =>
  quick
    ? 1
    : Math.max(1, n < LARGE ? int('repeats', values.repeats, 3) : int('repeats-large', values['repeats-large'], 1));

async function waitForQuiet(n: number): Promise<void> {
  if (n < 1000 || maxLoadWait === 0) return;
  const until = performance.now() + maxLoadWait * 1000;
  // The idle control plane alone keeps the load near 1; more than one waiting task per CPU means other work is running.
  const limit = os.cpus().length;
  while (loadAverage()[0] > limit && performance.now() < until) {
    log(
      `load ${loadAverage()[0]} (1 min) on this shared machine; waiting up to ${maxLoadWait}s for it to fall under ${limit} before the N=${n} burst`,
    );
    await sleep(15_000);
  }
}

if (clusterSkipped === undefined) {
  try {
    if (values['manager-src'] !== true) {
      log('operator: compiling dist/ (as the image does) for the manager');
      scenario.managerCli = await buildDist(path.join(runDir, 'manager-build'));
    }
    await ensureCrd(client());
    const old = (await leftoverNamespaces(client())).filter((ns) => !ns.startsWith(`bench-${runId}-`));
    if (old.length > 0) {
      log(`deleting ${old.length} namespaces left by earlier bench runs: ${old.join(', ')}`);
      await deleteNamespaces(client(), old);
    }
    for (const n of sizes) {
      if (interrupted) break;
      const sizeStarted = performance.now();
      const result: SizeResult = { n, seconds: 0 };
      results.push(result);
      if (scenario.skipCeiling !== true) {
        await waitForQuiet(n);
        log(`N=${n}: ceiling (a plain client making the same writes, ${scenario.concurrency} in flight)`);
        result.ceiling = await runCeiling(scenario, n);
      }
      await waitForQuiet(n);
      log(`N=${n}: operator (the manager, --concurrency=${scenario.concurrency})`);
      result.operator = await runOperator(scenario, n);
      if (!quick && !interrupted && scenario.skipCeiling !== true) {
        log(`N=${n}: ceiling again, to see drift on the shared machine`);
        result.ceilingAfter = await runCeiling(scenario, n);
      }
      for (let i = 2; i <= repeats(n) && !interrupted && scenario.skipCeiling !== true; i++) {
        await waitForQuiet(n);
        log(`N=${n}: operator again (its burst only), ${i} of ${repeats(n)}`);
        (result.operatorRepeats ??= []).push(await runOperatorBurst(scenario, n));
        await waitForQuiet(n);
        log(`N=${n}: ceiling again, ${i} of ${repeats(n)}`);
        (result.ceilingRepeats ??= []).push(await runCeiling(scenario, n));
      }
      result.seconds = (performance.now() - sizeStarted) / 1000;
      log(`N=${n}: done in ${formatMs(result.seconds * 1000)}`);
    }
  } catch (error) {
    clusterSkipped = `failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    log(`cluster: ${clusterSkipped}`);
  } finally {
    await sweep();
  }
}
// ---- fleet (TraceTrigger fan-out against direct creates) ----
const fleetResults: FleetSizeResult[] = [];
let fleetSkipped: string | undefined =
  values['skip-fleet'] === true
    ? 'skipped (--skip-fleet)'
    : fleetSizes.length === 0
      ? 'skipped (no --fleet-sizes)'
      : await clusterProblem(client);
if (fleetSkipped === undefined && !interrupted) {
  try {
    if (values['manager-src'] !== true && scenario.managerCli === undefined) {
      log('fleet: compiling dist/ (as the image does) for the manager');
      scenario.managerCli = await buildDist(path.join(runDir, 'manager-build'));
    }
    await ensureCrd(client());
    for (const n of fleetSizes) {
      if (interrupted) break;
      fleetResults.push(
        await runFleetSize(
          {
            client: client(),
            runId,
            runDir,
            createConcurrency: scenario.createConcurrency,
            concurrency: scenario.concurrency,
            ...(scenario.managerCli === undefined ? {} : { managerCli: scenario.managerCli }),
            ...(scenario.managerCgroup === undefined ? {} : { managerCgroup: scenario.managerCgroup }),
            log,
          },
          n,
        ),
      );
    }
  } catch (error) {
    fleetSkipped = `failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    log(`fleet: ${fleetSkipped}`);
  } finally {
    await sweep();
  }
}
// ---- webhook (issue 13: alert-triggered tracing) ----
let webhook: WebhookBenchResult | undefined;
let webhookSkipped: string | undefined =
  values['skip-webhook'] === true
    ? 'skipped (--skip-webhook)'
    : interrupted
      ? 'interrupted'
      : await clusterProblem(client);
if (webhookSkipped === undefined) {
  try {
    webhook = await runWebhookBench(client(), {
      n: Math.max(1, int('webhook-n', values['webhook-n'], quick ? 50 : 200)),
      concurrency: scenario.concurrency,
      log,
    });
  } catch (error) {
    webhookSkipped = `failed: ${error instanceof Error ? error.message : String(error)}`;
    log(`webhook: ${webhookSkipped}`);
  }
}
// ---- stop latency on the real node (issue 18) ----
let stopResults: StopPathResult[] = [];
let stopSkipped: string | undefined =
  values['skip-stop'] === true
    ? 'skipped (--skip-stop)'
    : interrupted
      ? 'interrupted'
      : ((await clusterProblem(client)) ?? (await stopBenchProblem()));
if (stopSkipped === undefined) {
  try {
    if (values['manager-src'] !== true && scenario.managerCli === undefined) {
      log('stop: compiling dist/ (as the image does) for the manager');
      scenario.managerCli = await buildDist(path.join(runDir, 'manager-build'));
    }
    await ensureCrd(client());
    stopResults = await runStopBench({
      client: client(),
      runId,
      runDir,
      managerCli: scenario.managerCli,
      managerCgroup: scenario.managerCgroup,
      stops: Math.max(1, int('stops', values.stops, quick ? 2 : 10)),
      log,
    });
  } catch (error) {
    stopSkipped = `failed: ${error instanceof Error ? error.message : String(error)}`;
    log(`stop: ${stopSkipped}`);
  } finally {
    await sweep();
  }
}
kube?.close();
scenario.managerCgroup?.remove();

// ---- report ----
const total = (performance.now() - started) / 1000;
const lines: string[] = [];
lines.push(
  `trace-operator bench ${quick ? '--quick ' : ''}— ${new Date().toISOString()} — ${machine} — ${formatMs(total * 1000)}`,
);
lines.push('');
if (clusterSkipped === undefined && sizes.length === 0) lines.push('Cluster benchmark: skipped (no --sizes)', '');
if (results.length > 0) {
  lines.push(
    `Cluster: the local control plane (test/cluster), kwok-node-0/1; TraceJobs round-robin over ${scenario.namespaces} namespaces and both nodes; creates ${scenario.createConcurrency} in flight; manager --concurrency=${scenario.concurrency} ${managerMemory}, ceiling ${scenario.concurrency} in flight. Load (1/5/15 min) at each burst: ${results.map((r) => `N=${r.n} ${r.operator?.load.join('/') ?? '?'}`).join(', ')}`,
  );
  lines.push('');
  lines.push(clusterReport(results));
  lines.push('');
}
if (clusterSkipped !== undefined) lines.push(`Cluster benchmark: ${clusterSkipped}`, '');
if (fleetResults.length > 0)
  lines.push(
    `Fleet: a TraceTrigger whose nodeSelector selects N Ready kwok nodes, fired by a new observe.alexeldeib.xyz/fire value, against the bench creating the same N TraceJobs (the template, one per node; ${scenario.createConcurrency} in flight); one manager per N (--concurrency=${scenario.concurrency}), one run per side`,
    '',
    fleetReport(fleetResults),
    '',
  );
if (fleetSkipped !== undefined) lines.push(`Fleet benchmark: ${fleetSkipped}`, '');
if (runnerSkipped === undefined)
  lines.push(`Runner (load ${runnerLoad.join('/')} when it started)`, '', runnerReport(startup, points));
else lines.push(`Runner benchmark: ${runnerSkipped}`);
if (webhook !== undefined)
  lines.push(
    '',
    `Alertmanager webhook (${webhook.concurrency} in flight) against plain TraceJob creates`,
    '',
    webhookReport(webhook),
  );
else lines.push('', `Webhook benchmark: ${webhookSkipped ?? 'not run'}`);
if (stopResults.length > 0)
  lines.push(
    '',
    "Stop latency on the real node: spec.stop set → the runner finished (status.result.finishedAt); one trace stopped at a time, the kubelet's stock syncFrequency (1m)",
    '',
    stopReport(stopResults),
  );
else lines.push('', `Stop benchmark: ${stopSkipped ?? 'not run'}`);
lines.push('', `Manager logs and raw figures: ${runDir}`);
process.stdout.write(`${lines.join('\n')}\n`);

const raw = {
  date: new Date().toISOString(),
  machine,
  managerMemory,
  quick,
  totalSeconds: total,
  sizes: results,
  runner: { startup, throughput: points, skipped: runnerSkipped },
  clusterSkipped,
  webhook,
  fleet: { sizes: fleetResults, skipped: fleetSkipped },
  stop: { paths: stopResults, skipped: stopSkipped },
};
writeFileSync(path.join(runDir, 'results.json'), JSON.stringify(raw, null, 2));
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(raw, null, 2));
