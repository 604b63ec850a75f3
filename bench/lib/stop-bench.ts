// Stop latency on the real node: how long from setting spec.stop until the
// trace's runner has finished (bpftrace printed its maps and exited; the
// runner writes status.result.finishedAt, in milliseconds, as it exits, on
// this machine's clock) for each path a stop can take:
//   exec       the fast path: the manager runs `trace-operator stop --request`
//              in the trace container through pods/exec;
//   configmap  the fallback (a manager with --stop-exec=false): the runner
//              sees the program ConfigMap's stop key once the kubelet syncs the
//              pod, at its stock syncFrequency of a minute.
// Each path traces `stops` ticking programs at once on the real node, waits
// until all are attached and 20 s more, then stops them one after another. A benchmark, not a
// test: it reports, it never fails on a number.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient } from '../../src/runtime/kube-client.ts';
import { resourcePath } from '../../src/runtime/kube-client.ts';
import { traceJobPath } from '../../src/controller/tracejob-kube-api.ts';
import { API_GROUP_VERSION, KIND, TRACE_ID_LABEL_KEY, type TraceJob } from '../../src/tracejob/index.ts';
import { readRealNodeInfo, type RealNodeInfo } from '../../test/cluster/real-node.ts';
import { createNamespaces, deleteNamespaces, paths } from './kube.ts';
import type { MemoryCgroup } from './memory-limit.ts';
import { ManagerProcess } from './processes.ts';
import { loadAverage } from './procfs.ts';
import { formatMs, formatRatio, quantile, ratio, renderTable } from './stats.ts';

export type StopPath = 'exec' | 'configmap';

export interface StopPathResult {
  path: StopPath;
  /** Per stopped trace: spec.stop set → the runner finished, in ms. */
  latenciesMs: number[];
  /** Traces that did not end Stopped, with why. */
  failures: string[];
  /** The StopRequested reasons the traces ended with (StopDelivered, StopWaitsForKubelet). */
  reasons: string[];
  /** The 1/5/15-minute load when the first stop was sent. */
  load: number[];
}

export interface StopBenchOptions {
  client: KubeClient;
  runId: string;
  runDir: string;
  managerCli?: string | undefined;
  /** The memory cgroup the manager runs in (the shipped limit), as in the bursts. */
  managerCgroup?: MemoryCgroup | undefined;
  stops: number;
  log: (line: string) => void;
}

const TICKS = 'interval:ms:100 { @ticks = count(); }';
const SETTLE_MS = 20_000;

/** Why the stop benchmark cannot run here, or undefined. */
export async function stopBenchProblem(): Promise<string | undefined> {
  return (await readRealNodeInfo(paths)) === undefined
    ? 'skipped (no real node: `npm run cluster:up -- --real-node` starts one)'
    : undefined;
}

async function getTraceJob(client: KubeClient, ns: string, name: string): Promise<TraceJob> {
  return client.get<TraceJob>(traceJobPath(ns, name));
}

/** Polls until `check` gives a value or `timeoutMs` passes. */
async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s`);
    await sleep(100);
  }
}

/** Waits until the trace's container runs bpftrace with its probes attached (its log says "Attaching"). */
async function attached(client: KubeClient, ns: string, name: string): Promise<void> {
  const id = await until(`${name} gets an id`, 120_000, async () => (await getTraceJob(client, ns, name)).status?.id);
  await until(`${name} attaches`, 180_000, async () => {
    const pods = await client.list<V1Pod>(resourcePath({ version: 'v1', plural: 'pods', namespace: ns }), {
      labelSelector: `${TRACE_ID_LABEL_KEY}=${id}`,
    });
    const pod = pods.items.find((p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
    if (pod === undefined) return undefined;
    const log = await client
      .getLog(resourcePath({ version: 'v1', plural: 'pods', namespace: ns, name: pod.metadata?.name ?? '' }))
      .catch(() => '');
    return log.includes('Attaching') ? true : undefined;
  });
}

async function measurePath(options: StopBenchOptions, node: RealNodeInfo, stopPath: StopPath): Promise<StopPathResult> {
  const { client, log } = options;
  const ns = `bench-${options.runId}-stop-${stopPath}`;
  await createNamespaces(client, [ns], { 'trace-operator-bench/run': options.runId });
  const manager = await ManagerProcess.start({
    kubeconfig: paths.kubeconfig,
    namespaces: [ns],
    concurrency: 4,
    logFile: path.join(options.runDir, `manager-stop-${stopPath}.log`),
    leaseName: `trace-operator-bench-stop-${stopPath}`,
    ...(options.managerCli === undefined ? {} : { cli: options.managerCli }),
    ...(options.managerCgroup === undefined ? {} : { memoryCgroup: options.managerCgroup }),
    args: [
      `--default-image=${node.runnerImage}`,
      `--allowed-images=${node.runnerImage}`,
      '--image-pull-policy=Never',
      `--stop-exec=${stopPath === 'exec'}`,
    ],
  });
  const result: StopPathResult = { path: stopPath, latenciesMs: [], failures: [], reasons: [], load: [] };
  try {
    await manager.leading();
    const names = Array.from({ length: options.stops }, (_, i) => `stop-${i}`);
    for (const name of names) {
      await client.create(traceJobPath(ns), {
        apiVersion: API_GROUP_VERSION,
        kind: KIND,
        metadata: { name, namespace: ns },
        spec: { hostname: node.nodeName, deadline: 900, program: TICKS },
      });
    }
    log(`stop (${stopPath}): ${names.length} traces on ${node.nodeName}; waiting until all are attached`);
    await Promise.all(names.map((name) => attached(client, ns, name)));
    // Past the kubelet's syncs of a starting pod, so that a fallback stop waits for a periodic one, as on a long trace.
    await sleep(SETTLE_MS);
    result.load = loadAverage();
    for (const name of names) {
      const stoppedAt = Date.now();
      await client.patch(traceJobPath(ns, name), { spec: { stop: true } }, 'merge');
      // One at a time, as a person or an alert would: the next stop waits until this trace has ended.
      const done = await until(`${name} ends`, 300_000, async () => {
        const tj = await getTraceJob(client, ns, name);
        return tj.status?.phase === 'Succeeded' || tj.status?.phase === 'Failed' ? tj : undefined;
      });
      const finished = Date.parse(done.status?.result?.finishedAt ?? '');
      const reason = done.status?.conditions?.find((c) => c.type === 'StopRequested')?.reason ?? '(none)';
      result.reasons.push(reason);
      if (done.status?.result?.outcome !== 'Stopped' || Number.isNaN(finished))
        result.failures.push(`${name}: ${done.status?.phase} ${done.status?.result?.outcome ?? 'no result'}`);
      else result.latenciesMs.push(finished - stoppedAt);
      log(`stop (${stopPath}): ${name} ${formatMs(result.latenciesMs.at(-1) ?? Number.NaN)} (${reason})`);
    }
  } finally {
    await manager.stop();
    await deleteNamespaces(client, [ns]).catch(() => undefined);
  }
  return result;
}

/** Both paths, the fast one first. */
export async function runStopBench(options: StopBenchOptions): Promise<StopPathResult[]> {
  const node = await readRealNodeInfo(paths);
  if (node === undefined) throw new Error('no real node');
  const results: StopPathResult[] = [];
  for (const stopPath of ['exec', 'configmap'] as const) results.push(await measurePath(options, node, stopPath));
  return results;
}

export function stopReport(results: readonly StopPathResult[]): string {
  const p50 = (r: StopPathResult | undefined): number => quantile(r?.latenciesMs ?? [], 0.5);
  const fallback = p50(results.find((r) => r.path === 'configmap'));
  const rows = [
    ['path', 'stops', 'p50', 'max', 'min', 'p50 ÷ fallback p50', 'StopRequested reason', 'load 1/5/15', 'not Stopped'],
  ];
  for (const r of results) {
    const sorted = [...r.latenciesMs].sort((a, b) => a - b);
    rows.push([
      r.path === 'exec' ? 'exec (pods/exec, the fast path)' : 'configmap (--stop-exec=false: the kubelet sync)',
      String(r.latenciesMs.length),
      formatMs(p50(r)),
      formatMs(sorted.at(-1) ?? Number.NaN),
      formatMs(sorted[0] ?? Number.NaN),
      formatRatio(ratio(p50(r), fallback)),
      [...new Set(r.reasons)].join(', '),
      r.load.join('/'),
      r.failures.length === 0 ? '0' : `${r.failures.length}: ${r.failures.join('; ')}`,
    ]);
  }
  return renderTable(rows);
}
