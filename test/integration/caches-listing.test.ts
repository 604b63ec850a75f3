// How the caches first list each kind (src/controller/caches.ts), against the
// real API server: TraceJobs, served as JSON, in pages (a streamed JSON list
// costs the API server more CPU, bench/README.md), then a plain watch; the
// kinds read in protobuf through a streaming list. The transport is the real
// client, wrapped only to record what was asked. Of the program ConfigMaps
// only those with a stop request are cached (selected by its label).
import test from 'ava';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { createCaches } from '../../src/controller/caches.ts';
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

test.before(() => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
});

const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
test.after.always(() => client.close());

interface Request {
  verb: 'list' | 'watch';
  path: string;
  limit?: number | undefined;
  sendInitialEvents?: boolean | undefined;
  labelSelector?: string | undefined;
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
        protobuf: protobuf !== undefined,
      });
      return client.watch(path, params, signal, protobuf);
    },
  };
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

  const requests: Request[] = [];
  const caches = createCaches({ transport: recording(requests), logger: nopLogger, namespaces: [ns.name] });
  const stop = new AbortController();
  const running = caches.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  await Promise.all(caches.gates().map((gate) => gate.ready(stop.signal)));
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
