// How the caches first list each kind (src/controller/caches.ts), against the
// real API server: TraceJobs, served as JSON, in pages (a streamed JSON list
// costs the API server more CPU, bench/README.md), then a plain watch; the
// kinds read in protobuf through a streaming list. The transport is the real
// client, wrapped only to record what was asked.
import test from 'ava';
import { createCaches } from '../../src/controller/caches.ts';
import { KubeClient, loadKubeConfig } from '../../src/runtime/kube-client.ts';
import { nopLogger } from '../../src/runtime/logger.ts';
import type { WatchTransport } from '../../src/runtime/watcher.ts';
import { clusterAvailable, createTestNamespace, kubeconfigPath } from '../support/cluster.ts';

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
  stop.abort();
  await running;

  const inNamespace = (plural: string): Request[] =>
    requests.filter((r) => r.path.endsWith(`/namespaces/${ns.name}/${plural}`));
  const traceJobs = inNamespace('tracejobs');
  t.like(traceJobs[0], { verb: 'list', limit: 500, protobuf: false });
  t.like(traceJobs[1], { verb: 'watch', sendInitialEvents: undefined }, 'then a plain watch from the list');
  for (const plural of ['jobs', 'pods', 'configmaps'])
    t.like(inNamespace(plural)[0], { verb: 'watch', sendInitialEvents: true, protobuf: true }, plural);
});
