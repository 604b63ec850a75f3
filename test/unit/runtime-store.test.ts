// The reflector store: latest object per key, re-list reconciliation,
// indexes, readiness and change notifications; and the key helpers.
import test from 'ava';
import { controllerOwnerKey, objectKey, splitKey, type KubeObject } from '../../src/runtime/objects.ts';
import { Store, keysOf, type StoreChange } from '../../src/runtime/store.ts';

function cm(name: string, rv: string, labels: Record<string, string> = {}, namespace = 'ns'): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, resourceVersion: rv, labels } };
}

function record(store: Store<KubeObject>): string[] {
  const changes: string[] = [];
  store.subscribe((c: StoreChange<KubeObject>) =>
    changes.push(`${c.type} ${objectKey(c.object)}@${c.object.metadata.resourceVersion}`),
  );
  return changes;
}

test('sync fills the store and makes it ready; watch events update it', async (t) => {
  const store = new Store<KubeObject>({ name: 'configmaps' });
  const changes = record(store);
  t.false(store.hasSynced());
  const ready = store.ready();
  store.apply({ type: 'sync', objects: [cm('a', '1'), cm('b', '2')] });
  await ready;
  t.true(store.hasSynced());
  store.apply({ type: 'added', object: cm('c', '3') });
  store.apply({ type: 'modified', object: cm('a', '4') });
  store.apply({ type: 'deleted', object: cm('b', '5') });
  t.deepEqual(store.keys().sort(), ['ns/a', 'ns/c']);
  t.is(store.get('ns/a')?.metadata.resourceVersion, '4');
  t.is(store.get('ns/b'), undefined);
  t.is(store.size(), 2);
  t.deepEqual(changes, ['added ns/a@1', 'added ns/b@2', 'added ns/c@3', 'modified ns/a@4', 'deleted ns/b@5']);
});

test('a re-list replaces contents: vanished objects are deleted, changed ones modified, unchanged ones silent', (t) => {
  const store = new Store<KubeObject>({ name: 'configmaps' });
  store.apply({ type: 'sync', objects: [cm('keep', '1'), cm('change', '2'), cm('gone', '3')] });
  const changes = record(store);
  store.apply({ type: 'sync', objects: [cm('keep', '1'), cm('change', '7'), cm('new', '8')] });
  t.deepEqual(changes.sort(), ['added ns/new@8', 'deleted ns/gone@3', 'modified ns/change@7']);
  t.deepEqual(store.keys().sort(), ['ns/change', 'ns/keep', 'ns/new']);
});

test('an event with the stored resourceVersion is silent; deleting an unknown key is still reported', (t) => {
  const store = new Store<KubeObject>({ name: 'configmaps' });
  store.apply({ type: 'sync', objects: [cm('a', '1')] });
  const changes = record(store);
  store.apply({ type: 'modified', object: cm('a', '1') });
  store.apply({ type: 'deleted', object: cm('never-seen', '9') });
  t.deepEqual(changes, ['deleted ns/never-seen@9']);
});

test('secondary indexes follow adds, label changes, deletes and re-lists', (t) => {
  const store = new Store<KubeObject>({
    name: 'jobs',
    indexers: { traceId: (o) => o.metadata.labels?.['iovisor.org/kubectl-trace-id'] },
  });
  const id = 'iovisor.org/kubectl-trace-id';
  store.apply({ type: 'sync', objects: [cm('a', '1', { [id]: 'x' }), cm('b', '1', { [id]: 'x' }), cm('c', '1')] });
  t.deepEqual(
    store
      .byIndex('traceId', 'x')
      .map((o) => o.metadata.name)
      .sort(),
    ['a', 'b'],
  );
  store.apply({ type: 'modified', object: cm('a', '2', { [id]: 'y' }) });
  t.deepEqual(
    store.byIndex('traceId', 'x').map((o) => o.metadata.name),
    ['b'],
  );
  t.deepEqual(
    store.byIndex('traceId', 'y').map((o) => o.metadata.name),
    ['a'],
  );
  store.apply({ type: 'deleted', object: cm('b', '3', { [id]: 'x' }) });
  t.deepEqual(store.byIndex('traceId', 'x'), []);
  store.apply({ type: 'sync', objects: [cm('c', '1')] });
  t.deepEqual(store.byIndex('traceId', 'y'), []);
  t.throws(() => store.byIndex('nope', 'x'), { message: /no index 'nope'.*traceId/ });
});

test('an index added later covers objects already stored; multi-valued and throwing indexers', (t) => {
  const logs: string[] = [];
  const store = new Store<KubeObject>({
    name: 'x',
    logger: {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (m) => logs.push(m),
      child() {
        return this;
      },
      enabled: () => true,
    },
  });
  store.apply({ type: 'sync', objects: [cm('a', '1', { k: 'v' }), cm('bad', '1')] });
  store.addIndex('labels', (o) => {
    if (o.metadata.name === 'bad') throw new Error('indexer bug');
    return Object.entries(o.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  });
  t.deepEqual(
    store.byIndex('labels', 'k=v').map((o) => o.metadata.name),
    ['a'],
  );
  t.true(logs.some((l) => l.includes('indexer threw')));
  t.throws(() => store.addIndex('labels', () => undefined), { message: /already has an index/ });
});

test('a listener that throws does not stop the store or other listeners', (t) => {
  const store = new Store<KubeObject>({ name: 'x' });
  store.subscribe(() => {
    throw new Error('listener bug');
  });
  const changes = record(store);
  store.apply({ type: 'sync', objects: [cm('a', '1')] });
  t.deepEqual(changes, ['added ns/a@1']);
  t.truthy(store.get('ns/a'));
});

test('unsubscribe stops notifications; ready rejects when its signal aborts', async (t) => {
  const store = new Store<KubeObject>({ name: 'x' });
  const changes: string[] = [];
  const off = store.subscribe((c) => changes.push(c.type));
  off();
  const ac = new AbortController();
  const waiting = store.ready(ac.signal);
  ac.abort(new Error('stopped'));
  await t.throwsAsync(waiting, { message: 'stopped' });
  store.apply({ type: 'sync', objects: [cm('a', '1')] });
  t.deepEqual(changes, []);
  await store.ready(AbortSignal.abort());
  t.pass('ready resolves at once after sync, even with an aborted signal');
});

test('keysOf maps a change to keys of both the new and the old object', (t) => {
  const owner = (o: KubeObject): string | undefined =>
    controllerOwnerKey(o, { kind: 'TraceJob', apiGroup: 'observe.alexeldeib.xyz' });
  const withOwner = (name: string, ownerName: string): KubeObject => ({
    metadata: {
      name,
      namespace: 'ns',
      resourceVersion: '1',
      ownerReferences: [
        {
          apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
          kind: 'TraceJob',
          name: ownerName,
          uid: 'u',
          controller: true,
        },
      ],
    },
  });
  const map = keysOf(owner);
  t.deepEqual(map({ type: 'added', object: withOwner('job', 'tj1') }), ['ns/tj1']);
  t.deepEqual(map({ type: 'modified', object: withOwner('job', 'tj2'), old: withOwner('job', 'tj1') }).sort(), [
    'ns/tj1',
    'ns/tj2',
  ]);
  t.deepEqual(map({ type: 'deleted', object: cm('orphan', '1') }), []);
});

test('controllerOwnerKey needs controller=true and the right kind and group', (t) => {
  const obj = (refs: NonNullable<KubeObject['metadata']['ownerReferences']>): KubeObject => ({
    metadata: { name: 'x', namespace: 'ns', ownerReferences: refs },
  });
  const ref = { apiVersion: 'observe.alexeldeib.xyz/v1alpha1', kind: 'TraceJob', name: 'tj', uid: 'u' };
  t.is(controllerOwnerKey(obj([{ ...ref, controller: true }]), { kind: 'TraceJob' }), 'ns/tj');
  t.is(controllerOwnerKey(obj([ref]), { kind: 'TraceJob' }), undefined);
  t.is(controllerOwnerKey(obj([{ ...ref, controller: true }]), { kind: 'TraceJob', apiGroup: 'other.io' }), undefined);
  t.is(controllerOwnerKey(obj([{ ...ref, controller: true, kind: 'Job' }]), { kind: 'TraceJob' }), undefined);
  t.is(
    controllerOwnerKey(obj([{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u', controller: true }]), {
      kind: 'Node',
      apiGroup: '',
    }),
    'ns/n1',
  );
  t.deepEqual(splitKey('ns/name'), { namespace: 'ns', name: 'name' });
  t.deepEqual(splitKey('cluster-scoped'), { name: 'cluster-scoped' });
  t.is(objectKey({ metadata: { name: 'node1' } }), 'node1');
});
