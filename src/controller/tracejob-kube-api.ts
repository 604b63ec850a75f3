// TraceJobApi over the runtime KubeClient: one request per call, creates that
// tolerate AlreadyExists, gets that turn NotFound into undefined.
import type { CoreV1Event, V1ConfigMap, V1Job, V1Node, V1Pod } from '@kubernetes/client-node';
import {
  API_GROUP,
  API_VERSION,
  HOSTNAME_LABEL_KEY,
  PLURAL,
  TRACE_ID_LABEL_KEY,
  type TraceJob,
} from '../tracejob/index.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../runtime/api-error.ts';
import { resourcePath, type KubeClient } from '../runtime/kube-client.ts';
import type { CreateOutcome, TraceJobApi } from './reconcile-deps.ts';
import { errorMessage } from '../error-message.ts';

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

async function ignoreConflict<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await orUndefined(request);
  } catch (error) {
    if (isConflict(error)) return undefined;
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
  const opts = (signal: AbortSignal | undefined): { signal?: AbortSignal } => (signal === undefined ? {} : { signal });
  return {
    getNode: (name, signal) => orUndefined(client.get<V1Node>(core('nodes', undefined, name), opts(signal))),
    listNodesWithHostname: async (hostname, signal) =>
      (await client.list<V1Node>(core('nodes'), { labelSelector: `${HOSTNAME_LABEL_KEY}=${hostname}` }, opts(signal)))
        .items,
    getPod: (namespace, name, signal) => orUndefined(client.get<V1Pod>(core('pods', namespace, name), opts(signal))),
    listPodsOfTrace: async (namespace, id, signal) =>
      (
        await client.list<V1Pod>(
          core('pods', namespace),
          { labelSelector: `${TRACE_ID_LABEL_KEY}=${id}`, resourceVersion: '0' },
          opts(signal),
        )
      ).items.sort((a, b) =>
        String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')),
      ),
    getConfigMap: (namespace, name, signal) =>
      orUndefined(client.get<V1ConfigMap>(core('configmaps', namespace, name), opts(signal))),
    getJob: (namespace, name, signal) => orUndefined(client.get<V1Job>(jobs(namespace, name), opts(signal))),
    createConfigMap: (configMap, signal) =>
      createIfAbsent(client.createUnparsed(core('configmaps', namespaceOf(configMap)), configMap, opts(signal))),
    createJob: (job, signal) => createIfAbsent(client.createUnparsed(jobs(namespaceOf(job)), job, opts(signal))),
    mergePatchConfigMap: async (namespace, name, patch, signal) => {
      await client.patch(core('configmaps', namespace, name), patch, 'merge', opts(signal));
    },
    replaceStatus: (traceJob, signal) =>
      client.replaceStatus<TraceJob>(
        traceJobPath(traceJob.metadata.namespace, traceJob.metadata.name),
        traceJob,
        opts(signal),
      ),
    readPodLog: async (namespace, pod, container, tailLines, signal) => {
      try {
        return { text: await client.getLog(core('pods', namespace, pod), { container, tailLines }, opts(signal)) };
      } catch (error) {
        if (signal?.aborted === true) throw error;
        return { error: errorMessage(error) };
      }
    },
    latestPodCreateFailure: async (namespace, jobName, signal) => {
      const events = await client.list<CoreV1Event>(core('events', namespace), {
        fieldSelector: `involvedObject.kind=Job,involvedObject.name=${jobName},reason=FailedCreate`,
        ...opts(signal),
      });
      const latest = events.items
        .map((e) => ({ at: eventTime(e), message: e.message ?? '' }))
        .sort((a, b) => b.at - a.at)[0];
      return latest === undefined ? undefined : { message: latest.message };
    },
    execInPod: (namespace, pod, container, command, timeoutMs, signal) =>
      client.exec(core('pods', namespace, pod), { container, command }, { timeoutMs, ...opts(signal) }),
    suspendJob: async (namespace, name, signal) => {
      await orUndefined(client.patch(jobs(namespace, name), { spec: { suspend: true } }, 'merge', opts(signal)));
    },
    deleteTraceJob: async (namespace, name, uid, signal) => {
      // 404: already gone; 409: the uid precondition failed, a namesake was created since: leave it.
      await ignoreConflict(
        client.delete(traceJobPath(namespace, name), {
          preconditions: { uid },
          propagationPolicy: 'Background',
          ...opts(signal),
        }),
      );
    },
  };
}
