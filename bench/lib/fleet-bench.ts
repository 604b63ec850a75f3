// The fleet benchmark (issue 14): for N Ready kwok nodes, the time from
// firing a TraceTrigger (a new value of observe.alexeldeib.xyz/fire on a
// trigger whose spec.nodeSelector selects the N nodes) until every one of the
// run's TraceJobs has its Job, against the bench creating the same N
// TraceJobs itself (the trigger's template, one per node) on the same
// cluster, with the same manager, in the same run. Each side gets a fresh
// namespace, deleted (and waited for) before the other side starts.
//
// The node pool is created here with the bench's client: the integration
// test's pool helper (test/integration/tracetrigger-fleet.test.ts) lives in
// that test file and drives kubectl, so it cannot be imported.
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { isAlreadyExists, isNotFound } from '../../src/runtime/api-error.ts';
import type { KubeClient } from '../../src/runtime/kube-client.ts';
import { traceJobPath } from '../../src/controller/tracejob-kube-api.ts';
import { API_GROUP, API_GROUP_VERSION, API_VERSION, KIND } from '../../src/tracejob/index.ts';
import { TRIGGER_CRD_NAME, TRIGGER_KIND, TRIGGER_PLURAL } from '../../src/tracetrigger/index.ts';
import { installCrd } from '../../test/support/manager.ts';
import { countObjects, createNamespaces, deleteNamespaces, existingNamespaces, paths } from './kube.ts';
import { loadAverage } from './procfs.ts';
import type { MemoryCgroup } from './memory-limit.ts';
import { ManagerProcess } from './processes.ts';
import { formatMs, formatRatio, ratio, renderTable } from './stats.ts';

const FIRE_ANNOTATION = 'observe.alexeldeib.xyz/fire';
const POOL_LABEL = 'trace-operator-bench/fleet-pool';
const PROGRAM = 'tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }\n';
/** Long enough that no trace ends (nor its Job's activeDeadlineSeconds) during a run. */
const TEMPLATE_SPEC = { program: PROGRAM, deadline: 7200 } as const;
const POLL_MS = 100;

export interface FleetOptions {
  client: KubeClient;
  runId: string;
  runDir: string;
  /** Creates in flight when the bench creates the TraceJobs directly. */
  createConcurrency: number;
  /** The manager's --concurrency. */
  concurrency: number;
  /** The manager's CLI (dist/cli.js as the image runs it); src/cli.ts when unset. */
  managerCli?: string;
  /** The memory cgroup the manager runs in (the shipped limit), as in the bursts. */
  managerCgroup?: MemoryCgroup;
  log: (line: string) => void;
}

/** One poll of a namespace: how many TraceJobs and Jobs it held, at performance.now() `at`. */
export interface CountSample {
  at: number;
  traceJobs: number;
  jobs: number;
}

/** One side (fleet or direct) of one size. */
export interface FleetSide {
  /** Firing (the annotation PATCH sent) or the first direct create sent → every TraceJob exists / every Job exists (ms); NaN when not reached. */
  traceJobsMs: number;
  jobsMs: number;
  traceJobs: number;
  jobs: number;
  timedOut: boolean;
  load: [number, number, number];
  firstError?: string;
}

export interface FleetSizeResult {
  n: number;
  /** Node pool created → all N Ready. */
  nodesReadyMs: number;
  direct?: FleetSide;
  fleet?: FleetSide;
  error?: string;
}

/** Milliseconds from `startedAt` to the first sample whose `key` count reached `n`; NaN when none did. */
export function timeToCount(
  samples: readonly CountSample[],
  key: 'traceJobs' | 'jobs',
  n: number,
  startedAt: number,
): number {
  for (const s of samples) if (s[key] >= n) return s.at - startedAt;
  return Number.NaN;
}

/** The report table: per size (one run each), fleet and direct time to all Jobs and their ratio. */
export function fleetReport(results: readonly FleetSizeResult[]): string {
  const rows: string[][] = [
    [
      'nodes',
      'fleet: fire → all TraceJobs',
      'fleet: fire → all Jobs',
      'direct: first create → all Jobs',
      'fleet/direct (all Jobs)',
      'load 1m (direct/fleet)',
    ],
  ];
  for (const r of results) {
    const fleetJobs = r.fleet?.jobsMs ?? Number.NaN;
    const directJobs = r.direct?.jobsMs ?? Number.NaN;
    rows.push([
      String(r.n),
      formatMs(r.fleet?.traceJobsMs ?? Number.NaN),
      formatMs(fleetJobs),
      formatMs(directJobs),
      formatRatio(ratio(fleetJobs, directJobs)),
      `${r.direct?.load[0] ?? '?'}/${r.fleet?.load[0] ?? '?'}`,
    ]);
  }
  const notes = results.flatMap((r) => [
    ...(r.error === undefined ? [] : [`N=${r.n}: ${r.error}`]),
    ...[r.direct, r.fleet].flatMap((side, i) =>
      side === undefined || !side.timedOut
        ? []
        : [
            `N=${r.n} ${i === 0 ? 'direct' : 'fleet'}: timed out with ${side.traceJobs} TraceJobs and ${side.jobs} Jobs${side.firstError === undefined ? '' : ` (${side.firstError})`}`,
          ],
    ),
  ]);
  return [renderTable(rows), ...notes].join('\n');
}

const nodeName = (runId: string, n: number, i: number): string =>
  `bench-${runId}-fleet${n}-${String(i).padStart(3, '0')}`;

async function createNodePool(client: KubeClient, runId: string, n: number, pool: string): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => nodeName(runId, n, i));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const name = names[next++];
      if (name === undefined) return;
      try {
        await client.create('/api/v1/nodes', {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name,
            annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
            labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok', [POOL_LABEL]: pool },
          },
        });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, n) }, worker));
  const deadline = performance.now() + 120_000;
  for (;;) {
    const list = await client.list<{ status?: { conditions?: { type: string; status: string }[] } }>('/api/v1/nodes', {
      labelSelector: `${POOL_LABEL}=${pool}`,
    });
    const ready = list.items.filter((node) =>
      node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    if (ready >= n) return names;
    if (performance.now() > deadline)
      throw new Error(
        `only ${ready} of ${n} kwok nodes became Ready within 120s (is kwok running? npm run cluster:up)`,
      );
    await sleep(250);
  }
}

/** Deletes this run's node pools (also after a failure), by label. */
export async function deleteNodePools(client: KubeClient, runId: string): Promise<void> {
  const list = await client.list<{ metadata: { name?: string; labels?: Record<string, string> } }>('/api/v1/nodes', {
    labelSelector: POOL_LABEL,
  });
  const mine = list.items
    .map((node) => node.metadata.name ?? '')
    .filter((name) => name.startsWith(`bench-${runId}-fleet`));
  for (const name of mine) {
    try {
      await client.delete(`/api/v1/nodes/${encodeURIComponent(name)}`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

async function ensureTriggerCrd(client: KubeClient): Promise<void> {
  try {
    await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${TRIGGER_CRD_NAME}`);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await installCrd();
  }
}

const JOBS = { group: 'batch', version: 'v1', plural: 'jobs' } as const;
const TRACEJOBS = { group: API_GROUP, version: API_VERSION, plural: 'tracejobs' } as const;

/** Polls `namespace` until it holds n Jobs (or the timeout); the samples taken. */
async function pollUntilJobs(
  client: KubeClient,
  namespace: string,
  n: number,
  timeoutMs: number,
): Promise<{ samples: CountSample[]; timedOut: boolean }> {
  const samples: CountSample[] = [];
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const [traceJobs, jobs] = await Promise.all([
      countObjects(client, TRACEJOBS, namespace),
      countObjects(client, JOBS, namespace),
    ]);
    samples.push({ at: performance.now(), traceJobs, jobs });
    if (jobs >= n) return { samples, timedOut: false };
    if (performance.now() > deadline) return { samples, timedOut: true };
    await sleep(POLL_MS);
  }
}

function side(
  samples: readonly CountSample[],
  n: number,
  startedAt: number,
  timedOut: boolean,
  load: [number, number, number],
  firstError?: string,
): FleetSide {
  const last = samples.at(-1);
  return {
    traceJobsMs: timeToCount(samples, 'traceJobs', n, startedAt),
    jobsMs: timeToCount(samples, 'jobs', n, startedAt),
    traceJobs: last?.traceJobs ?? 0,
    jobs: last?.jobs ?? 0,
    timedOut,
    load,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

async function measureDirect(
  options: FleetOptions,
  namespace: string,
  nodes: readonly string[],
  timeoutMs: number,
): Promise<FleetSide> {
  const { client } = options;
  const load = loadAverage();
  let next = 0;
  let firstError: string | undefined;
  const startedAt = performance.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const node = nodes[i];
      if (node === undefined) return;
      try {
        await client.create(traceJobPath(namespace), {
          apiVersion: API_GROUP_VERSION,
          kind: KIND,
          metadata: { name: `direct-${String(i).padStart(3, '0')}`, namespace },
          spec: { ...TEMPLATE_SPEC, hostname: node },
        });
      } catch (error) {
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  const creates = Promise.all(Array.from({ length: Math.min(options.createConcurrency, nodes.length) }, worker));
  const polled = pollUntilJobs(client, namespace, nodes.length, timeoutMs);
  await creates;
  const { samples, timedOut } = await polled;
  return side(samples, nodes.length, startedAt, timedOut, load, firstError);
}

async function measureFleet(options: FleetOptions, namespace: string, n: number, pool: string, timeoutMs: number) {
  const { client } = options;
  const name = 'fleet';
  const triggerPath = `/apis/${API_GROUP}/${API_VERSION}/namespaces/${namespace}/${TRIGGER_PLURAL}`;
  await client.create(triggerPath, {
    apiVersion: API_GROUP_VERSION,
    kind: TRIGGER_KIND,
    metadata: { name, namespace },
    spec: { nodeSelector: { matchLabels: { [POOL_LABEL]: pool } }, maxNodes: n, template: { spec: TEMPLATE_SPEC } },
  });
  // Let the manager's cache see the trigger before it is fired, so the timing starts at the firing only.
  await sleep(2000);
  const load = loadAverage();
  const startedAt = performance.now();
  await client.patch(
    `${triggerPath}/${name}`,
    { metadata: { annotations: { [FIRE_ANNOTATION]: String(Date.now()) } } },
    'merge',
  );
  const { samples, timedOut } = await pollUntilJobs(client, namespace, n, timeoutMs);
  return side(samples, n, startedAt, timedOut, load);
}

async function deleteAndWait(options: FleetOptions, namespace: string): Promise<void> {
  await deleteNamespaces(options.client, [namespace]);
  const deadline = performance.now() + 180_000;
  while ((await existingNamespaces(options.client, [namespace])) > 0) {
    if (performance.now() > deadline) {
      options.log(`  fleet: namespace ${namespace} still terminating after 180s; going on`);
      return;
    }
    await sleep(500);
  }
}

/** One size: a pool of n nodes, one manager, the direct side then the fleet side. */
export async function runFleetSize(options: FleetOptions, n: number): Promise<FleetSizeResult> {
  const { client, runId, log } = options;
  await ensureTriggerCrd(client);
  const pool = `${runId}-${n}`;
  const result: FleetSizeResult = { n, nodesReadyMs: Number.NaN };
  const directNs = `bench-${runId}-fleet${n}-direct`;
  const fleetNs = `bench-${runId}-fleet${n}-fire`;
  const timeoutMs = 120_000 + n * 500;
  let manager: ManagerProcess | undefined;
  try {
    const poolAt = performance.now();
    const nodes = await createNodePool(client, runId, n, pool);
    result.nodesReadyMs = performance.now() - poolAt;
    log(`fleet N=${n}: ${n} kwok nodes Ready in ${formatMs(result.nodesReadyMs)}`);
    await createNamespaces(client, [directNs, fleetNs], { 'trace-operator-bench/run': runId });
    manager = await ManagerProcess.start({
      kubeconfig: paths.kubeconfig,
      // The Lease lives in the first namespace: the fleet one, which stays while the direct one is deleted.
      namespaces: [fleetNs, directNs],
      concurrency: options.concurrency,
      logFile: path.join(options.runDir, `manager-fleet-${n}.log`),
      leaseName: `trace-operator-bench-fleet-${n}`,
      ...(options.managerCli === undefined ? {} : { cli: options.managerCli }),
      ...(options.managerCgroup === undefined ? {} : { memoryCgroup: options.managerCgroup }),
    });
    await manager.leading();
    log(`fleet N=${n}: direct (the bench creates ${n} TraceJobs, ${options.createConcurrency} in flight)`);
    result.direct = await measureDirect(options, directNs, nodes, timeoutMs);
    log(`fleet N=${n}: direct → all Jobs in ${formatMs(result.direct.jobsMs)}; deleting its namespace`);
    await deleteAndWait(options, directNs);
    log(`fleet N=${n}: fleet (fire the TraceTrigger over the ${n} nodes)`);
    result.fleet = await measureFleet(options, fleetNs, n, pool, timeoutMs);
    log(`fleet N=${n}: fleet → all Jobs in ${formatMs(result.fleet.jobsMs)}`);
  } catch (error) {
    result.error = `failed: ${error instanceof Error ? error.message : String(error)}`;
    log(`fleet N=${n}: ${result.error}`);
  } finally {
    await manager?.stop();
    await deleteNamespaces(client, [directNs, fleetNs]).catch(() => undefined);
    await deleteNodePools(client, runId).catch((error: unknown) =>
      log(`fleet N=${n}: could not delete the node pool: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
  return result;
}
