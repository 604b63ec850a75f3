import test from 'ava';
import type { V1Node } from '@kubernetes/client-node';
import {
  effectiveNodeCap,
  fleetNodeOf,
  isNodeReady,
  type FleetNode,
  selectFleet,
  selectorMatches,
  selectorProblems,
} from '../../src/tracetrigger/fleet.ts';
import { annotationRunId, runTraceJobName, scheduledTimeOfRun, scheduleRunId } from '../../src/tracetrigger/run.ts';
import { isDnsSubdomain, isLabelValue } from '../../src/tracejob/formats.ts';

function v1node(name: string, labels: Record<string, string>, ready: boolean | 'Unknown' = true): V1Node {
  return {
    metadata: { name, labels },
    status: {
      conditions: [{ type: 'Ready', status: ready === 'Unknown' ? 'Unknown' : ready ? 'True' : 'False' }],
    },
  };
}

const node = (name: string, labels: Record<string, string>, ready = true): FleetNode => ({ name, labels, ready });

test('matchLabels and the four operators select as a Kubernetes LabelSelector does', (t) => {
  const labels = { pool: 'db', zone: 'a', ssd: '' };
  t.true(selectorMatches({}, labels)); // empty selects everything
  t.true(selectorMatches({ matchLabels: { pool: 'db' } }, labels));
  t.false(selectorMatches({ matchLabels: { pool: 'db', zone: 'b' } }, labels));
  t.true(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['c'] }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'rack', operator: 'In', values: ['a'] }] }, labels));
  t.true(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['c'] }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels));
  t.true(selectorMatches({ matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['a'] }] }, labels)); // absent key
  t.true(selectorMatches({ matchExpressions: [{ key: 'ssd', operator: 'Exists' }] }, labels)); // empty value exists
  t.false(selectorMatches({ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }, labels));
  t.true(selectorMatches({ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'pool', operator: 'DoesNotExist' }] }, labels));
  // Everything is AND-ed.
  t.false(
    selectorMatches(
      {
        matchLabels: { pool: 'db' },
        matchExpressions: [
          { key: 'ssd', operator: 'Exists' },
          { key: 'zone', operator: 'In', values: ['b'] },
        ],
      },
      labels,
    ),
  );
});

test('selector problems: In/NotIn need values, Exists/DoesNotExist take none', (t) => {
  t.deepEqual(
    selectorProblems({
      matchExpressions: [
        { key: 'a', operator: 'In', values: [] },
        { key: 'b', operator: 'NotIn' },
        { key: 'c', operator: 'Exists', values: ['x'] },
        { key: 'd', operator: 'DoesNotExist' },
      ],
    }).map((p) => p.field),
    [
      'spec.nodeSelector.matchExpressions[0].values',
      'spec.nodeSelector.matchExpressions[1].values',
      'spec.nodeSelector.matchExpressions[2].values',
    ],
  );
});

test('only Ready nodes are selected, sorted by name; the others are counted', (t) => {
  t.true(isNodeReady(v1node('a', {})));
  t.false(isNodeReady(v1node('a', {}, false)));
  t.false(isNodeReady(v1node('a', {}, 'Unknown')));
  t.deepEqual(fleetNodeOf(v1node('a', { x: 'y' })), { name: 'a', labels: { x: 'y' }, ready: true });
  t.false(isNodeReady({ metadata: { name: 'x' } }));
  const nodes = [
    node('db-2', { pool: 'db' }),
    node('db-1', { pool: 'db' }),
    node('db-3', { pool: 'db' }, false),
    node('web-1', { pool: 'web' }),
  ];
  t.deepEqual(selectFleet(nodes, { matchLabels: { pool: 'db' } }, { maxNodes: 50 }), {
    ok: true,
    nodes: ['db-1', 'db-2'],
    notReady: 1,
  });
});

test('more Ready nodes than the cap are refused as a whole, saying how many matched', (t) => {
  const nodes = Array.from({ length: 12 }, (_, i) => node(`n${i}`, { pool: 'db' }));
  const refused = selectFleet(nodes, { matchLabels: { pool: 'db' } }, { maxNodes: 10 });
  t.like(refused, { ok: false, reason: 'TooManyNodes', matched: 12, limit: 10 });
  if (!refused.ok) t.regex(refused.message, /matches 12 Ready nodes, more than the limit of 10 \(spec.maxNodes\)/);
  // The operator-wide cap wins when it is lower, and the message says so.
  const byOperator = selectFleet(nodes, {}, { maxNodes: 50, operatorMaxNodes: 5 });
  t.like(byOperator, { ok: false, reason: 'TooManyNodes', matched: 12, limit: 5 });
  if (!byOperator.ok) t.regex(byOperator.message, /--max-fleet-nodes/);
  // Exactly at the cap is fine.
  t.like(selectFleet(nodes, {}, { maxNodes: 12 }), { ok: true });
  t.deepEqual(effectiveNodeCap({ maxNodes: 10, operatorMaxNodes: 20 }), { limit: 10, by: 'spec.maxNodes' });
});

test('no Ready node selected is refused with what to check', (t) => {
  const sel = selectFleet([node('a', { pool: 'db' }, false)], { matchLabels: { pool: 'db' } }, { maxNodes: 5 });
  t.like(sel, { ok: false, reason: 'NoNodes', matched: 0, notReady: 1 });
  if (!sel.ok) t.regex(sel.message, /no Ready node \(1 more matched but are not Ready\)/);
});

test('run ids: a schedule time gives schedule-<UTC minute>, and back', (t) => {
  const id = scheduleRunId(new Date('2026-03-29T01:00:00Z'));
  t.is(id, 'schedule-202603290100');
  t.true(isLabelValue(id));
  t.deepEqual(scheduledTimeOfRun(id), new Date('2026-03-29T01:00:00Z'));
  t.is(scheduledTimeOfRun('fire-1'), undefined);
});

test('run ids: an annotation value gives a label-safe id, the same for the same value', (t) => {
  t.is(annotationRunId('1764625000'), 'fire-1764625000');
  const odd = annotationRunId('now please! ' + 'x'.repeat(300));
  t.true(isLabelValue(odd), odd);
  t.is(annotationRunId('now please! ' + 'x'.repeat(300)), odd);
  t.not(annotationRunId('now please! ' + 'x'.repeat(299) + 'y'), odd); // the whole value counts
});

test('TraceJob names are deterministic per (trigger uid, run id, node) and valid names', (t) => {
  const trigger = { name: 'db-latency', uid: '4a7c1f7e-0000-4000-8000-000000000001' };
  const a = runTraceJobName(trigger, 'schedule-202601010015', 'kwok-node-0');
  t.is(runTraceJobName(trigger, 'schedule-202601010015', 'kwok-node-0'), a);
  t.true(isDnsSubdomain(a) && a.length <= 63, a);
  t.regex(a, /^db-latency-[0-9a-f]{16}$/);
  t.not(runTraceJobName(trigger, 'schedule-202601010030', 'kwok-node-0'), a);
  t.not(runTraceJobName(trigger, 'schedule-202601010015', 'kwok-node-1'), a);
  t.not(
    runTraceJobName(
      { ...trigger, uid: '4a7c1f7e-0000-4000-8000-000000000002' },
      'schedule-202601010015',
      'kwok-node-0',
    ),
    a,
  );
});
