// KubeClient against the real local API server: CRUD, every patch type,
// optimistic concurrency, the status subresource, pod logs through kwok's
// kubelet server, ApiError reasons, and the request counter.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { scratchDir } from '../support/scratch-dir.ts';
import test from 'ava';
import { isAlreadyExists, isConflict, isInvalid, isNotFound, type ApiError } from '../../src/runtime/api-error.ts';
import { KubeClient, loadKubeConfig, resourcePath } from '../../src/runtime/kube-client.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import type { KubeObject, ObjectList, Status } from '../../src/runtime/objects.ts';
import { clusterAvailable, createTestNamespace, kubeconfigPath, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';

test.before(() => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
});

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

function client(metrics?: RuntimeMetrics): KubeClient {
  return new KubeClient({
    kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }),
    ...(metrics === undefined ? {} : { metrics }),
  });
}

test('create, get, list, replace, every patch type and delete a ConfigMap', async (t) => {
  const ns = await createTestNamespace('rt-client');
  t.teardown(ns.cleanup);
  const c = client();
  t.teardown(() => c.close());
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  const item = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name, name: 'cm' });

  const created = await c.create<ConfigMap>(collection, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cm', labels: { app: 'x' } },
    data: { a: '1' },
  });
  t.is(created.metadata.namespace, ns.name);
  t.truthy(created.metadata.resourceVersion);
  const got = await c.get<ConfigMap>(item);
  t.deepEqual(got.data, { a: '1' });

  const listed = await c.list<ConfigMap>(collection, { labelSelector: 'app=x' });
  t.deepEqual(
    listed.items.map((i) => i.metadata.name),
    ['cm'],
  );
  t.truthy(listed.metadata.resourceVersion);
  t.deepEqual((await c.list<ConfigMap>(collection, { labelSelector: 'app=y' })).items, []);

  const replaced = await c.replace<ConfigMap>(item, { ...got, data: { a: '2' } });
  t.deepEqual(replaced.data, { a: '2' });
  const merged = await c.patch<ConfigMap>(item, { data: { b: '3' } }, 'merge');
  t.deepEqual(merged.data, { a: '2', b: '3' });
  const strategic = await c.patch<ConfigMap>(item, { metadata: { labels: { tier: 'y' } } }, 'strategic');
  t.deepEqual(strategic.metadata.labels, { app: 'x', tier: 'y' });
  const jsonPatched = await c.patch<ConfigMap>(item, [{ op: 'remove', path: '/data/a' }], 'json');
  t.deepEqual(jsonPatched.data, { b: '3' });
  const applied = await c.patch<ConfigMap>(
    item,
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { c: '4' } },
    'apply',
    { fieldManager: 'runtime-test', force: true },
  );
  t.is(applied.data?.['c'], '4');
  t.true(
    (applied.metadata as { managedFields?: { manager: string }[] }).managedFields?.some(
      (f) => f.manager === 'runtime-test',
    ) ?? false,
  );

  const dry = await c.create<ConfigMap>(collection, { metadata: { name: 'dry' } }, { dryRun: true });
  t.is(dry.metadata.name, 'dry');
  t.true(
    isNotFound(
      await c
        .get(resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name, name: 'dry' }))
        .catch((e: unknown) => e),
    ),
  );

  const deleted = await c.delete<Status | ConfigMap>(item);
  t.truthy(deleted);
  const afterDelete = await c.get(item).catch((e: unknown) => e);
  t.true(isNotFound(afterDelete));
});

test('ApiError carries the status, the server reason and message', async (t) => {
  const ns = await createTestNamespace('rt-errors');
  t.teardown(ns.cleanup);
  const c = client();
  t.teardown(() => c.close());
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  const item = `${collection}/cm`;

  const missing = (await c.get(item).catch((e: unknown) => e)) as ApiError;
  t.true(isNotFound(missing));
  t.is(missing.status, 404);
  t.is(missing.reason, 'NotFound');
  t.is(missing.serverMessage, 'configmaps "cm" not found');
  t.is(missing.details?.name, 'cm');

  const first = await c.create<ConfigMap>(collection, { metadata: { name: 'cm' } });
  const duplicate = (await c.create(collection, { metadata: { name: 'cm' } }).catch((e: unknown) => e)) as ApiError;
  t.true(isAlreadyExists(duplicate));
  t.false(isConflict(duplicate), 'AlreadyExists is not an optimistic-lock conflict');
  t.is(duplicate.status, 409);
  t.regex(duplicate.message, /POST .*configmaps: 409 AlreadyExists: configmaps "cm" already exists/);

  await c.patch(item, { data: { x: '1' } }, 'merge');
  const stale = (await c.replace(item, { ...first, data: { y: '2' } }).catch((e: unknown) => e)) as ApiError;
  t.true(isConflict(stale));
  t.is(stale.reason, 'Conflict');
  t.regex(stale.serverMessage, /the object has been modified/);

  const invalid = (await c
    .create(collection, { metadata: { name: 'Not_Valid' } })
    .catch((e: unknown) => e)) as ApiError;
  t.true(isInvalid(invalid));
  t.is(invalid.status, 422);
  t.true((invalid.details?.causes ?? []).some((cause) => cause.field === 'metadata.name'));

  const precondition = (await c
    .delete(item, { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } })
    .catch((e: unknown) => e)) as ApiError;
  t.true(isConflict(precondition), 'a failed delete precondition is a Conflict');
});

test('the status subresource: status writes go through /status only', async (t) => {
  const c = client();
  t.teardown(() => c.close());
  const ns = await createTestNamespace('rt-status');
  t.teardown(ns.cleanup);
  // A Service's status is a real status subresource that accepts a client-written loadBalancer.
  const collection = resourcePath({ version: 'v1', plural: 'services', namespace: ns.name });
  const item = `${collection}/svc`;
  await c.create(collection, { metadata: { name: 'svc' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
  type Service = KubeObject & { status?: { loadBalancer?: { ingress?: { ip: string }[] } } };
  const ignored = await c.patch<Service>(
    item,
    { status: { loadBalancer: { ingress: [{ ip: '10.0.0.1' }] } } },
    'merge',
  );
  t.deepEqual(ignored.status?.loadBalancer, {}, 'status changes on the main resource are ignored');
  const patched = await c.patchStatus<Service>(
    item,
    { status: { loadBalancer: { ingress: [{ ip: '10.0.0.2' }] } } },
    'merge',
  );
  t.deepEqual(
    patched.status?.loadBalancer?.ingress?.map((i) => i.ip),
    ['10.0.0.2'],
  );
  const current = await c.get<Service>(item);
  const replaced = await c.replaceStatus<Service>(item, {
    ...current,
    status: { loadBalancer: { ingress: [{ ip: '10.0.0.3' }] } },
  });
  t.deepEqual(
    replaced.status?.loadBalancer?.ingress?.map((i) => i.ip),
    ['10.0.0.3'],
  );
});

test('getLog reads a pod log through the API server (kwok serves it), with tailLines and limitBytes', async (t) => {
  const c = client();
  t.teardown(() => c.close());
  const ns = await createTestNamespace('rt-logs');
  t.teardown(ns.cleanup);
  const dir = await scratchDir('pod-log');
  const logFile = path.join(dir, 'main.log');
  // kwok reads container logs in the CRI log format, as a kubelet would.
  await writeFile(
    logFile,
    ['line one', 'line two', 'line three'].map((l, i) => `2024-01-01T00:00:0${i}.000000000Z stdout F ${l}\n`).join(''),
  );
  const nodes = await c.list<KubeObject>('/api/v1/nodes');
  const node = nodes.items[0]?.metadata.name;
  t.truthy(node);
  const pods = resourcePath({ version: 'v1', plural: 'pods', namespace: ns.name });
  await c.create(pods, {
    metadata: { name: 'p' },
    spec: { nodeName: node, containers: [{ name: 'main', image: 'busybox' }] },
  });
  await c.create(resourcePath({ group: 'kwok.x-k8s.io', version: 'v1alpha1', plural: 'logs', namespace: ns.name }), {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Logs',
    metadata: { name: 'p' },
    spec: { logs: [{ containers: ['main'], logsFile: logFile }] },
  });
  await eventually(
    'the pod runs',
    async () =>
      (await c.get<KubeObject & { status?: { phase?: string } }>(`${pods}/p`)).status?.phase === 'Running'
        ? true
        : undefined,
    60_000,
  );
  const full = await eventually(
    'kwok serves the log',
    async () => {
      const text = await c.getLog(`${pods}/p`, { container: 'main' });
      return text.includes('line three') ? text : undefined;
    },
    30_000,
  );
  t.is(full, 'line one\nline two\nline three\n');
  t.is(await c.getLog(`${pods}/p`, { container: 'main', tailLines: 1 }), 'line three\n');
  t.is(await c.getLog(`${pods}/p`, { container: 'main', limitBytes: 8 }), 'line one');
  const noContainer = (await c.getLog(`${pods}/p`, { container: 'nope' }).catch((e: unknown) => e)) as ApiError;
  t.is(noContainer.status, 400);
  t.regex(noContainer.serverMessage, /container nope is not valid/);
});

test('list pages with limit/continue; every request is counted by method and code', async (t) => {
  const metrics = new RuntimeMetrics();
  const c = client(metrics);
  t.teardown(() => c.close());
  const ns = await createTestNamespace('rt-count');
  t.teardown(ns.cleanup);
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  await Promise.all(
    Array.from({ length: 5 }, (_, i) =>
      c.create(collection, { metadata: { name: `cm-${i}`, labels: { page: 'yes' } } }),
    ),
  );
  const first = await c.list<ConfigMap>(collection, { labelSelector: 'page=yes', limit: 2 });
  t.is(first.items.length, 2);
  t.truthy(first.metadata.continue);
  const second = await c.list<ConfigMap>(collection, {
    labelSelector: 'page=yes',
    limit: 10,
    continue: first.metadata.continue ?? '',
  });
  t.is(second.items.length, 3);
  await c.create(collection, { metadata: { name: 'cm-0' } }).catch(() => undefined);
  const host = c.host;
  const text = await metrics.render();
  t.true(text.includes(`rest_client_requests_total{code="201",method="POST",host="${host}"} 5`), text);
  t.true(text.includes(`rest_client_requests_total{code="409",method="POST",host="${host}"} 1`));
  t.true(text.includes(`rest_client_requests_total{code="200",method="GET",host="${host}"} 2`));
  const viaKubectl = await kubectl(['get', 'configmaps', '-l', 'page=yes', '-o', 'name'], { namespace: ns.name });
  t.is(viaKubectl.stdout.trim().split('\n').length, 5);
  const _typed: ObjectList<ConfigMap> = second;
  t.truthy(_typed);
});

test.serial('requests share a small pool of keep-alive connections', async (t) => {
  const c = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }), maxSockets: 4 });
  t.teardown(() => c.close());
  const ns = await createTestNamespace('rt-pool');
  t.teardown(ns.cleanup);
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  const sockets = new Set<unknown>();
  const { default: https } = await import('node:https');
  const original = https.Agent.prototype.createConnection;
  // Count new TLS connections made while 40 creates run 16 at a time.
  https.Agent.prototype.createConnection = function (this: unknown, ...args: unknown[]) {
    const socket = (original as (...a: unknown[]) => unknown).apply(this, args);
    sockets.add(socket);
    return socket;
  } as typeof original;
  t.teardown(() => {
    https.Agent.prototype.createConnection = original;
  });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < 40) {
        const i = next++;
        await c.create(collection, { metadata: { name: `p-${i}` } });
      }
    }),
  );
  t.true(sockets.size <= 4, `${sockets.size} connections for 40 requests`);
});
