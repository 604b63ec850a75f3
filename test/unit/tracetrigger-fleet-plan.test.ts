import test from 'ava';
import type { FleetNode } from '../../src/tracetrigger/fleet.ts';
import {
  CACHE_LAG_MS,
  fleetSpecProblems,
  groupRuns,
  planFleet,
  runsStatus,
  runsToDelete,
  type RunTraceJobFacts,
  type RunView,
} from '../../src/tracetrigger/fleet-plan.ts';
import { FIRE_ANNOTATION_KEY } from '../../src/tracetrigger/constants.ts';
import { buildTriggeredTraceJob } from '../../src/tracetrigger/firing.ts';
import { RUN_LABEL_KEY } from '../../src/tracetrigger/run.ts';
import type { TraceTrigger } from '../../src/tracetrigger/schema.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const min = 60_000;

function trigger(spec: Partial<TraceTrigger['spec']> = {}, over: Partial<TraceTrigger> = {}): TraceTrigger {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name: 'db', namespace: 'ns', uid: 'uid-1', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      schedule: '*/15 * * * *',
      nodeSelector: { matchLabels: { pool: 'db' } },
      template: { spec: { program: 'BEGIN { exit(); }' } },
      ...spec,
    },
    ...over,
  };
}

const nodes: FleetNode[] = [
  { name: 'db-1', labels: { pool: 'db' }, ready: true },
  { name: 'db-0', labels: { pool: 'db' }, ready: true },
  { name: 'web-0', labels: { pool: 'web' }, ready: true },
];

function tj(runId: string, node: string, phase?: RunTraceJobFacts['phase'], createdAt = T0): RunTraceJobFacts {
  return {
    name: `${runId}-${node}`,
    runId,
    by: 'schedule',
    node,
    createdAt,
    ...(phase === undefined ? {} : { phase }),
  };
}

test('at a scheduled time the plan fans out to the selected Ready nodes and records the time', (t) => {
  const plan = planFleet({ trigger: trigger(), now: new Date(T0 + 15 * min + 3000), runs: [], nodes });
  t.deepEqual(plan.fire, { source: 'schedule', runId: 'schedule-202601010015', nodes: ['db-0', 'db-1'], replace: [] });
  t.deepEqual(plan.record, { lastScheduleTime: '2026-01-01T00:15:00Z', counts: { runs: 1 } });
  t.like(plan.selection, { status: 'True', reason: 'Selected' });
  t.truthy(plan.events.find((e) => e.reason === 'RunStarted'));
});

test('between scheduled times nothing fires and the plan requeues at the next one', (t) => {
  const plan = planFleet({
    trigger: trigger({}, { status: { lastScheduleTime: '2026-01-01T00:15:00Z' } }),
    now: new Date(T0 + 20 * min),
    runs: [],
    nodes,
  });
  t.is(plan.fire, undefined);
  t.deepEqual(plan.requeueAt, new Date(T0 + 30 * min));
  t.deepEqual(plan.record.counts, {});
});

test('a restart after a long downtime starts one run for the latest time and counts the missed ones', (t) => {
  const plan = planFleet({
    trigger: trigger({}, { status: { lastScheduleTime: '2026-01-01T00:15:00Z' } }),
    now: new Date(T0 + 125 * min),
    runs: [],
    nodes,
  });
  t.is(plan.fire?.runId, 'schedule-202601010200');
  t.deepEqual(plan.record.counts, { runs: 1, missedSchedules: 6 });
});

test('a crash after some TraceJobs of a run were created continues that run, even under Forbid', (t) => {
  const runs = groupRuns([tj('schedule-202601010015', 'db-0', 'Running')], [], T0 + 16 * min);
  const plan = planFleet({ trigger: trigger(), now: new Date(T0 + 16 * min), runs, nodes });
  t.is(plan.fire?.runId, 'schedule-202601010015');
  t.deepEqual(plan.fire?.nodes, ['db-0', 'db-1']);
});

test('Forbid waits while another run is active; Replace stops it; Allow runs alongside', (t) => {
  const runs = groupRuns([tj('schedule-202601010000', 'db-0', 'Running')], [], T0 + 15 * min);
  const at = { now: new Date(T0 + 15 * min + 1000), runs, nodes };
  const forbid = planFleet({ ...at, trigger: trigger({}, { status: { lastScheduleTime: '2026-01-01T00:00:00Z' } }) });
  t.is(forbid.fire, undefined);
  t.is(forbid.record.lastScheduleTime, undefined);
  t.truthy(forbid.events.find((e) => e.reason === 'RunForbidden'));
  const replace = planFleet({
    ...at,
    trigger: trigger({ concurrencyPolicy: 'Replace' }, { status: { lastScheduleTime: '2026-01-01T00:00:00Z' } }),
  });
  t.deepEqual(replace.fire?.replace, ['schedule-202601010000']);
  t.is(replace.record.counts.replaced, 1);
  const allow = planFleet({
    ...at,
    trigger: trigger({ concurrencyPolicy: 'Allow' }, { status: { lastScheduleTime: '2026-01-01T00:00:00Z' } }),
  });
  t.deepEqual(allow.fire?.replace, []);
});

test('too many nodes: nothing fires, the time is recorded, counted, and the condition says how many matched', (t) => {
  const plan = planFleet({ trigger: trigger({ maxNodes: 1 }), now: new Date(T0 + 15 * min), runs: [], nodes });
  t.is(plan.fire, undefined);
  t.deepEqual(plan.record, { lastScheduleTime: '2026-01-01T00:15:00Z', counts: { tooManyNodes: 1 } });
  t.like(plan.selection, { status: 'False', reason: 'TooManyNodes' });
  t.regex(plan.selection?.message ?? '', /matches 2 Ready nodes, more than the limit of 1/);
  const byFlag = planFleet({ trigger: trigger(), now: new Date(T0 + 15 * min), runs: [], nodes, operatorMaxNodes: 1 });
  t.like(byFlag.selection, { reason: 'TooManyNodes' });
});

test('startingDeadlineSeconds: a late time is recorded and counted, not started', (t) => {
  const plan = planFleet({
    trigger: trigger({ startingDeadlineSeconds: 30 }, { status: { lastScheduleTime: '2026-01-01T00:00:00Z' } }),
    now: new Date(T0 + 16 * min),
    runs: [],
    nodes,
  });
  t.is(plan.fire, undefined);
  t.deepEqual(plan.record, { lastScheduleTime: '2026-01-01T00:15:00Z', counts: { startingDeadline: 1 } });
});

test('a bad schedule is a problem, not a crash', (t) => {
  const plan = planFleet({ trigger: trigger({ schedule: '* * *' }), now: new Date(T0), runs: [], nodes });
  t.like(plan.problem, { field: 'spec.schedule' });
  t.is(plan.fire, undefined);
});

test('a new fire annotation value fires once; the handled value never fires again', (t) => {
  const annotated = (value: string, handled?: string): TraceTrigger =>
    trigger(
      { schedule: undefined },
      {
        metadata: { name: 'db', namespace: 'ns', uid: 'u', annotations: { [FIRE_ANNOTATION_KEY]: value } },
        ...(handled === undefined ? {} : { status: { lastHandledFire: handled } }),
      },
    );
  const first = planFleet({ trigger: annotated('1764625000'), now: new Date(T0), runs: [], nodes });
  t.deepEqual(first.fire, { source: 'annotation', runId: 'fire-1764625000', nodes: ['db-0', 'db-1'], replace: [] });
  t.deepEqual(first.record, { lastHandledFire: '1764625000', counts: { runs: 1 } });
  const again = planFleet({ trigger: annotated('1764625000', '1764625000'), now: new Date(T0), runs: [], nodes });
  t.is(again.fire, undefined);
  t.deepEqual(again.record, { counts: {} });
  const suspended = planFleet({
    trigger: { ...annotated('x'), spec: { ...annotated('x').spec, suspend: true } },
    now: new Date(T0),
    runs: [],
    nodes,
  });
  t.is(suspended.fire, undefined);
  t.deepEqual(suspended.record, { lastHandledFire: 'x', counts: { suspended: 1 } });
});

test('the fire annotation waits under Forbid while a run is active, without recording the value', (t) => {
  const tr = trigger(
    { schedule: undefined },
    { metadata: { name: 'db', namespace: 'ns', uid: 'u', annotations: { [FIRE_ANNOTATION_KEY]: 'v2' } } },
  );
  const runs = groupRuns([tj('fire-v1', 'db-0', 'Running')], [], T0);
  const plan = planFleet({ trigger: tr, now: new Date(T0), runs, nodes });
  t.is(plan.fire, undefined);
  t.is(plan.record.lastHandledFire, undefined);
});

test('a firing without a nodeSelector says what to set', (t) => {
  const tr = trigger(
    { schedule: undefined, nodeSelector: undefined },
    { metadata: { name: 'db', namespace: 'ns', uid: 'u', annotations: { [FIRE_ANNOTATION_KEY]: 'v' } } },
  );
  const plan = planFleet({ trigger: tr, now: new Date(T0), runs: [], nodes });
  t.like(plan.selection, { status: 'False', reason: 'NoNodeSelector' });
  t.deepEqual(plan.record, { lastHandledFire: 'v', counts: { noNodes: 1 } });
});

test('runs are grouped by run id, newest first, with phases from their TraceJobs', (t) => {
  const runs = groupRuns(
    [
      tj('schedule-202601010000', 'db-0', 'Succeeded'),
      tj('schedule-202601010000', 'db-1', 'Failed'),
      tj('schedule-202601010015', 'db-0', 'Succeeded'),
      tj('schedule-202601010030', 'db-0', 'Running'),
      tj('schedule-202601010045', 'db-0', 'Failed'),
    ],
    [],
    T0,
  );
  t.deepEqual(
    runs.map((r) => [r.id, r.phase]),
    [
      ['schedule-202601010045', 'Failed'],
      ['schedule-202601010030', 'Running'],
      ['schedule-202601010015', 'Succeeded'],
      ['schedule-202601010000', 'PartiallyFailed'],
    ],
  );
  t.true(runs[3]?.result.partial);
  const status = runsStatus(runs);
  t.is(status[0]?.time, '2026-01-01T00:45:00Z');
  t.deepEqual(status[3]?.traceJobs, [
    { name: 'schedule-202601010000-db-0', node: 'db-0', phase: 'Succeeded' },
    { name: 'schedule-202601010000-db-1', node: 'db-1', phase: 'Failed' },
  ]);
});

test('a run recorded in status but not in the cache yet is kept for a short while', (t) => {
  const recorded = runsStatus(groupRuns([tj('fire-a', 'db-0')], [], T0));
  t.is(groupRuns([], recorded, T0 + 1000)[0]?.id, 'fire-a');
  t.is(groupRuns([], recorded, T0 + CACHE_LAG_MS + 1).length, 0);
});

test('history: finished runs beyond the limits are deleted oldest first; running ones never', (t) => {
  const facts: RunTraceJobFacts[] = [];
  for (let i = 0; i < 6; i++) facts.push(tj(`fire-s${i}`, 'db-0', 'Succeeded', T0 + i * min));
  for (let i = 0; i < 3; i++) facts.push(tj(`fire-f${i}`, 'db-0', 'Failed', T0 + (10 + i) * min));
  facts.push(tj('fire-r', 'db-0', 'Running', T0));
  const runs: RunView[] = groupRuns(facts, [], T0 + 20 * min);
  const del = runsToDelete(runs, { successfulRunsHistoryLimit: 2, failedRunsHistoryLimit: 1 });
  t.deepEqual(
    del.map((r) => r.id),
    ['fire-s0', 'fire-s1', 'fire-s2', 'fire-s3', 'fire-f0', 'fire-f1'],
  );
  // The defaults keep 10 successful and 3 failed runs: nothing to delete here.
  t.deepEqual(runsToDelete(runs, {}), []);
});

test('validation names a bad schedule, zone or selector operator', (t) => {
  const problems = fleetSpecProblems({
    schedule: '*/15 * * *',
    timeZone: 'Etc/UTC',
    nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'In' }] },
    template: { spec: { program: 'BEGIN {}' } },
  });
  t.deepEqual(
    problems.map((p) => [p.field, p.reason]),
    [
      ['spec.schedule', 'InvalidSchedule'],
      ['spec.nodeSelector.matchExpressions[0].values', 'InvalidNodeSelector'],
    ],
  );
  t.deepEqual(fleetSpecProblems(trigger().spec), []);
});

test('a fleet TraceJob carries its run as a label and an annotation', (t) => {
  const built = buildTriggeredTraceJob(
    trigger(),
    'schedule',
    'db-0123456789abcdef',
    {
      key: 'schedule-202601010015',
      resolution: { ok: true, label: 'nodeSelector', target: { kind: 'node', nodeName: 'db-0', key: 'node/db-0' } },
    },
    'schedule-202601010015',
  );
  t.is(built.metadata.labels?.[RUN_LABEL_KEY], 'schedule-202601010015');
  t.is(built.spec.hostname, 'db-0');
});
