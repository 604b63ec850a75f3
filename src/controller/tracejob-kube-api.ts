// TraceJobApi over the runtime KubeClient: one request per call, creates that
// tolerate AlreadyExists, gets that turn NotFound into undefined.
import type { CoreV1Event, V1ConfigMap, V1Job, V1Node, V1Pod } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, HOSTNAME_LABEL_KEY, PLURAL, type TraceJob } from '../tracejob/index.ts';
import { isAlreadyExists, isNotFound } from '../runtime/api-error.ts';
import { resourcePath, type KubeClient } from '../runtime/kube-client.ts';
import type { CreateOutcome, TraceJobApi } from './reconcile-deps.ts';

const core = (plural: string, namespace?: string, name?: string, subresource?: string): string =>
  resourcePath({
    version: 'v1',
    plural,
    ...(namespace === undefined ? {} : { namespace }),
    ...(name === undefined ? {} : { name }),
    ...(subresource === undefined ? {} : { subresource }),
  });
const jobs = (namespace: string, name?: string): string =>
  resourcePath({ group: 'batch', version: 'v1', plural: 'jobs', namespace, ...(name === undefined ? {} : { name }) });
export const traceJobPath = (namespace?: string, name?: string, subresource?: string): string =>
  resourcePath({
    group: API_GROUP,
    version: API_VERSION,
    plural: PLURAL,
    ...(namespace === undefined ? {} : { namespace }),
    ...(name === undefined ? {} : { name }),
    ...(subresource === undefined ? {} : { subresource }),
  });

async function orUndefined<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function createIfAbsent(request: Promise<unknown>): Promise<CreateOutcome> {
  try {
    await request;
    return 'created';
  } catch (error) {
    if (isAlreadyExists(error)) return 'exists';
    throw error;
  }
}

function namespaceOf(obj: { metadata?: { namespace?: string | undefined } | undefined }): string {
  const namespace = obj.metadata?.namespace;
  if (namespace === undefined || namespace === '') throw new Error('object has no metadata.namespace');
  return namespace;
}

/** When an Event last happened, in ms (a repeated Event keeps its first creationTimestamp). */
function eventTime(event: CoreV1Event): number {
  for (const t of [event.lastTimestamp, event.eventTime, event.metadata.creationTimestamp]) {
    const ms = t === undefined ? Number.NaN : Date.parse(String(t instanceof Date ? t.toISOString() : t));
    if (!Number.isNaN(ms)) return ms;
  }
  return 0;
}

export function traceJobApi(client: KubeClient): TraceJobApi {
  return {
    getNode: (name) => orUndefined(client.get<V1Node>(core('nodes', undefined, name))),
    listNodesWithHostname: async (hostname) =>
      (await client.list<V1Node>(core('nodes'), { labelSelector: `${HOSTNAME_LABEL_KEY}=${hostname}` })).items,
    getPod: (namespace, name) => orUndefined(client.get<V1Pod>(core('pods', namespace, name))),
    getConfigMap: (namespace, name) => orUndefined(client.get<V1ConfigMap>(core('configmaps', namespace, name))),
    getJob: (namespace, name) => orUndefined(client.get<V1Job>(jobs(namespace, name))),
    createConfigMap: (configMap) =>
      createIfAbsent(client.create(core('configmaps', namespaceOf(configMap)), configMap)),
    createJob: (job) => createIfAbsent(client.create(jobs(namespaceOf(job)), job)),
    mergePatchConfigMap: async (namespace, name, patch) => {
      await client.patch(core('configmaps', namespace, name), patch, 'merge');
    },
    replaceStatus: (traceJob) =>
      client.replaceStatus<TraceJob>(traceJobPath(traceJob.metadata.namespace, traceJob.metadata.name), traceJob),
    readPodLog: async (namespace, pod, container, tailLines) => {
      try {
        return { text: await client.getLog(core('pods', namespace, pod), { container, tailLines }) };
      } catch (error) {
        return { error: error instanceof Error ? error.message : String(error) };
      }
    },
    latestPodCreateFailure: async (namespace, jobName) => {
      const events = await client.list<CoreV1Event>(core('events', namespace), {
        fieldSelector: `involvedObject.kind=Job,involvedObject.name=${jobName},reason=FailedCreate`,
      });
      const latest = events.items
        .map((e) => ({ at: eventTime(e), message: e.message ?? '' }))
        .sort((a, b) => b.at - a.at)[0];
      return latest === undefined ? undefined : { message: latest.message };
    },
    suspendJob: async (namespace, name) => {
      await orUndefined(client.patch(jobs(namespace, name), { spec: { suspend: true } }, 'merge'));
    },
    deleteTraceJob: async (namespace, name, uid) => {
      await orUndefined(
        client.delete(traceJobPath(namespace, name), { preconditions: { uid }, propagationPolicy: 'Background' }),
      );
    },
  };
}
