import test from 'ava';

test('runs on node 24', (t) => {
  t.is(process.versions.node.split('.')[0], '24');
});
