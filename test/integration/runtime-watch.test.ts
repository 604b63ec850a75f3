// Watcher + Store against the real API server: events, server-side watch
// timeouts, the watchdog on a really silent watch, dropped connections and
// connection refused (through a TCP proxy this test owns, so the shared API
// server is not disturbed), and a real API server restart — a second
// kube-apiserver on the same etcd that this test kills and starts again —
// which answers the resumed watch with a real 410 from its fresh watch cache.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { KubeConfig } from '@kubernetes/client-node';
import { ExponentialBackoff } from '../../src/runtime/backoff.ts';
import { KubeClient, loadKubeConfig, resourcePath } from '../../src/runtime/kube-client.ts';
import type { KubeObject } from '../../src/runtime/objects.ts';
import { Store, type StoreChange } from '../../src/runtime/store.ts';
import { Watcher, type WatcherOptions, type WatchTransport } from '../../src/runtime/watcher.ts';
import { kubeApiserver, type Ports } from '../cluster/components.ts';
import { clusterPaths } from '../cluster/paths.ts';
import { freePort } from '../cluster/processes.ts';
import { pkiPaths } from '../cluster/pki.ts';
import { clusterAvailable, createTestNamespace, kubeconfigPath } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

test.before(() => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
});

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

function kubeConfigFor(server: string): KubeConfig {
  // client-node's KubeConfig, to rewrite the server (a ClusterConnection is opaque); RestTransport takes either.
  const base = new KubeConfig();
  base.loadFromFile(kubeconfigPath);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: base.clusters.map((c) => ({ ...c, server })),
    users: base.users,
    contexts: base.contexts,
    currentContext: base.currentContext,
  });
  return kc;
}

/** A watcher feeding a store, with the changes it reported. */
function reflect(client: KubeClient, namespace: string, options: Partial<WatcherOptions<ConfigMap>> = {}) {
  const store = new Store<ConfigMap>({ name: 'configmaps' });
  const changes: string[] = [];
  store.subscribe((c: StoreChange<ConfigMap>) => changes.push(`${c.type} ${c.object.metadata.name}`));
  const watcher = new Watcher<ConfigMap>({
    transport: client,
    path: resourcePath({ version: 'v1', plural: 'configmaps', namespace }),
    backoff: new ExponentialBackoff({ initialMs: 200, maxMs: 1000, jitter: 0.2 }),
    ...options,
  });
  const stop = new AbortController();
  const running = watcher.run((e) => store.apply(e), stop.signal);
  return {
    store,
    watcher,
    changes,
    stop: async () => {
      stop.abort();
      await running;
    },
  };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  return eventually(what, async () => probe(), timeoutMs, 50);
}

test('watcher + store follow creates, updates and deletes; a label selector and transform apply', async (t) => {
  const ns = await createTestNamespace('rt-watch');
  t.teardown(ns.cleanup);
  const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
  t.teardown(() => client.close());
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  await client.create(collection, {
    metadata: { name: 'existing', labels: { watched: 'yes' } },
    data: { big: 'x'.repeat(10_000) },
  });
  await client.create(collection, { metadata: { name: 'unlabelled' } });

  const r = reflect(client, ns.name, {
    labelSelector: 'watched=yes',
    transform: (o) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata }),
  });
  t.teardown(r.stop);
  await r.store.ready();
  t.deepEqual(r.store.keys(), [`${ns.name}/existing`]);
  t.is(r.store.get(`${ns.name}/existing`)?.data, undefined, 'transform dropped the data before storing');

  await client.create(collection, { metadata: { name: 'new', labels: { watched: 'yes' } } });
  await client.patch(`${collection}/existing`, { metadata: { annotations: { touched: 'yes' } } }, 'merge');
  await client.delete(`${collection}/new`);
  await client.create(collection, { metadata: { name: 'other' } });
  await until('all three events arrived', () => (r.changes.length >= 4 ? true : undefined));
  t.deepEqual(r.changes, ['added existing', 'added new', 'modified existing', 'deleted new']);
  t.is(r.store.get(`${ns.name}/existing`)?.metadata.annotations?.['touched'], 'yes');
  t.is(r.watcher.stats().lists, 1);
});

test('a streaming list (sendInitialEvents) fills the store without a LIST, then the same stream watches', async (t) => {
  const ns = await createTestNamespace('rt-stream');
  t.teardown(ns.cleanup);
  const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
  t.teardown(() => client.close());
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  for (const name of ['a', 'b', 'c'])
    await client.create(collection, { metadata: { name, labels: { watched: 'yes' } } });
  await client.create(collection, { metadata: { name: 'unlabelled' } });
  const requests: string[] = [];
  const transport: WatchTransport = {
    list: (path, params, signal) => {
      requests.push('list');
      return client.list(path, params, signal);
    },
    watch: (path, params, signal) => {
      requests.push(params.sendInitialEvents === true ? 'streaming list' : 'watch');
      return client.watch(path, params, signal);
    },
  };

  const r = reflect(client, ns.name, { transport, labelSelector: 'watched=yes', streamingList: true });
  t.teardown(r.stop);
  await r.store.ready();
  t.deepEqual(
    r.store.keys().sort(),
    ['a', 'b', 'c'].map((n) => `${ns.name}/${n}`),
  );
  await client.create(collection, { metadata: { name: 'd', labels: { watched: 'yes' } } });
  await until('the new ConfigMap arrived', () => (r.store.get(`${ns.name}/d`) === undefined ? undefined : true));
  t.deepEqual(requests, ['streaming list'], 'one request: no LIST, no second watch');
  t.is(r.watcher.stats().errors, 0);
});

test('a watch ended by the server timeout resumes from its resourceVersion without a re-list', async (t) => {
  const ns = await createTestNamespace('rt-timeout');
  t.teardown(ns.cleanup);
  const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
  t.teardown(() => client.close());
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  const r = reflect(client, ns.name, { timeoutSeconds: [2, 2] });
  t.teardown(r.stop);
  await r.store.ready();
  await client.create(collection, { metadata: { name: 'a' } });
  await until('the server ended two watches', () => (r.watcher.stats().watches >= 3 ? true : undefined), 20_000);
  await client.create(collection, { metadata: { name: 'b' } });
  await until('b arrived', () => r.store.get(`${ns.name}/b`));
  t.is(r.watcher.stats().lists, 1);
  t.is(r.watcher.stats().errors, 0);
  t.deepEqual(
    r.changes.filter((c) => !c.includes('kube-root-ca.crt')),
    ['added a', 'added b'],
  );
});

test('the watchdog restarts a watch that stays silent, and nothing is missed', async (t) => {
  const ns = await createTestNamespace('rt-silent');
  t.teardown(ns.cleanup);
  const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
  t.teardown(() => client.close());
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  // A quiet namespace: the server sends a bookmark only about once a minute, so 1.5 s of silence is real.
  const r = reflect(client, ns.name, { silenceTimeoutMs: 1500, timeoutSeconds: [300, 300] });
  t.teardown(r.stop);
  await r.store.ready();
  await until('the watchdog fired twice', () => (r.watcher.stats().watchdogRestarts >= 2 ? true : undefined), 20_000);
  await client.create(collection, { metadata: { name: 'after-restarts' } });
  await until('the event arrived on the restarted watch', () => r.store.get(`${ns.name}/after-restarts`));
  t.is(r.watcher.stats().lists, 1, 'restarts resume; they do not re-list');
});

/** A TCP forwarder to the API server that the test can cut or take down. */

test('dropped connections and connection refused: the watch resumes from its resourceVersion and misses nothing', async (t) => {
  const ns = await createTestNamespace('rt-drop');
  t.teardown(ns.cleanup);
  const direct = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
  t.teardown(() => direct.close());
  const apiserver = new URL(direct.server);
  const proxy = new TcpProxy({ host: apiserver.hostname, port: Number(apiserver.port) });
  await proxy.start();
  t.teardown(() => proxy.stop());
  const viaProxy = new KubeClient({ kubeConfig: kubeConfigFor(`https://127.0.0.1:${proxy.port}`) });
  t.teardown(() => viaProxy.close());
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });

  const r = reflect(viaProxy, ns.name);
  t.teardown(r.stop);
  await r.store.ready();
  await direct.create(collection, { metadata: { name: 'a' } });
  await until('a arrived', () => r.store.get(`${ns.name}/a`));

  proxy.cut();
  await direct.create(collection, { metadata: { name: 'b' } });
  await until('b arrived after the connection was reset', () => r.store.get(`${ns.name}/b`));
  t.true(r.watcher.stats().errors >= 1, 'the reset was seen as an error');

  await proxy.stop();
  await direct.create(collection, { metadata: { name: 'c' } });
  await direct.patch(`${collection}/b`, { data: { changed: 'yes' } }, 'merge');
  await direct.delete(`${collection}/a`);
  await until('the watcher is backing off on refused connections', () =>
    r.watcher.state() === 'backoff' && r.watcher.stats().errors >= 3 ? true : undefined,
  );
  t.truthy(r.store.get(`${ns.name}/a`), 'nothing seen while down');

  await proxy.start();
  await until('the changes made while down arrived', () =>
    r.store.get(`${ns.name}/c`) !== undefined &&
    r.store.get(`${ns.name}/a`) === undefined &&
    r.store.get(`${ns.name}/b`)?.data?.['changed'] === 'yes'
      ? true
      : undefined,
  );
  t.is(r.watcher.stats().lists, 1, 'resumed from the resourceVersion, no re-list');
  t.deepEqual(
    r.changes.filter((c) => !c.includes('kube-root-ca.crt')),
    ['added a', 'added b', 'added c', 'modified b', 'deleted a'],
  );
});

/** A second kube-apiserver on the shared etcd, owned by this test. */
class SecondApiServer {
  #process: ChildProcess | undefined;
  #args: string[] = [];
  #binary = '';
  port = 0;

  async prepare(): Promise<void> {
    const paths = clusterPaths();
    const ports = JSON.parse(await readFile(path.join(paths.state, 'ports.json'), 'utf8')) as Ports;
    this.port = await freePort();
    const spec = kubeApiserver({
      testbin: paths.testbin,
      state: paths.state,
      pki: pkiPaths(path.join(paths.state, 'pki')),
      ports: { ...ports, apiserver: this.port },
      kubeconfigFor: () => '',
      kwokStages: '',
    });
    this.#binary = spec.binary;
    this.#args = spec.args;
  }

  async start(client: KubeClient): Promise<void> {
    const child = spawn(this.#binary, this.#args, { stdio: 'ignore' });
    this.#process = child;
    await eventually(
      'the second API server is ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`kube-apiserver exited with ${child.exitCode}`);
        const res = await client.request('GET', '/readyz', {}, { timeoutMs: 2000 }).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      120_000,
      500,
    );
  }

  async kill(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

test('an API server restart: refused while down, then a real 410 from its fresh watch cache and a re-list that reports the delete', async (t) => {
  const ns = await createTestNamespace('rt-restart');
  t.teardown(ns.cleanup);
  const direct = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
  t.teardown(() => direct.close());
  const second = new SecondApiServer();
  await second.prepare();
  const viaSecond = new KubeClient({ kubeConfig: kubeConfigFor(`https://127.0.0.1:${second.port}`) });
  t.teardown(() => viaSecond.close());
  t.teardown(() => second.kill());
  await second.start(viaSecond);
  const collection = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  await direct.create(collection, { metadata: { name: 'before' } });

  const r = reflect(viaSecond, ns.name);
  t.teardown(r.stop);
  await r.store.ready();
  t.truthy(r.store.get(`${ns.name}/before`));
  const resumeFrom = r.watcher.resourceVersion();

  await second.kill();
  await direct.create(collection, { metadata: { name: 'during' } });
  await direct.delete(`${collection}/before`);
  await until('the watcher sees connections refused', () => (r.watcher.state() === 'backoff' ? true : undefined));

  await second.start(viaSecond);
  await until(
    'the store caught up after the restart',
    () =>
      r.store.get(`${ns.name}/during`) !== undefined && r.store.get(`${ns.name}/before`) === undefined
        ? true
        : undefined,
    60_000,
  );
  t.true(r.watcher.stats().relistsOnGone >= 1, `expected a 410 for resourceVersion ${resumeFrom}`);
  t.is(r.watcher.stats().lists, 2, 'one re-list after the 410');
  t.true(r.changes.includes('deleted before'), 'the re-list reported the delete missed while down');
  t.true(r.changes.includes('added during'));
});
