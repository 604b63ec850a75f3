// The pod, Job and ConfigMap caches read from the API server's protobuf
// watch stream against the same objects read as JSON and trimmed by
// caches.ts: on real pods and Jobs in the states a trace goes through (kwok
// plays Running, Succeeded and Failed; the scheduler leaves a pod Pending)
// and on program ConfigMaps with and without a stop request, the two must be
// the same objects.
import test, { type ExecutionContext } from 'ava';
import { trimConfigMap, trimJob, trimPod } from '../../src/controller/caches.ts';
import { readTrimmedConfigMap, readTrimmedJob, readTrimmedPod } from '../../src/controller/cache-protobuf.ts';
import { KubeClient, loadKubeConfig, resourcePath } from '../../src/runtime/kube-client.ts';
import type { KubeObject } from '../../src/runtime/objects.ts';
import type { ProtobufDecoder } from '../../src/runtime/watch-protobuf.ts';
import { INITIAL_EVENTS_END_ANNOTATION } from '../../src/runtime/watcher.ts';
import { clusterAvailable, createTestNamespace, kubeconfigPath } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';

test.before(() => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
});

const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
test.after.always(() => client.close());

const EXIT = 'kwok.trace-operator.test/exit-code';

function podManifest(name: string, extra: { spec?: object; metadata?: object } = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: { app: 'protobuf-test', 'iovisor.org/kubectl-trace-id': name },
      annotations: { 'observe.alexeldeib.xyz/tracejob': `${name}-tj`, empty: '' },
      ...extra.metadata,
    },
    spec: {
      nodeName: 'kwok-node-0',
      restartPolicy: 'Never',
      tolerations: [{ operator: 'Exists' }],
      initContainers: [{ name: 'init', image: 'trace-operator.local/init:test' }],
      containers: [
        { name: 'trace', image: 'trace-operator.local/runner:test', command: ['trace-operator', 'runner'] },
        { name: 'sidecar', image: 'trace-operator.local/sidecar:test' },
      ],
      ...extra.spec,
    },
  };
}

async function watchList(path: string, decoder: ProtobufDecoder): Promise<Map<string, KubeObject>> {
  const stop = new AbortController();
  const pods = new Map<string, KubeObject>();
  const params = {
    allowWatchBookmarks: true,
    timeoutSeconds: 30,
    sendInitialEvents: true,
    resourceVersionMatch: 'NotOlderThan' as const,
  };
  try {
    for await (const event of client.watch(path, params, stop.signal, decoder)) {
      const pod = event.object as KubeObject;
      if (event.type === 'BOOKMARK' && pod.metadata.annotations?.[INITIAL_EVENTS_END_ANNOTATION] === 'true') break;
      if (event.type === 'ADDED') pods.set(pod.metadata.name ?? '', pod);
    }
  } finally {
    stop.abort();
  }
  return pods;
}

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/**
 * Reads the `count` objects at `path` through the protobuf watch and as JSON,
 * and checks each decoded one against the JSON one trimmed. An object may
 * change between the two reads: both are read again until the versions match.
 */
async function sameObjectsBothWays(
  t: ExecutionContext,
  path: string,
  decoder: ProtobufDecoder,
  trim: (obj: KubeObject) => KubeObject,
  count: number,
): Promise<Map<string, KubeObject>> {
  const compared = await eventually('both reads see the same versions', async () => {
    const fromProtobuf = await watchList(path, decoder);
    const fromJson = (await client.list<KubeObject>(path, {})).items;
    if (fromJson.length !== count || fromProtobuf.size !== count) return undefined;
    const same = fromJson.every(
      (o) => fromProtobuf.get(o.metadata.name ?? '')?.metadata.resourceVersion === o.metadata.resourceVersion,
    );
    return same ? { fromJson, fromProtobuf } : undefined;
  });
  for (const json of compared.fromJson) {
    const name = json.metadata.name ?? '';
    t.deepEqual(plain(compared.fromProtobuf.get(name)), plain(trim(json)), name);
  }
  return compared.fromProtobuf;
}

test('trace pods read from the protobuf watch are the pods the JSON path caches, in every state', async (t) => {
  const ns = await createTestNamespace('protobuf');
  t.teardown(ns.cleanup);
  const pods = resourcePath({ version: 'v1', plural: 'pods', namespace: ns.name });
  const owner = await client.create<KubeObject>(
    resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name }),
    {
      metadata: { name: 'owner' },
    },
  );
  const ownerReferences = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: 'owner',
      uid: owner.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ];
  await client.create(pods, podManifest('running', { metadata: { ownerReferences } }));
  await client.create(
    pods,
    podManifest('pending', { spec: { nodeName: undefined, nodeSelector: { nowhere: 'true' } } }),
  );
  await client.create(pods, podManifest('succeeded', { metadata: { annotations: { [EXIT]: '0' } } }));
  await client.create(
    pods,
    podManifest('failed', {
      metadata: {
        annotations: {
          [EXIT]: '3',
          'kwok.trace-operator.test/reason': 'Error',
          'kwok.trace-operator.test/termination-message': 'bpftrace: ünïcode ✓ failed',
        },
      },
    }),
  );

  const phaseOf = async (name: string): Promise<string | undefined> =>
    (await client.get<{ status?: { phase?: string; conditions?: unknown[] } }>(`${pods}/${name}`)).status?.phase;
  await eventually('kwok runs and ends the pods', async () =>
    (await phaseOf('running')) === 'Running' &&
    (await phaseOf('succeeded')) === 'Succeeded' &&
    (await phaseOf('failed')) === 'Failed'
      ? true
      : undefined,
  );
  await eventually('the scheduler marks the pending pod unschedulable', async () => {
    const pending = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
      `${pods}/pending`,
    );
    return pending.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False') === true
      ? true
      : undefined;
  });

  const compared = await sameObjectsBothWays(t, pods, readTrimmedPod, trimPod, 4);
  const failed = compared.get('failed') as {
    status?: { containerStatuses?: { state?: { terminated?: { exitCode?: number } } }[] };
  };
  t.is(
    failed.status?.containerStatuses?.find((c) => c.state?.terminated !== undefined)?.state?.terminated?.exitCode,
    3,
    'the comparison covers a terminated container',
  );
});

test('trace Jobs read from the protobuf watch are the Jobs the JSON path caches: active, complete and failed', async (t) => {
  const ns = await createTestNamespace('protobuf-jobs');
  t.teardown(ns.cleanup);
  const jobs = resourcePath({ group: 'batch', version: 'v1', plural: 'jobs', namespace: ns.name });
  const job = (name: string, exitCode: string | undefined): object => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels: { 'iovisor.org/kubectl-trace-id': name } },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 600,
      template: {
        metadata: { annotations: exitCode === undefined ? {} : { [EXIT]: exitCode } },
        spec: (podManifest(name) as { spec: object }).spec,
      },
    },
  });
  await client.create(jobs, job('active', undefined));
  await client.create(jobs, job('complete', '0'));
  await client.create(jobs, job('failed', '3'));
  const conditionOf = async (name: string): Promise<string | undefined> =>
    (
      await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(`${jobs}/${name}`)
    ).status?.conditions
      ?.filter((c) => c.status === 'True')
      .map((c) => c.type)
      .join(',');
  await eventually('the Job controller ends two of the Jobs', async () => {
    const complete = await conditionOf('complete');
    const failed = await conditionOf('failed');
    const active = await client.get<{ status?: { ready?: number } }>(`${jobs}/active`);
    return complete?.includes('Complete') === true && failed?.includes('Failed') === true && active.status?.ready === 1
      ? true
      : undefined;
  });
  await sameObjectsBothWays(t, jobs, readTrimmedJob, trimJob, 3);
});

test('trace ConfigMaps read from the protobuf watch are the ConfigMaps the JSON path caches: with and without a stop request', async (t) => {
  const ns = await createTestNamespace('protobuf-configmaps');
  t.teardown(ns.cleanup);
  const configMaps = resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns.name });
  const configMap = (name: string, data: Record<string, string>, binaryData?: Record<string, string>): object => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      labels: { 'iovisor.org/kubectl-trace-id': name },
      annotations: { 'observe.alexeldeib.xyz/tracejob': `${name}-tj` },
    },
    data,
    ...(binaryData === undefined ? {} : { binaryData }),
  });
  const program = 'tracepoint:raw_syscalls:sys_enter { @[comm] = count(); } // é\n'.repeat(100);
  await client.create(configMaps, configMap('running', { 'program.bt': program }));
  await client.create(configMaps, configMap('stopped', { 'program.bt': program, stop: '2026-12-03T05:00:00Z' }));
  await client.create(configMaps, configMap('stopped-empty', { stop: '', 'z.bt': 'x' }));
  await client.create(
    configMaps,
    configMap('binary', { 'program.bt': 'x' }, { blob: Buffer.from([0, 1, 2]).toString('base64') }),
  );
  await client.create(configMaps, configMap('empty', {}));
  // Five, and the namespace's kube-root-ca.crt.
  const read = await sameObjectsBothWays(t, configMaps, readTrimmedConfigMap, trimConfigMap, 6);
  const data = (name: string): unknown => (read.get(name) as { data?: unknown } | undefined)?.data;
  t.deepEqual(data('stopped'), { stop: '2026-12-03T05:00:00Z' });
  t.deepEqual(data('stopped-empty'), { stop: '' });
  t.is(data('running'), undefined);
});
