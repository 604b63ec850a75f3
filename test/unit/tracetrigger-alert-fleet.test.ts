import test from 'ava';
import { planAlertNotification, type NotifiedAlert } from '../../src/tracetrigger/alert-firing.ts';
import type { FleetNode } from '../../src/tracetrigger/fleet.ts';
import { parseMatcherList } from '../../src/tracetrigger/matchers.ts';
import type { TraceTrigger } from '../../src/tracetrigger/schema.ts';
import { NodeIndex } from '../../src/tracetrigger/target.ts';

const fleetNodes: FleetNode[] = [
  { name: 'db-0', labels: { pool: 'db' }, ready: true },
  { name: 'db-1', labels: { pool: 'db' }, ready: true },
  { name: 'web-0', labels: { pool: 'web' }, ready: true },
];
const index = new NodeIndex(fleetNodes.map((n) => ({ name: n.name, internalIPs: [] })));

function trigger(spec: Partial<TraceTrigger['spec']> = {}): TraceTrigger {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name: 't', namespace: 'ns', uid: 'u' },
    spec: {
      alert: { matchers: ['alertname="DbSlow"'] },
      nodeSelector: { matchLabels: { pool: 'db' } },
      template: { spec: { program: 'BEGIN {}' } },
      ...spec,
    },
  };
}

const alert = (labels: Record<string, string>, status: 'firing' | 'resolved' = 'firing'): NotifiedAlert => ({
  status,
  labels: { alertname: 'DbSlow', ...labels },
  startsAt: '2026-01-01T00:00:00Z',
  fingerprint: 'f1',
});

function matchers() {
  const parsed = parseMatcherList(['alertname="DbSlow"']);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.matchers;
}

const targets = (plan: ReturnType<typeof planAlertNotification>): string[] =>
  plan.firing.items.map((i) => (i.resolution.ok ? i.resolution.target.key : `unresolved: ${i.resolution.message}`));

test('an alert that names a node targets only that node, selector or not', (t) => {
  const plan = planAlertNotification(trigger(), matchers(), [alert({ node: 'web-0' })], index, { nodes: fleetNodes });
  t.deepEqual(targets(plan), ['node/web-0']);
});

test('an alert that names no node uses the selector: one item per selected Ready node, one firing key', (t) => {
  const plan = planAlertNotification(trigger(), matchers(), [alert({ service: 'postgres' })], index, {
    nodes: fleetNodes,
  });
  t.deepEqual(targets(plan), ['node/db-0', 'node/db-1']);
  t.is(new Set(plan.firing.items.map((i) => i.key)).size, 1);
});

test('without a selector an alert naming no node stays unresolved', (t) => {
  const plan = planAlertNotification(trigger({ nodeSelector: undefined }), matchers(), [alert({})], index, {
    nodes: fleetNodes,
  });
  t.is(plan.firing.items.length, 1);
  t.false(plan.firing.items[0]?.resolution.ok);
});

test('the node cap holds for alerts too', (t) => {
  const plan = planAlertNotification(trigger({ maxNodes: 1 }), matchers(), [alert({})], index, { nodes: fleetNodes });
  t.deepEqual(targets(plan), [
    'unresolved: the alert names no node, and spec.nodeSelector matches 2 Ready nodes, more than the limit of 1 (spec.maxNodes); nothing was created: narrow spec.nodeSelector or raise spec.maxNodes.',
  ]);
});

test('stopOnResolved stops every node the alert fanned out to', (t) => {
  const spec = trigger().spec;
  const tr = trigger({ alert: { ...(spec.alert ?? { matchers: [] }), stopOnResolved: true } });
  const plan = planAlertNotification(tr, matchers(), [alert({}, 'resolved')], index, { nodes: fleetNodes });
  t.is(plan.stop.length, 2);
});
