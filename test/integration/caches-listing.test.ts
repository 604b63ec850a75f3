// How the caches first list each kind (src/controller/caches.ts), against the
// real API server: TraceJobs, served as JSON, in pages (a streamed JSON list
// costs the API server more CPU, bench/README.md), then a plain watch; the
// kinds read in protobuf through a streaming list. The transport is the real
// client, wrapped only to record what was asked. Of the program ConfigMaps
// only those with a stop request are cached (selected by its label), of the
// pods only those that left Pending (a field selector).
import test, { type ExecutionContext } from 'ava';
import type { V1ConfigMap, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { createCaches, STARTED_POD_SELECTOR, type WatchedCaches } from '../../src/controller/caches.ts';
import { traceJobApi } from '../../src/controller/tracejob-kube-api.ts';
import { KubeClient, loadKubeConfig } from '../../src/runtime/kube-client.ts';
import { nopLogger } from '../../src/runtime/logger.ts';
import type { WatchTransport } from '../../src/runtime/watcher.ts';
import {
  MANAGED_BY_LABEL_KEY,
  MANAGED_BY_VALUE,
  stopRequestPatch,
  STOP_REQUESTED_LABEL_KEY,
  TRACE_ID_LABEL_KEY,
} from '../../src/tracejob/index.ts';
import { clusterAvailable, createTestNamespace, kubeconfigPath } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd } from '../support/manager.ts';

// The TraceJob watch needs the CRD; without it the caches never sync (a fresh cluster has none).
test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
});

const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
test.after.always(() => client.close());

interface Request {
  verb: 'list' | 'watch';
  path: string;
  limit?: number | undefined;
  sendInitialEvents?: boolean | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  protobuf: boolean;
}

function recording(requests: Request[]): WatchTransport {
  return {
    list: (path, params, signal) => {
      requests.push({ verb: 'list', path, limit: params.limit, protobuf: false });
      return client.list(path, params, signal);
    },
    watch: (path, params, signal, protobuf) => {
      requests.push({
        verb: 'watch',
        path,
        sendInitialEvents: params.sendInitialEvents,
        labelSelector: params.labelSelector,
        fieldSelector: params.fieldSelector,
        protobuf: protobuf !== undefined,
      });
      return client.watch(path, params, signal, protobuf);
    },
  };
}

/** Caches over `namespace`, synced, recording what they ask; stopped when the test ends. */
async function syncedCaches(
  t: ExecutionContext,
  namespace: string,
): Promise<{ caches: WatchedCaches; requests: Request[] }> {
  const requests: Request[] = [];
  const caches = createCaches({ transport: recording(requests), logger: nopLogger, namespaces: [namespace] });
  const stop = new AbortController();
  const running = caches.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  await Promise.all(caches.gates().map((gate) => gate.ready(stop.signal)));
  return { caches, requests };
}

test('TraceJobs are listed in pages, then watched; Jobs, Pods and ConfigMaps stream their list in protobuf', async (t) => {
  const ns = await createTestNamespace('caches-listing');
  t.teardown(ns.cleanup);
  const requests: Request[] = [];
  const caches = createCaches({ transport: recording(requests), logger: nopLogger, namespaces: [ns.name] });
  const stop = new AbortController();
  const running = caches.run(stop.signal);
  await Promise.all(caches.gates().map((gate) => gate.ready(stop.signal)));
  t.true(caches.hasSynced());
  const inNamespace = (plural: string): Request[] =>
    requests.filter((r) => r.path.endsWith(`/namespaces/${ns.name}/${plural}`));
  // The TraceJobs are synced once listed; their watch is asked for just after.
  await eventually('the TraceJob watch follows the list', async () =>
    inNamespace('tracejobs').length > 1 ? true : undefined,
  );
  stop.abort();
  await running;

  const traceJobs = inNamespace('tracejobs');
  t.like(traceJobs[0], { verb: 'list', limit: 500, protobuf: false });
  t.like(traceJobs[1], { verb: 'watch', sendInitialEvents: undefined }, 'then a plain watch from the list');
  for (const plural of ['jobs', 'pods', 'configmaps'])
    t.like(inNamespace(plural)[0], { verb: 'watch', sendInitialEvents: true, protobuf: true }, plural);
});

test('of the program ConfigMaps only those the stop patch labelled are cached', async (t) => {
  const ns = await createTestNamespace('caches-stop');
  t.teardown(ns.cleanup);
  const configMaps = `/api/v1/namespaces/${ns.name}/configmaps`;
  const programConfigMap = (name: string): V1ConfigMap => ({
    metadata: {
      name,
      namespace: ns.name,
      labels: { [TRACE_ID_LABEL_KEY]: name, [MANAGED_BY_LABEL_KEY]: MANAGED_BY_VALUE },
    },
    data: { 'program.bt': 'BEGIN { exit(); }' },
  });
  await client.create(configMaps, programConfigMap('running'));
  await client.create(configMaps, programConfigMap('stopped'));
  await client.patch(`${configMaps}/stopped`, stopRequestPatch(new Date()), 'merge');

  const { caches, requests } = await syncedCaches(t, ns.name);
  const configMapWatch = requests.find((r) => r.path.endsWith('/configmaps'));
  t.true(configMapWatch?.labelSelector?.split(',').includes(STOP_REQUESTED_LABEL_KEY), 'only labelled ones are sent');
  t.true(caches.view.stopRequested(ns.name, 'stopped'));
  t.false(caches.view.stopRequested(ns.name, 'running'));

  await client.patch(`${configMaps}/running`, stopRequestPatch(new Date()), 'merge');
  await eventually('a stop patched later reaches the cache through the watch', async () =>
    caches.view.stopRequested(ns.name, 'running') ? true : undefined,
  );
  t.pass();
});

test('of the trace pods only those that left Pending are cached; a starting one is listed from the API server', async (t) => {
  const ns = await createTestNamespace('caches-pods');
  t.teardown(ns.cleanup);
  const pods = `/api/v1/namespaces/${ns.name}/pods`;
  const tracePod = (id: string, placement: Omit<V1PodSpec, 'containers'>): V1Pod => ({
    metadata: {
      name: id,
      namespace: ns.name,
      labels: { [TRACE_ID_LABEL_KEY]: id, [MANAGED_BY_LABEL_KEY]: MANAGED_BY_VALUE },
    },
    spec: { ...placement, containers: [{ name: 'trace', image: 'runner:test' }] },
  });
  // kwok runs a pod bound to its node; one no node matches stays Pending (unschedulable).
  await client.create(pods, tracePod('runs', { nodeName: 'kwok-node-0' }));
  await client.create(pods, tracePod('waits', { nodeSelector: { 'no-such-label': 'anywhere' } }));
  await eventually('kwok runs the bound pod', async () =>
    (await client.get<V1Pod>(`${pods}/runs`)).status?.phase === 'Running' ? true : undefined,
  );

  const { caches, requests } = await syncedCaches(t, ns.name);
  t.is(requests.find((r) => r.path.endsWith('/pods'))?.fieldSelector, STARTED_POD_SELECTOR);
  t.deepEqual(
    caches.view.podsOfTrace(ns.name, 'runs').map((p) => p.metadata?.name),
    ['runs'],
  );
  t.deepEqual(caches.view.podsOfTrace(ns.name, 'waits'), [], 'a Pending pod is not sent');
  const listed = await traceJobApi(client).listPodsOfTrace(ns.name, 'waits');
  t.deepEqual(
    listed.map((p) => [p.metadata?.name, p.status?.phase]),
    [['waits', 'Pending']],
  );

  // Bound to a node, it runs, and reaches the cache (the watch sends it as it leaves Pending).
  await client.delete(`${pods}/waits`, { gracePeriodSeconds: 0 });
  await client.create(pods, tracePod('starts-later', { nodeName: 'kwok-node-1' }));
  await eventually('a pod that starts reaches the cache', async () =>
    caches.view.podsOfTrace(ns.name, 'starts-later')[0]?.status?.phase === 'Running' ? true : undefined,
  );
  t.pass();
});
