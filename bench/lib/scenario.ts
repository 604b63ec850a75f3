// One size of the cluster benchmark: the ceiling client's burst, then the
// operator's burst (settling, steady state, a restart), each in fresh
// namespaces deleted afterwards through the real garbage collector.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isNotFound } from '../../src/runtime/api-error.ts';
import type { KubeClient } from '../../src/runtime/kube-client.ts';
import { traceJobPath } from '../../src/controller/tracejob-kube-api.ts';
import { burst } from './burst.ts';
import {
  apiserverGcCycles,
  apiserverWrites,
  controlPlanePids,
  countObjects,
  createNamespaces,
  deleteNamespaces,
  existingNamespaces,
  paths,
  type CollectionRef,
} from './kube.ts';
import { cpuSnapshot, cpuSplit, loadAverage, processMemory, type CpuSplit, type ProcessMemory } from './procfs.ts';
import { CeilingProcess, ManagerProcess, type CeilingReport } from './processes.ts';
import type { MemoryCgroup } from './memory-limit.ts';
import { diffRequests, meanRequestSeconds, requestCounts, sumMetric, type RequestCounts } from './prom.ts';
import { summarize, type Summary } from './stats.ts';
import { Tracker, type TraceTimes, type WatchCounts } from './tracker.ts';
import type { CpuProfiling } from './inspector.ts';

export interface ScenarioOptions {
  client: KubeClient;
  runId: string;
  runDir: string;
  namespaces: number;
  createConcurrency: number;
  concurrency: number;
  /** Seconds of steady state in which the settled manager's writes are counted. */
  steadySeconds: number;
  /** Seconds after a restart's initial reconciles in which its writes are counted. */
  restartQuietSeconds: number;
  /** Restarts over the settled TraceJobs, one after another (the median /readyz is the figure). */
  restarts: number;
  /** The manager's CLI (a compiled dist/cli.js, as the image runs it); src/cli.ts when unset. */
  managerCli?: string;
  /** Node flags for one more restart (e.g. --max-old-space-size=256); none by default. */
  restartNodeOptions?: readonly string[];
  /** The memory cgroup with the shipped limit the manager runs in; unset: unconstrained. */
  managerCgroup?: MemoryCgroup;
  /** Skip the ceiling client's bursts (experiments on the operator alone). */
  skipCeiling?: boolean;
  /** Profile the CPU of the manager and the ceiling client through each burst (.cpuprofile files in runDir). */
  burstCpuProfile?: boolean;
  log: (line: string) => void;
}

export interface Latencies {
  toId: Summary;
  toJob: Summary;
  toReconciled: Summary;
  toRunning?: Summary;
}

export interface GcResult {
  /** Seconds from the delete until none is left, per kind; NaN when some were still there at the timeout. */
  seconds: Record<string, number>;
  left: Record<string, number>;
  timeoutSeconds: number;
  namespacesGoneSeconds: number;
  /** Until every TraceJob's DELETE was answered. */
  deleteRequestsSeconds: number;
}

export interface BurstResult {
  kind: 'operator' | 'ceiling';
  n: number;
  load: [number, number, number];
  created: number;
  createFailed: number;
  firstError?: string;
  /** First send → last create answered. */
  createSeconds: number;
  /** First send → last TraceJob reconciled (Job exists, status names it). */
  reconcileSeconds: number;
  reconciled: number;
  running?: number;
  timedOut: boolean;
  latency: Latencies;
  /** CPU while creating, and from the last create until all were reconciled. */
  cpu: { create: CpuSplit; drain: CpuSplit; whole: CpuSplit };
  watch: WatchCounts;
  /** Mean TraceJob status writes per TraceJob until the one naming the Job (the create path's), and after it until settled. */
  statusWrites: { toReconciled: number; after: number };
  /** Per TraceJob, made before the last one was reconciled: follow-up status writes and Events (they compete with starts). */
  inBurst: { statusWritesAfter: number; events: number };
  gc: GcResult;
}

export interface MemoryReading extends ProcessMemory {
  /** nodejs_heap_size_used_bytes as scraped (garbage included). */
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** The heap after a forced full GC (through the inspector), and the RSS right after it. */
  liveHeapBytes: number;
  rssAfterGcBytes: number;
  gcMs: number;
}

export interface OperatorResult extends BurstResult {
  kind: 'operator';
  /** The manager's requests from the burst's start until everything settled, lease renewals left out. */
  createPath: {
    requests: RequestCounts;
    leaseWrites: number;
    writesPerTraceJob: number;
    readsPerTraceJob: number;
    reconcilesPerTraceJob: number;
    /** Mean reconcile time, and the mean API latency the manager saw by verb. */
    meanReconcileSeconds: number;
    latency: Record<string, { count: number; meanSeconds: number }>;
    watch: WatchCounts;
    settleSeconds: number;
  };
  /** Every client's writes the API server counted from the burst's start until settled (apiserver_request_total; the whole cluster, so other tests' writes too). */
  clusterWrites: Record<string, number>;
  /** One settled TraceJob as the API server returns it: JSON bytes, and those of its managedFields (the manager's cache drops them). */
  traceJobBytes: { total: number; managedFields: number };
  steady: { seconds: number; requests: RequestCounts; leaseWrites: number; traceJobUpdates: number };
  memory: { idle: MemoryReading; settled: MemoryReading };
  /** The restart with the median /readyz of `restarts`. */
  restart: RestartResult;
  /** Every restart, in the order they ran. */
  restarts: RestartResult[];
  /** A further restart with extra node flags (--restart-node-options), e.g. a heap cap. */
  restartWithNodeOptions?: RestartResult;
  restartNodeOptions?: string[];
  managerLog: string;
  managerWarnings: number;
  managerErrors: number;
}

export interface RestartResult {
  stopSeconds: number;
  /** Spawn → /readyz 200 (caches synced), → leading, → every TraceJob looked at once (queue drained). */
  readySeconds: number;
  leadingSeconds: number;
  drainedSeconds: number;
  reconciles: number;
  requests: RequestCounts;
  leaseWrites: number;
  traceJobUpdates: number;
  memory: MemoryReading;
  /** RSS sampled every 50 ms from spawn: the highest before /readyz (the caches' lists) and after it (the first look at every TraceJob). */
  rssPeakBeforeReadyBytes: number;
  rssPeakAfterReadyBytes: number;
  rssPeakAtSeconds: number;
  /** CPU from spawn until every TraceJob was looked at. */
  cpu: CpuSplit;
  /** The API server's garbage collections from before the spawn until /readyz (see apiserverGcCycles). */
  apiserverGcCycles: number;
}

export interface CeilingResult extends BurstResult {
  kind: 'ceiling';
  report: CeilingReport;
}

const COLLECTIONS: Record<string, CollectionRef> = {
  tracejobs: { group: 'observe.alexeldeib.xyz', version: 'v1alpha1', plural: 'tracejobs' },
  configmaps: { version: 'v1', plural: 'configmaps' },
  jobs: { group: 'batch', version: 'v1', plural: 'jobs' },
  pods: { version: 'v1', plural: 'pods' },
};

function latencies(traces: Iterable<TraceTimes>, withRunning: boolean): Latencies {
  const toId: number[] = [];
  const toJob: number[] = [];
  const toReconciled: number[] = [];
  const toRunning: number[] = [];
  for (const t of traces) {
    const created = Tracker.createdAt(t);
    if (created === undefined) continue;
    if (t.idAt !== undefined) toId.push(t.idAt - created);
    if (t.jobAt !== undefined) toJob.push(t.jobAt - created);
    const done = Tracker.doneAt(t);
    if (done !== undefined) toReconciled.push(done - created);
    if (t.runningAt !== undefined) toRunning.push(t.runningAt - created);
  }
  return {
    toId: summarize(toId),
    toJob: summarize(toJob),
    toReconciled: summarize(toReconciled),
    ...(withRunning ? { toRunning: summarize(toRunning) } : {}),
  };
}

function statusWrites(traces: Iterable<TraceTimes>): { toReconciled: number; after: number } {
  let n = 0;
  let toReconciled = 0;
  let all = 0;
  for (const t of traces) {
    if (t.updatesToReconciled === undefined) continue;
    n++;
    toReconciled += t.updatesToReconciled;
    all += t.updates;
  }
  return { toReconciled: toReconciled / Math.max(1, n), after: (all - toReconciled) / Math.max(1, n) };
}

function countUntil(times: readonly number[], end: number): number {
  return times.filter((at) => at <= end).length;
}

function lastDone(tracker: Tracker): number {
  let last = 0;
  for (const t of tracker.traces.values()) last = Math.max(last, Tracker.doneAt(t) ?? 0);
  return last;
}

async function memoryOf(manager: ManagerProcess): Promise<MemoryReading> {
  const samples = await manager.metrics();
  const mem = processMemory(manager.pid) ?? { hwmBytes: Number.NaN, rssBytes: Number.NaN };
  const live = await manager.liveHeap().catch(() => undefined);
  return {
    ...mem,
    heapUsedBytes: sumMetric(samples, 'nodejs_heap_size_used_bytes'),
    heapTotalBytes: sumMetric(samples, 'nodejs_heap_size_total_bytes'),
    externalBytes: sumMetric(samples, 'nodejs_external_memory_bytes'),
    liveHeapBytes: live?.usedBytes ?? Number.NaN,
    rssAfterGcBytes: processMemory(manager.pid)?.rssBytes ?? Number.NaN,
    gcMs: live?.gcMs ?? Number.NaN,
  };
}

/**
 * Deletes the phase's TraceJobs one by one, `createConcurrency` in flight
 * (background propagation: the garbage collector then removes the ConfigMaps
 * and Jobs they own, and the Jobs' pods), times until each kind is gone,
 * then deletes the namespaces. One request per TraceJob rather than one
 * deletecollection per namespace: the API server deletes a collection's
 * items one after another within that single request (2 500 TraceJobs took
 * over a minute), which would time the API server's loop, not the collector.
 */
async function cleanUp(
  options: ScenarioOptions,
  namespaces: readonly string[],
  keys: readonly string[],
  n: number,
  baseline: Record<string, number>,
): Promise<GcResult> {
  const { client, log } = options;
  const timeoutSeconds = Math.round(120 + n * 0.06);
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  let deletesDoneAt = Number.NaN;
  const deleting = Promise.all(
    Array.from({ length: Math.min(options.createConcurrency, keys.length) }, async () => {
      for (;;) {
        const key = keys[next++];
        if (key === undefined) return;
        const [namespace = '', name = ''] = key.split('/');
        try {
          await client.delete(traceJobPath(namespace, name), { propagationPolicy: 'Background' });
        } catch (error) {
          if (!isNotFound(error)) {
            failed++;
            firstError ??= error instanceof Error ? error.message : String(error);
          }
        }
      }
    }),
  ).then(() => {
    deletesDoneAt = (performance.now() - started) / 1000;
    if (failed > 0) log(`  ${failed} TraceJob deletes failed: ${firstError ?? ''}`);
  });
  const seconds: Record<string, number> = {};
  const left: Record<string, number> = {};
  for (;;) {
    const elapsed = (performance.now() - started) / 1000;
    for (const [kind, ref] of Object.entries(COLLECTIONS)) {
      if (seconds[kind] !== undefined) continue;
      const counts = await Promise.all(namespaces.map((ns) => countObjects(client, ref, ns)));
      left[kind] = Math.max(0, counts.reduce((a, b) => a + b, 0) - (baseline[kind] ?? 0));
      if (left[kind] === 0) seconds[kind] = (performance.now() - started) / 1000;
    }
    if (Object.keys(COLLECTIONS).every((k) => seconds[k] !== undefined)) break;
    if (Number.isNaN(deletesDoneAt)) {
      // While the DELETEs are still being sent, count only every 2 s (counting competes with them).
      await Promise.race([deleting, sleep(2000)]);
      continue;
    }
    if (elapsed > timeoutSeconds) {
      log(
        `  garbage collection not finished after ${timeoutSeconds}s (left: ${JSON.stringify(left)}); deleting the namespaces anyway`,
      );
      break;
    }
    await sleep(n >= 5000 ? 2000 : 500);
  }
  await deleting;
  for (const kind of Object.keys(COLLECTIONS)) seconds[kind] ??= Number.NaN;
  const nsStarted = performance.now();
  await deleteNamespaces(client, namespaces);
  let namespacesGoneSeconds = Number.NaN;
  const nsTimeout = 60 + n * 0.02;
  while ((performance.now() - nsStarted) / 1000 < nsTimeout) {
    if ((await existingNamespaces(client, namespaces)) === 0) {
      namespacesGoneSeconds = (performance.now() - nsStarted) / 1000;
      break;
    }
    await sleep(1000);
  }
  if (Number.isNaN(namespacesGoneSeconds))
    log(`  the namespaces were not gone after ${Math.round(nsTimeout)}s; they will go in the background`);
  return { seconds, left, timeoutSeconds, namespacesGoneSeconds, deleteRequestsSeconds: deletesDoneAt };
}

async function baselineCounts(client: KubeClient, namespaces: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [kind, ref] of Object.entries(COLLECTIONS)) {
    const counts = await Promise.all(namespaces.map((ns) => countObjects(client, ref, ns)));
    out[kind] = counts.reduce((a, b) => a + b, 0);
  }
  return out;
}

interface PhaseSetup {
  phaseId: string;
  namespaces: string[];
  selector: string;
  labels: Record<string, string>;
}

let phases = 0;

/** The manager's leader Lease in each burst's first namespace. */
const LEASE_NAME = 'trace-operator-bench';

async function setUp(options: ScenarioOptions, kind: 'op' | 'ceil', n: number): Promise<PhaseSetup> {
  const phaseId = `${options.runId}-${kind}${n}-${randomBytes(2).toString('hex')}`;
  // A new name for every phase: the last phase's namespaces may still be terminating.
  const phase = phases++;
  const namespaces = Array.from(
    { length: options.namespaces },
    (_, i) => `bench-${options.runId}-${phase}-${kind}${n}-${i}`,
  );
  await createNamespaces(options.client, namespaces, { 'trace-operator-bench/run': options.runId });
  return {
    phaseId,
    namespaces,
    selector: `trace-operator-bench/phase=${phaseId}`,
    labels: { 'trace-operator-bench/phase': phaseId },
  };
}

/** A burst's phase, ready to create: fresh namespaces, the counts before it, the harness's watches running. */
interface Phase {
  n: number;
  load: BurstResult['load'];
  setup: PhaseSetup;
  baseline: Record<string, number>;
  tracker: Tracker;
}

async function startPhase(
  options: ScenarioOptions,
  kind: 'op' | 'ceil',
  n: number,
  leaseName?: string,
): Promise<Phase> {
  const { client } = options;
  const load = loadAverage();
  const setup = await setUp(options, kind, n);
  const baseline = await baselineCounts(client, setup.namespaces);
  const lease = leaseName === undefined ? undefined : { namespace: setup.namespaces[0] ?? '', name: leaseName };
  const tracker = new Tracker({
    client,
    traceJobSelector: setup.selector,
    namespaces: setup.namespaces,
    ...(lease === undefined ? {} : { lease }),
  });
  await tracker.start();
  return { n, load, setup, baseline, tracker };
}

async function runBurst(
  options: ScenarioOptions,
  setup: PhaseSetup,
  n: number,
  tracker: Tracker,
  pids: Record<string, number | undefined>,
  label: string,
) {
  const { log } = options;
  const c0 = cpuSnapshot(pids);
  const created = await burst({
    client: options.client,
    n,
    concurrency: options.createConcurrency,
    namespaceOf: (i) => setup.namespaces[i % setup.namespaces.length] ?? '',
    labels: setup.labels,
    onSent: (key, at) => tracker.sent(key, at),
    onAck: (key, at) => tracker.ack(key, at),
  });
  const c1 = cpuSnapshot(pids);
  log(
    `  ${label}: created ${created.created} TraceJobs in ${((created.endedAt - created.startedAt) / 1000).toFixed(1)}s${created.failed > 0 ? ` (${created.failed} failed: ${created.firstError ?? ''})` : ''}`,
  );
  const timeoutMs = 60_000 + n * 100;
  const reconciled = await Tracker.waitUntil(
    () => tracker.countDone() >= created.created,
    timeoutMs,
    () => log(`  ${label}: ${tracker.countDone()}/${created.created} reconciled`),
  );
  const c2 = cpuSnapshot(pids);
  if (!reconciled)
    log(`  ${label}: only ${tracker.countDone()}/${created.created} reconciled after ${timeoutMs / 1000}s; going on`);
  const end = reconciled ? lastDone(tracker) : performance.now();
  return {
    created,
    timedOut: !reconciled,
    reconcileSeconds: (end - created.startedAt) / 1000,
    endedAt: end,
    cpu: { create: cpuSplit(c0, c1), drain: cpuSplit(c1, c2), whole: cpuSplit(c0, c2) },
  };
}

/** Stops the watches, deletes the burst's TraceJobs, and gives the figures both clients' results share. */
async function endBurst(
  options: ScenarioOptions,
  kind: BurstResult['kind'],
  phase: Phase,
  burst: Awaited<ReturnType<typeof runBurst>>,
): Promise<BurstResult> {
  const { n, load, setup, baseline, tracker } = phase;
  const watch = { ...tracker.counts };
  await tracker.stop();
  options.log(`  ${kind} N=${n}: deleting`);
  const gc = await cleanUp(options, setup.namespaces, [...tracker.traces.keys()], n, baseline);
  return {
    kind,
    n,
    load,
    created: burst.created.created,
    createFailed: burst.created.failed,
    ...(burst.created.firstError === undefined ? {} : { firstError: burst.created.firstError }),
    createSeconds: (burst.created.endedAt - burst.created.startedAt) / 1000,
    reconcileSeconds: burst.reconcileSeconds,
    reconciled: tracker.countDone(),
    ...(kind === 'operator' ? { running: tracker.countRunning() } : {}),
    timedOut: burst.timedOut,
    latency: latencies(tracker.traces.values(), kind === 'operator'),
    statusWrites: statusWrites(tracker.traces.values()),
    inBurst: {
      statusWritesAfter: countUntil(tracker.followUpWriteTimes, burst.endedAt) / Math.max(1, n),
      events: countUntil(tracker.eventTimes, burst.endedAt) / Math.max(1, n),
    },
    cpu: burst.cpu,
    watch,
    gc,
  };
}

/** How every burst's manager runs: over the phase's namespaces, from the bench's CLI, in its memory cgroup. */
function managerOptions(
  options: ScenarioOptions,
  setup: PhaseSetup,
  logName: string,
): Parameters<typeof ManagerProcess.start>[0] {
  return {
    kubeconfig: paths.kubeconfig,
    namespaces: setup.namespaces,
    concurrency: options.concurrency,
    leaseName: LEASE_NAME,
    logFile: path.join(options.runDir, logName),
    ...(options.managerCli === undefined ? {} : { cli: options.managerCli }),
    ...(options.managerCgroup === undefined ? {} : { memoryCgroup: options.managerCgroup }),
  };
}

/** Another burst of the operator for the throughput ratio (--repeats): no settling, steady state or restarts. */
export async function runOperatorBurst(options: ScenarioOptions, n: number): Promise<BurstResult> {
  const phase = await startPhase(options, 'op', n, LEASE_NAME);
  const { setup, tracker } = phase;
  const manager = await ManagerProcess.start(managerOptions(options, setup, `manager-${setup.phaseId}.log`));
  try {
    await manager.leading();
    await sleep(500);
    const pids = { ...controlPlanePids(), manager: manager.pid, harness: process.pid };
    const profiling = options.burstCpuProfile === true ? await manager.startCpuProfile() : undefined;
    const b = await runBurst(options, setup, n, tracker, pids, `operator N=${n}`);
    await saveBurstProfile(options, profiling, `operator N=${n}`, `manager-${setup.phaseId}.cpuprofile`);
    await manager.stop();
    return await endBurst(options, 'operator', phase, b);
  } finally {
    if (manager.child.exitCode === null && manager.child.signalCode === null) await manager.stop();
    await tracker.stop();
  }
}

export async function runCeiling(options: ScenarioOptions, n: number): Promise<CeilingResult> {
  const phase = await startPhase(options, 'ceil', n);
  const { setup, tracker } = phase;
  const ceiling = await CeilingProcess.start({
    kubeconfig: paths.kubeconfig,
    selector: setup.selector,
    concurrency: options.concurrency,
    logFile: path.join(options.runDir, `ceiling-${setup.phaseId}.log`),
    inspect: options.burstCpuProfile === true,
  });
  try {
    const pids = { ...controlPlanePids(), client: ceiling.pid, harness: process.pid };
    const profiling = options.burstCpuProfile === true ? await ceiling.startCpuProfile() : undefined;
    const b = await runBurst(options, setup, n, tracker, pids, `ceiling N=${n}`);
    await saveBurstProfile(options, profiling, `ceiling N=${n}`, `ceiling-${setup.phaseId}.cpuprofile`);
    const report = await ceiling.stop();
    return {
      ...(await endBurst(options, 'ceiling', phase, b)),
      kind: 'ceiling',
      report,
    };
  } finally {
    ceiling.child.kill('SIGKILL');
    await tracker.stop();
  }
}

/** Ends a burst's CPU profile (--burst-cpu-prof) and writes it into the run directory. */
async function saveBurstProfile(
  options: ScenarioOptions,
  profiling: CpuProfiling | undefined,
  label: string,
  fileName: string,
): Promise<void> {
  if (profiling === undefined) return;
  const file = path.join(options.runDir, fileName);
  await writeFile(file, JSON.stringify(await profiling.stop()));
  options.log(`  ${label}: CPU profile through the burst: ${file}`);
}

async function settledTraceJobSize(
  client: KubeClient,
  tracker: Tracker,
): Promise<{ total: number; managedFields: number }> {
  const key = tracker.traces.keys().next().value;
  if (key === undefined) return { total: Number.NaN, managedFields: Number.NaN };
  const [namespace = '', name = ''] = key.split('/');
  const obj = await client.get<{ metadata: { managedFields?: unknown } }>(traceJobPath(namespace, name));
  return { total: JSON.stringify(obj).length, managedFields: JSON.stringify(obj.metadata.managedFields ?? []).length };
}

async function waitQuiet(tracker: Tracker, quietMs: number, maxMs: number): Promise<void> {
  const started = performance.now();
  while (performance.now() - started < maxMs) {
    if (performance.now() - Math.max(tracker.lastTraceJobChangeAt, tracker.lastEventAt) >= quietMs) return;
    await sleep(200);
  }
}

/** Waits until the manager's queue is empty, no reconcile runs and at least `reconciles` have been counted. */
async function waitDrained(
  manager: ManagerProcess,
  reconciles: number,
  timeoutMs: number,
): Promise<{ at: number; reconciles: number }> {
  const started = performance.now();
  let total = 0;
  while (performance.now() - started < timeoutMs) {
    const m = await manager.metrics();
    total = sumMetric(m, 'controller_runtime_reconcile_total');
    if (
      sumMetric(m, 'workqueue_depth') === 0 &&
      sumMetric(m, 'controller_runtime_active_workers') === 0 &&
      total >= reconciles
    )
      return { at: performance.now(), reconciles: total };
    await sleep(100);
  }
  return { at: Number.NaN, reconciles: total };
}

/** The restart whose /readyz is the median (the lower middle one of an even count). */
function medianRestart(restarts: readonly RestartResult[]): RestartResult {
  const sorted = [...restarts].sort((a, b) => a.readySeconds - b.readySeconds);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  if (median === undefined) throw new Error('medianRestart: no restarts');
  return median;
}

/**
 * Starts a manager over the settled TraceJobs, times it until every TraceJob
 * was looked at, counts its writes, reads its memory, stops it. `stopMs`: how
 * long the manager before it took to stop; `stoppedInMs`: how long this one did.
 */
async function measureRestart(
  options: ScenarioOptions,
  n: number,
  tracker: Tracker,
  launch: (onSpawn: (pid: number) => void) => Promise<ManagerProcess>,
  stopMs: number,
): Promise<{ restart: RestartResult; stoppedInMs: number }> {
  const w3 = { ...tracker.counts };
  const rssSamples: { at: number; rss: number }[] = [];
  let sampler: NodeJS.Timeout | undefined;
  let cpu0: ReturnType<typeof cpuSnapshot> | undefined;
  const gcBefore = await apiserverGcCycles(options.client);
  const manager = await launch((pid) => {
    cpu0 = cpuSnapshot({ ...controlPlanePids(), manager: pid, harness: process.pid });
    sampler = setInterval(() => {
      const m = processMemory(pid);
      if (m !== undefined) rssSamples.push({ at: performance.now(), rss: m.rssBytes });
    }, 50);
  });
  try {
    const gcCycles = (await apiserverGcCycles(options.client)) - gcBefore;
    await manager.leading(120_000);
    const drained = await waitDrained(manager, n, 120_000 + n * 20);
    clearInterval(sampler);
    const cpu1 = cpuSnapshot({ ...controlPlanePids(), manager: manager.pid, harness: process.pid });
    const readyAt = manager.times.readyAt;
    const peak = (samples: { at: number; rss: number }[]): number =>
      samples.length === 0 ? Number.NaN : Math.max(...samples.map((x) => x.rss));
    const top = rssSamples.reduce<{ at: number; rss: number } | undefined>(
      (best, x) => (best === undefined || x.rss > best.rss ? x : best),
      undefined,
    );
    await sleep(options.restartQuietSeconds * 1000);
    const samples = await manager.metrics();
    const w4 = { ...tracker.counts };
    const memory = await memoryOf(manager);
    const restart: RestartResult = {
      stopSeconds: stopMs / 1000,
      readySeconds: (manager.times.readyAt - manager.times.spawnedAt) / 1000,
      leadingSeconds: ((manager.times.leadingAt ?? Number.NaN) - manager.times.spawnedAt) / 1000,
      drainedSeconds: (drained.at - manager.times.spawnedAt) / 1000,
      reconciles: drained.reconciles,
      requests: requestCounts(samples),
      leaseWrites: w4.leaseWrites - w3.leaseWrites,
      traceJobUpdates: w4.traceJobUpdates - w3.traceJobUpdates,
      memory,
      rssPeakBeforeReadyBytes: peak(rssSamples.filter((x) => x.at <= readyAt)),
      rssPeakAfterReadyBytes: peak(rssSamples.filter((x) => x.at > readyAt)),
      rssPeakAtSeconds: top === undefined ? Number.NaN : (top.at - manager.times.spawnedAt) / 1000,
      cpu: cpu0 === undefined ? cpuSplit(cpu1, cpu1) : cpuSplit(cpu0, cpu1),
      apiserverGcCycles: gcCycles,
    };
    options.log(
      `  operator N=${n}: restart ready in ${restart.readySeconds.toFixed(2)}s (API server GCs: ${gcCycles}), drained in ${restart.drainedSeconds.toFixed(2)}s, ${restart.requests.writes - restart.leaseWrites} writes besides the Lease`,
    );
    return { restart, stoppedInMs: await manager.stop() };
  } finally {
    clearInterval(sampler);
    if (manager.child.exitCode === null && manager.child.signalCode === null) await manager.stop();
  }
}

export async function runOperator(options: ScenarioOptions, n: number): Promise<OperatorResult> {
  const { client, log } = options;
  const phase = await startPhase(options, 'op', n, LEASE_NAME);
  const { setup, tracker } = phase;
  const start = (
    suffix: string,
    onSpawn?: (pid: number) => void,
    nodeOptions?: readonly string[],
  ): Promise<ManagerProcess> =>
    ManagerProcess.start({
      ...managerOptions(options, setup, `manager-${n}${suffix}.log`),
      ...(onSpawn === undefined ? {} : { onSpawn }),
      ...(nodeOptions === undefined ? {} : { nodeOptions }),
    });
  const manager = await start('');
  try {
    await manager.leading();
    await sleep(500);
    const idle = await memoryOf(manager);
    const s0 = await manager.metrics();
    const m0 = requestCounts(s0);
    const w0 = { ...tracker.counts };
    const pids = { ...controlPlanePids(), manager: manager.pid, harness: process.pid };
    const a0 = await apiserverWrites(client);
    const profiling = options.burstCpuProfile === true ? await manager.startCpuProfile() : undefined;
    const b = await runBurst(options, setup, n, tracker, pids, `operator N=${n}`);
    await saveBurstProfile(options, profiling, `operator N=${n}`, `manager-${setup.phaseId}.cpuprofile`);

    // Settle: every trace pod runs on its kwok node, and the TraceJobs and their Events stop changing.
    const runningTimeout = 60_000 + n * 50;
    const allRunning = await Tracker.waitUntil(
      () => tracker.countRunning() >= b.created.created,
      runningTimeout,
      () => log(`  operator N=${n}: ${tracker.countRunning()}/${b.created.created} Running`),
    );
    if (!allRunning)
      log(
        `  operator N=${n}: only ${tracker.countRunning()}/${b.created.created} Running after ${runningTimeout / 1000}s`,
      );
    await waitQuiet(tracker, 5000, 120_000);
    await waitDrained(manager, 0, 60_000);
    const settledAt = performance.now();
    const s1 = await manager.metrics();
    const m1 = requestCounts(s1);
    const w1 = { ...tracker.counts };
    const reconciles =
      sumMetric(s1, 'controller_runtime_reconcile_total') - sumMetric(s0, 'controller_runtime_reconcile_total');
    const traceJobBytes = await settledTraceJobSize(client, tracker);
    const a1 = await apiserverWrites(client);
    const clusterWrites = Object.fromEntries(
      Object.entries(a1)
        .map(([k, v]) => [k, v - (a0[k] ?? 0)])
        .filter(([, v]) => (v as number) > 0),
    );
    const createRequests = diffRequests(m0, m1);
    const leaseCreate = w1.leaseWrites - w0.leaseWrites;
    const settled = await memoryOf(manager);
    log(
      `  operator N=${n}: settled ${((settledAt - b.created.startedAt) / 1000).toFixed(1)}s after the first create; ${createRequests.writes - leaseCreate} writes; RSS ${(settled.rssBytes / 2 ** 20).toFixed(0)} MiB (peak ${(settled.hwmBytes / 2 ** 20).toFixed(0)} MiB)`,
    );

    // Steady state: nothing changes; count what the manager writes anyway.
    await sleep(options.steadySeconds * 1000);
    const m2 = requestCounts(await manager.metrics());
    const w2 = { ...tracker.counts };
    const steady = {
      seconds: options.steadySeconds,
      requests: diffRequests(m1, m2),
      leaseWrites: w2.leaseWrites - w1.leaseWrites,
      traceJobUpdates: w2.traceJobUpdates - w1.traceJobUpdates,
    };

    // Restart over the settled TraceJobs.
    const stopMs = await manager.stop();
    const managerLog = manager.logFile;
    const warnings = manager.warnings;
    const errors = manager.errors;
    await sleep(500);
    const restarts: RestartResult[] = [];
    for (let i = 0, previousStopMs = stopMs; i < options.restarts; i++) {
      if (i > 0) await sleep(500);
      const suffix = options.restarts === 1 ? '-restart' : `-restart-${i + 1}`;
      const run = await measureRestart(options, n, tracker, (onSpawn) => start(suffix, onSpawn), previousStopMs);
      restarts.push(run.restart);
      previousStopMs = run.stoppedInMs;
    }
    const restart = medianRestart(restarts);
    let restartWithNodeOptions: RestartResult | undefined;
    if (options.restartNodeOptions !== undefined && options.restartNodeOptions.length > 0) {
      await sleep(500);
      restartWithNodeOptions = (
        await measureRestart(
          options,
          n,
          tracker,
          (onSpawn) => start('-restart-options', onSpawn, options.restartNodeOptions),
          Number.NaN,
        )
      ).restart;
      log(
        `  operator N=${n}: a restart with node ${options.restartNodeOptions.join(' ')}: ready in ${restartWithNodeOptions.readySeconds.toFixed(2)}s, RSS peak ${(Math.max(restartWithNodeOptions.rssPeakBeforeReadyBytes, restartWithNodeOptions.rssPeakAfterReadyBytes) / 2 ** 20).toFixed(0)} MiB`,
      );
    }
    const common = await endBurst(options, 'operator', phase, b);
    const writesOnCreatePath = createRequests.writes - leaseCreate;
    return {
      ...common,
      kind: 'operator',
      createPath: {
        requests: createRequests,
        leaseWrites: leaseCreate,
        writesPerTraceJob: writesOnCreatePath / Math.max(1, b.created.created),
        readsPerTraceJob: createRequests.reads / Math.max(1, b.created.created),
        reconcilesPerTraceJob: reconciles / Math.max(1, b.created.created),
        meanReconcileSeconds:
          (sumMetric(s1, 'controller_runtime_reconcile_time_seconds_sum') -
            sumMetric(s0, 'controller_runtime_reconcile_time_seconds_sum')) /
          Math.max(1, reconciles),
        latency: meanRequestSeconds(s1, s0),
        watch: {
          traceJobUpdates: w1.traceJobUpdates - w0.traceJobUpdates,
          configMaps: w1.configMaps - w0.configMaps,
          jobs: w1.jobs - w0.jobs,
          eventsCreated: w1.eventsCreated - w0.eventsCreated,
          eventsUpdated: w1.eventsUpdated - w0.eventsUpdated,
          leaseWrites: leaseCreate,
          relists: w1.relists - w0.relists,
        },
        settleSeconds: (settledAt - b.created.startedAt) / 1000,
      },
      traceJobBytes,
      clusterWrites,
      steady,
      memory: { idle, settled },
      restart,
      restarts,
      ...(restartWithNodeOptions === undefined
        ? {}
        : { restartWithNodeOptions, restartNodeOptions: [...(options.restartNodeOptions ?? [])] }),
      managerLog,
      managerWarnings: warnings,
      managerErrors: errors,
    };
  } finally {
    if (manager.child.exitCode === null && manager.child.signalCode === null) await manager.stop();
    await tracker.stop();
  }
}
