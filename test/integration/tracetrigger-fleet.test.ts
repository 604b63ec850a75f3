// Fleet and scheduled TraceTriggers end to end on the local control plane:
// the real API server, scheduler, Job controller and garbage collector, with
// a pool of kwok nodes this file creates (labelled so only its triggers
// select them) and deletes afterwards. Trace pods are ended by kwok
// (test/support/trace-pod.ts) with results the test chooses, so the run's
// merged histogram can be checked against the sum the test computes.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import type { HistogramBucket, TraceJob, TraceResult } from '../../src/tracejob/index.ts';
import type { TraceTrigger } from '../../src/tracetrigger/index.ts';
import { RUN_LABEL_KEY } from '../../src/tracetrigger/run.ts';
import { percentiles } from '../../src/runner/histogram.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import { finishTracePod } from '../support/trace-pod.ts';
import { apply, getJson, listJson } from '../support/tracejobs.ts';

const POOL = `fleet14-${randomBytes(3).toString('hex')}`;
const POOL_LABEL = 'trace-operator.test/fleet-pool';
const GROUP_LABEL = 'trace-operator.test/fleet-group';
const FIRE = 'observe.alexeldeib.xyz/fire';
let ns = '';
let manager: RunningManager;
let cleanupNamespace: () => Promise<void> = async () => undefined;
const nodeNames: string[] = [];

/** Creates `count` kwok nodes in `group` of this file's pool. */
async function addNodes(group: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `${POOL}-${group}-${String(i).padStart(2, '0')}`);
  const items = names.map((name) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        type: 'kwok',
        [POOL_LABEL]: POOL,
        [GROUP_LABEL]: group,
      },
    },
  }));
  const created = await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  });
  if (created.exitCode !== 0) throw new Error(`could not create the kwok nodes: ${created.stderr}`);
  nodeNames.push(...names);
  await eventually(
    `the ${count} ${group} nodes are Ready`,
    async () => {
      const nodes = await listJson<{ status?: { conditions?: { type: string; status: string }[] } }>(
        '',
        'nodes',
        `${POOL_LABEL}=${POOL},${GROUP_LABEL}=${group}`,
      );
      const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      return ready.length === count ? true : undefined;
    },
    60_000,
  );
  return names;
}

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd(); // both CRDs, Established
  const namespace = await createTestNamespace('fleet');
  ns = namespace.name;
  cleanupNamespace = namespace.cleanup;
  manager = await startManager({ namespaces: [ns] });
});

test.after.always(async () => {
  await manager?.stop();
  if (nodeNames.length > 0) await kubectl(['delete', 'nodes', '-l', `${POOL_LABEL}=${POOL}`, '--wait=false']);
  await cleanupNamespace();
});

function trigger(name: string, spec: Record<string, unknown>, annotations: Record<string, string> = {}): object {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name, namespace: ns, annotations },
    spec: {
      template: { spec: { program: 'tracepoint:block:block_rq_issue { @usecs = hist(args.bytes); }', deadline: 3600 } },
      ...spec,
    },
  };
}

const getTrigger = (name: string): Promise<TraceTrigger | undefined> => getJson<TraceTrigger>(ns, 'tracetrigger', name);
const runTraceJobs = (runId: string): Promise<TraceJob[]> =>
  listJson<TraceJob>(ns, 'tracejobs', `${RUN_LABEL_KEY}=${runId}`);
const fire = async (name: string, value: string): Promise<void> => {
  const annotated = await kubectl(['annotate', 'tracetrigger', name, `${FIRE}=${value}`, '--overwrite'], {
    namespace: ns,
  });
  if (annotated.exitCode !== 0) throw new Error(`could not annotate ${name}: ${annotated.stderr}`);
};

/** A result with one log2 histogram whose bucket [2^i, 2^(i+1)) holds counts[i]. */
function resultWith(counts: number[]): TraceResult {
  const buckets = counts.flatMap((count, i) => (count > 0 ? [{ low: 2 ** i, high: 2 ** (i + 1), count }] : []));
  return {
    outcome: 'DeadlineReached',
    exitCode: 0,
    maps: [
      {
        name: '@usecs',
        kind: 'histogram',
        histograms: [{ buckets, total: buckets.reduce((s, b) => s + b.count, 0) }],
      },
    ],
    truncated: false,
  };
}

/** Ends the trace pod of a TraceJob with `result`, once the pod runs. */
async function finishTraceJob(tj: TraceJob, result: TraceResult): Promise<void> {
  const running = await eventually(
    `TraceJob ${tj.metadata.name} has a running pod`,
    async () => {
      const current = await getJson<TraceJob>(ns, 'tracejob', tj.metadata.name);
      const id = current?.status?.id;
      if (id === undefined) return undefined;
      const pods = await listJson<V1Pod>(ns, 'pods', `iovisor.org/kubectl-trace-id=${id}`);
      return pods.find((p) => p.status?.phase === 'Running');
    },
    90_000,
  );
  const container = running.spec?.containers[0]?.name ?? '';
  await finishTracePod(ns, { name: running.metadata?.name ?? '', container }, { exitCode: 0, text: 'done', result });
}

test.serial(
  'a selector over 20 nodes makes 20 TraceJobs, one per node, and the run merges their histograms',
  async (t) => {
    t.timeout(300_000);
    const nodes = await addNodes('twenty', 20);
    await apply(
      ns,
      trigger(
        'twenty',
        { nodeSelector: { matchLabels: { [POOL_LABEL]: POOL, [GROUP_LABEL]: 'twenty' } } },
        { [FIRE]: 'first' },
      ),
    );
    const runId = 'fire-first';
    const tjs = await eventually(
      'the run has 20 TraceJobs',
      async () => {
        const list = await runTraceJobs(runId);
        return list.length >= 20 ? list : undefined;
      },
      60_000,
    );
    t.is(tjs.length, 20);
    t.deepEqual(tjs.map((tj) => tj.spec.hostname).sort(), [...nodes].sort(), 'one TraceJob per selected node');
    const owners = (tj: TraceJob): { kind: string }[] =>
      (tj.metadata as { ownerReferences?: { kind: string }[] }).ownerReferences ?? [];
    t.true(tjs.every((tj) => owners(tj).some((o) => o.kind === 'TraceTrigger')));

    // Node i reports i+1 samples in [1,2), i in [4,8) and, on every 5th node, one in [1024, 2048).
    const expected = new Map<number, number>();
    const byNode = new Map(nodes.map((n, i) => [n, i]));
    for (const tj of tjs) {
      const i = byNode.get(tj.spec.hostname ?? '') ?? 0;
      const counts = Array.from({ length: 11 }, () => 0);
      counts[0] = i + 1;
      counts[2] = i;
      if (i % 5 === 0) counts[10] = 1;
      counts.forEach((c, b) => expected.set(b, (expected.get(b) ?? 0) + c));
      await finishTraceJob(tj, resultWith(counts));
    }
    const expectedBuckets: HistogramBucket[] = [...expected.entries()]
      .filter(([, c]) => c > 0)
      .sort(([a], [b]) => a - b)
      .map(([b, count]) => ({ low: 2 ** b, high: 2 ** (b + 1), count }));

    const run = await eventually(
      'the run is complete with a merged result',
      async () => {
        const tr = await getTrigger('twenty');
        const r = tr?.status?.runs?.find((x) => x.id === runId);
        return r?.result?.complete === true && r.result.nodes.contributed === 20 ? r : undefined;
      },
      120_000,
    );
    t.is(run.phase, 'Succeeded');
    t.is(run.traceJobs.length, 20);
    t.true(run.traceJobs.every((x) => x.phase === 'Succeeded'));
    t.false(run.result?.partial);
    const merged = run.result?.maps.find((m) => m.name === '@usecs')?.histograms?.[0];
    t.deepEqual(merged?.buckets, expectedBuckets, 'the merged histogram is the bucket-wise sum of the 20 results');
    t.is(
      merged?.total,
      expectedBuckets.reduce((s, b) => s + b.count, 0),
    );
    // Percentiles of the sum (here p99 = 8: 400 of 404 samples are below 8), not of any one node.
    t.like(merged, percentiles(expectedBuckets));
    t.is(merged?.p99, 8);

    // The same annotation value again fires nothing.
    await fire('twenty', 'first');
    await new Promise((r) => setTimeout(r, 3000));
    t.is((await listJson<TraceJob>(ns, 'tracejobs', `observe.alexeldeib.xyz/tracetrigger=twenty`)).length, 20);
  },
);

test.serial(
  'the node cap refuses a selector over too many nodes, saying how many matched, with no TraceJob',
  async (t) => {
    await apply(
      ns,
      trigger(
        'capped',
        { nodeSelector: { matchLabels: { [POOL_LABEL]: POOL, [GROUP_LABEL]: 'twenty' } }, maxNodes: 10 },
        { [FIRE]: 'go' },
      ),
    );
    const refused = await eventually(
      'the trigger says it refused the run',
      async () => {
        const tr = await getTrigger('capped');
        const c = tr?.status?.conditions?.find((x) => x.type === 'TargetsSelected');
        return c?.status === 'False' ? { tr, c } : undefined;
      },
      30_000,
    );
    t.is(refused.c.reason, 'TooManyNodes');
    t.regex(refused.c.message, /matches 20 Ready nodes, more than the limit of 10/);
    t.is(refused.tr?.status?.counts?.tooManyNodes, 1);
    t.is(refused.tr?.status?.lastHandledFire, 'go');
    t.is((await listJson<TraceJob>(ns, 'tracejobs', 'observe.alexeldeib.xyz/tracetrigger=capped')).length, 0);
  },
);

test.serial(
  'a manager SIGKILLed during a fan-out of 50 nodes leaves exactly one TraceJob per node after restart',
  async (t) => {
    t.timeout(300_000);
    const nodes = await addNodes('fifty', 50);
    await apply(
      ns,
      trigger('fifty', { nodeSelector: { matchLabels: { [POOL_LABEL]: POOL, [GROUP_LABEL]: 'fifty' } }, maxNodes: 50 }),
    );
    await fire('fifty', 'kill');
    const seenAtKill = await eventually(
      'the fan-out has begun',
      async () => {
        const n = (await runTraceJobs('fire-kill')).length;
        return n > 0 ? n : undefined;
      },
      30_000,
      50,
    );
    await manager.kill('SIGKILL');
    t.log(`SIGKILL with ${seenAtKill} of 50 TraceJobs seen`);
    manager = await startManager({ namespaces: [ns] });
    const tjs = await eventually(
      'the run has 50 TraceJobs',
      async () => {
        const list = await runTraceJobs('fire-kill');
        return list.length >= 50 ? list : undefined;
      },
      60_000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    const after = await runTraceJobs('fire-kill');
    t.is(after.length, 50);
    t.deepEqual(after.map((tj) => tj.spec.hostname).sort(), [...nodes].sort(), 'one TraceJob per node, no duplicates');
    t.is(new Set(tjs.map((tj) => tj.metadata.name)).size, tjs.length);
    const tr = await eventually('status records the run once', async () => {
      const x = await getTrigger('fifty');
      return x?.status?.lastHandledFire === 'kill' ? x : undefined;
    });
    t.is(tr.status?.counts?.runs, 1);
    t.is(tr.status?.runs?.filter((r) => r.id === 'fire-kill').length, 1);
  },
);

test.serial('a one-minute schedule fires twice and never overlaps under Forbid', async (t) => {
  t.timeout(240_000);
  await addNodes('cron', 2);
  await apply(
    ns,
    trigger('cron', {
      schedule: '* * * * *',
      nodeSelector: { matchLabels: { [POOL_LABEL]: POOL, [GROUP_LABEL]: 'cron' } },
    }),
  );
  const scheduleRuns = async (): Promise<Map<string, TraceJob[]>> => {
    const runs = new Map<string, TraceJob[]>();
    for (const tj of await listJson<TraceJob>(ns, 'tracejobs', 'observe.alexeldeib.xyz/tracetrigger=cron')) {
      const id = tj.metadata.labels?.[RUN_LABEL_KEY] ?? '';
      runs.set(id, [...(runs.get(id) ?? []), tj]);
    }
    return runs;
  };
  const first = await eventually(
    'the first scheduled run starts',
    async () => {
      const runs = await scheduleRuns();
      const [entry] = [...runs.entries()];
      return entry !== undefined && entry[1].length === 2 ? entry : undefined;
    },
    75_000,
  );
  const [firstId, firstJobs] = first;
  t.regex(firstId, /^schedule-\d{12}$/);
  // Leave the first run active past the next minute: Forbid must not start another.
  const scheduled = Date.parse(
    `${firstId.slice(9, 13)}-${firstId.slice(13, 15)}-${firstId.slice(15, 17)}T${firstId.slice(17, 19)}:${firstId.slice(19, 21)}:00Z`,
  );
  const nextTick = scheduled + 60_000;
  await new Promise((r) => setTimeout(r, Math.max(0, nextTick - Date.now()) + 8000));
  t.deepEqual([...(await scheduleRuns()).keys()], [firstId], 'no second run while the first is active');
  const waiting = await getTrigger('cron');
  t.is(waiting?.status?.lastScheduleTime, new Date(scheduled).toISOString().replace('.000Z', 'Z'));

  for (const tj of firstJobs) await finishTraceJob(tj, resultWith([1]));
  const firstEnded = Date.now();
  const second = await eventually(
    'the second run starts once the first ended',
    async () => {
      const runs = await scheduleRuns();
      const other = [...runs.entries()].find(([id]) => id !== firstId);
      return other !== undefined && other[1].length === 2 ? other : undefined;
    },
    90_000,
  );
  const [, secondJobs] = second;
  const firstDone = (await Promise.all(firstJobs.map((tj) => getJson<TraceJob>(ns, 'tracejob', tj.metadata.name)))).map(
    (tj) => Date.parse(tj?.status?.completionTime ?? tj?.metadata.creationTimestamp ?? ''),
  );
  const secondStart = Math.min(...secondJobs.map((tj) => Date.parse(tj.metadata.creationTimestamp ?? '')));
  t.true(
    secondStart >= Math.max(...firstDone) - 1000,
    `the second run (created ${new Date(secondStart).toISOString()}) began after the first ended (${new Date(Math.max(...firstDone)).toISOString()}; pods finished ${new Date(firstEnded).toISOString()})`,
  );
  t.is((await scheduleRuns()).size, 2);
});

test.serial('the scheduled and fleet samples apply (server dry run)', async (t) => {
  for (const file of [
    'observe_v1alpha1_tracetrigger_scheduled_biolatency.yaml',
    'observe_v1alpha1_tracetrigger_fleet_runqlat.yaml',
  ]) {
    const result = await kubectl(['apply', '--dry-run=server', '-f', `config/samples/${file}`], { namespace: ns });
    t.is(result.exitCode, 0, `${file}: ${result.stderr}`);
  }
});

test.serial('a manager down across two scheduled times starts one run, for the latest, after restart', async (t) => {
  t.timeout(240_000);
  await addNodes('downtime', 2);
  await manager.stop();
  await apply(
    ns,
    trigger('downtime', {
      schedule: '* * * * *',
      nodeSelector: { matchLabels: { [POOL_LABEL]: POOL, [GROUP_LABEL]: 'downtime' } },
    }),
  );
  const created = Date.parse((await getTrigger('downtime'))?.metadata.creationTimestamp ?? '');
  // Two whole minutes begin while no manager runs.
  const secondTick = (Math.floor(created / 60_000) + 2) * 60_000;
  await new Promise((r) => setTimeout(r, Math.max(0, secondTick - Date.now()) + 3000));
  manager = await startManager({ namespaces: [ns] });
  const runs = async (): Promise<Set<string>> =>
    new Set(
      (await listJson<TraceJob>(ns, 'tracejobs', 'observe.alexeldeib.xyz/tracetrigger=downtime')).map(
        (tj) => tj.metadata.labels?.[RUN_LABEL_KEY] ?? '',
      ),
    );
  await eventually('a run starts after the restart', async () => ((await runs()).size > 0 ? true : undefined), 30_000);
  const tr = await eventually('status records the handled time', async () => {
    const x = await getTrigger('downtime');
    return x?.status?.lastScheduleTime === undefined ? undefined : x;
  });
  const latest = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  const got = [...(await runs())];
  t.is(got.length, 1, `runs: ${got.join(', ')}`);
  // The one run is for the latest scheduled time before the restart (or the minute just begun, if it turned meanwhile).
  t.true(
    got[0] === `schedule-${latest.toISOString().replace(/[-:T]/g, '').slice(0, 12)}` ||
      got[0] === `schedule-${new Date(secondTick).toISOString().replace(/[-:T]/g, '').slice(0, 12)}`,
    got[0],
  );
  t.is(tr.status?.counts?.missedSchedules, 1);
  t.is(tr.status?.counts?.runs, 1);
});
