// What the TraceJob reconciler reads and writes, as two small interfaces:
// the caches it reads from (kept current by watches) and the API calls it
// makes. The manager implements them over the watch stores and the API
// client; keeping them narrow documents exactly which I/O a reconcile does.
import type { V1ConfigMap, V1Job, V1Node, V1Pod } from '@kubernetes/client-node';
import type { TraceJob } from '../tracejob/index.ts';

/** Read-only views of the watch caches. */
export interface TraceJobCaches {
  traceJob(namespace: string, name: string): TraceJob | undefined;
  /** A trace Job (labelled with the kubectl-trace id) by name. */
  job(namespace: string, name: string): V1Job | undefined;
  /** The pods of a trace, by its id label; newest first. */
  podsOfTrace(namespace: string, id: string): V1Pod[];
  /** A trace ConfigMap (program or output) by name; its data holds only small keys such as the stop request. */
  configMap(namespace: string, name: string): V1ConfigMap | undefined;
}

/** Result of a create that tolerates the object already existing (idempotent create). */
export type CreateOutcome = 'created' | 'exists';

/** API calls, each one request; errors carry the HTTP status (see ApiError in the runtime client). */
export interface TraceJobApi {
  getNode(name: string): Promise<V1Node | undefined>;
  listNodesWithHostname(hostname: string): Promise<V1Node[]>;
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  getJob(namespace: string, name: string): Promise<V1Job | undefined>;
  createConfigMap(configMap: V1ConfigMap): Promise<CreateOutcome>;
  createJob(job: V1Job): Promise<CreateOutcome>;
  mergePatchConfigMap(namespace: string, name: string, patch: object): Promise<void>;
  /** Replaces status through the /status subresource with optimistic locking; returns the stored object. */
  replaceStatus(traceJob: TraceJob): Promise<TraceJob>;
  /** The last lines of a pod's container log, or undefined with the reason when logs cannot be read. */
  readPodLog(
    namespace: string,
    pod: string,
    container: string,
    tailLines: number,
  ): Promise<{ text: string } | { error: string }>;
  /** The message of the Job controller's latest FailedCreate Event for a Job (it could not create the pod), if any. */
  latestPodCreateFailure(namespace: string, jobName: string): Promise<{ message: string } | undefined>;
  /** Suspends a Job (spec.suspend): it deletes its pod and creates none; a Job already gone is fine. */
  suspendJob(namespace: string, name: string): Promise<void>;
  /** Deletes the TraceJob if it still has this uid (a precondition, so a re-created namesake survives). */
  deleteTraceJob(namespace: string, name: string, uid: string): Promise<void>;
}

export type EventType = 'Normal' | 'Warning';

/** Records Kubernetes Events about a TraceJob. */
export interface EventRecorder {
  event(traceJob: TraceJob, type: EventType, reason: string, message: string): void;
}
