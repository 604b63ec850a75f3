import test from 'ava';
import {
  NodeIndex,
  hostCandidates,
  resolveNodeFromLabels,
  resolvePodFromLabels,
} from '../../src/tracetrigger/target.ts';

const nodes = new NodeIndex([
  { name: 'kwok-node-0', hostnameLabel: 'kwok-node-0', internalIPs: ['10.0.0.10'] },
  { name: 'kwok-node-1', hostnameLabel: 'kwok-host-1.internal', internalIPs: ['10.0.0.11', 'fd00::11'] },
]);
const resolve = (labels: Record<string, string>, nodeLabels?: string[]) =>
  resolveNodeFromLabels(labels, nodeLabels === undefined ? {} : { nodeLabels }, nodes);
const nodeOf = (labels: Record<string, string>, nodeLabels?: string[]) => {
  const r = resolve(labels, nodeLabels);
  return r.ok && r.target.kind === 'node'
    ? `${r.target.nodeName} via ${r.label}`
    : `unresolved: ${r.ok ? '' : r.message}`;
};

test('node label first, then instance, then kubernetes_node', (t) => {
  t.is(nodeOf({ node: 'kwok-node-0', instance: 'kwok-node-1:9100' }), 'kwok-node-0 via node');
  t.is(nodeOf({ instance: 'kwok-node-1:9100', kubernetes_node: 'kwok-node-0' }), 'kwok-node-1 via instance');
  t.is(nodeOf({ kubernetes_node: 'kwok-node-0' }), 'kwok-node-0 via kubernetes_node');
});

test('a label that names no node falls through to the next', (t) => {
  t.is(nodeOf({ node: 'gone', instance: '10.0.0.11:9100' }), 'kwok-node-1 via instance');
});

test('instance as host, host:port, ip:port, [v6]:port; hostname label and InternalIP', (t) => {
  t.is(nodeOf({ instance: 'kwok-host-1.internal' }), 'kwok-node-1 via instance');
  t.is(nodeOf({ instance: 'kwok-host-1.internal:9100' }), 'kwok-node-1 via instance');
  t.is(nodeOf({ instance: '10.0.0.10:9100' }), 'kwok-node-0 via instance');
  t.is(nodeOf({ instance: '[fd00::11]:9100' }), 'kwok-node-1 via instance');
  t.deepEqual(hostCandidates('a:1'), ['a:1', 'a']);
  t.deepEqual(hostCandidates('fd00::1'), ['fd00::1']);
});

test('configured labels replace the defaults', (t) => {
  t.is(nodeOf({ host: 'kwok-node-1', node: 'kwok-node-0' }, ['host']), 'kwok-node-1 via host');
  t.regex(nodeOf({ node: 'kwok-node-0' }, ['host']), /unresolved: .*none of them was set/);
});

test('unresolved: the message names the labels seen and flags invalid node names', (t) => {
  const r = resolve({ node: 'Not_A/Node', instance: 'elsewhere:9100' });
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(r.seen, { node: 'Not_A/Node', instance: 'elsewhere:9100' });
  t.regex(r.message, /node="Not_A\/Node", instance="elsewhere:9100"/);
  t.regex(r.message, /node is not a valid node name/);
});

test('pods: namespace + pod (+ container), only in the trigger namespace', (t) => {
  const ok = resolvePodFromLabels({ namespace: 'shop', pod: 'api-7d9', container: 'app' }, {}, 'shop');
  t.true(ok.ok);
  if (ok.ok)
    t.deepEqual(ok.target, {
      kind: 'pod',
      namespace: 'shop',
      pod: 'api-7d9',
      container: 'app',
      key: 'pod/shop/api-7d9/app',
    });
  const other = resolvePodFromLabels({ namespace: 'other', pod: 'api' }, {}, 'shop');
  t.false(other.ok);
  if (!other.ok) t.regex(other.message, /namespace other/);
  const custom = resolvePodFromLabels({ exported_pod: 'x' }, { podLabels: { pod: 'exported_pod' } }, 'shop');
  t.true(custom.ok);
  t.false(resolvePodFromLabels({ namespace: 'shop' }, {}, 'shop').ok);
  t.false(resolvePodFromLabels({ pod: 'Bad_Name' }, {}, 'shop').ok);
});

test('an InternalIP shared by two nodes names neither', (t) => {
  const shared = new NodeIndex([
    { name: 'a', internalIPs: ['127.0.0.1'] },
    { name: 'b', internalIPs: ['127.0.0.1'] },
  ]);
  t.false(resolveNodeFromLabels({ instance: '127.0.0.1:9100' }, {}, shared).ok);
  t.true(resolveNodeFromLabels({ instance: 'b:9100' }, {}, shared).ok);
});
