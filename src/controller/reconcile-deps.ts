// What the TraceJob reconciler reads and writes, as small interfaces: the
// caches it reads from (kept current by watches), the API calls it makes and
// the Events it records, bundled as TraceJobReconcilerDeps. The manager
// implements them over the watch stores and the API client; keeping them
// narrow documents exactly which I/O a reconcile does. (The per-reconcile
// key, id, logger and abort signal are the runtime's ReconcileContext.)
import type { V1ConfigMap, V1Job, V1Node, V1Pod } from '@kubernetes/client-node';
import type { OperatorSettings, TraceJob } from '../tracejob/index.ts';
import type { TraceJobMetrics } from './tracejob-metrics.ts';

/** Read-only views of the watch caches. */
export interface TraceJobCaches {
  traceJob(namespace: string, name: string): TraceJob | undefined;
  /** A trace Job (labelled with the kubectl-trace id) by name. */
  job(namespace: string, name: string): V1Job | undefined;
  /** The pods of a trace that are no longer Pending (the watch selects those), by its id label; newest first. */
  podsOfTrace(namespace: string, id: string): V1Pod[];
  /** True when the program ConfigMap `name` carries the operator's stop request (key and label). */
  stopRequested(namespace: string, name: string): boolean;
  /** A Node by name (trimmed: name, labels, Ready, InternalIPs). */
  node(name: string): V1Node | undefined;
  /** The Node named `hostname`, else the one whose kubernetes.io/hostname label is `hostname`. */
  nodeByHostname(hostname: string): V1Node | undefined;
}

/** Result of a create that tolerates the object already existing (idempotent create). */
export type CreateOutcome = 'created' | 'exists';

/**
 * API calls, each one request; errors carry the HTTP status (see ApiError in
 * the runtime client). Every call takes the reconcile's abort signal, so a
 * reconcile cancelled at shutdown stops waiting on the API server.
 */
export interface TraceJobApi {
  getNode(name: string, signal?: AbortSignal): Promise<V1Node | undefined>;
  listNodesWithHostname(hostname: string, signal?: AbortSignal): Promise<V1Node[]>;
  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<V1Pod | undefined>;
  /** The pods of a trace in any phase, by its id label; newest first (one list, from the API server's watch cache). */
  listPodsOfTrace(namespace: string, id: string, signal?: AbortSignal): Promise<V1Pod[]>;
  getConfigMap(namespace: string, name: string, signal?: AbortSignal): Promise<V1ConfigMap | undefined>;
  getJob(namespace: string, name: string, signal?: AbortSignal): Promise<V1Job | undefined>;
  createConfigMap(configMap: V1ConfigMap, signal?: AbortSignal): Promise<CreateOutcome>;
  createJob(job: V1Job, signal?: AbortSignal): Promise<CreateOutcome>;
  mergePatchConfigMap(namespace: string, name: string, patch: object, signal?: AbortSignal): Promise<void>;
  /** Replaces status through the /status subresource with optimistic locking; returns the stored object. */
  replaceStatus(traceJob: TraceJob, signal?: AbortSignal): Promise<TraceJob>;
  /** The last lines of a pod's container log, or undefined with the reason when logs cannot be read. */
  readPodLog(
    namespace: string,
    pod: string,
    container: string,
    tailLines: number,
    signal?: AbortSignal,
  ): Promise<{ text: string } | { error: string }>;
  /** The message of the Job controller's latest FailedCreate Event for a Job (it could not create the pod), if any. */
  latestPodCreateFailure(
    namespace: string,
    jobName: string,
    signal?: AbortSignal,
  ): Promise<{ message: string } | undefined>;
  /**
   * Runs a command in a pod's container (pods/exec) and waits at most
   * `timeoutMs` for it to end; throws ApiError when the API server refuses.
   */
  execInPod(
    namespace: string,
    pod: string,
    container: string,
    command: readonly string[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Suspends a Job (spec.suspend): it deletes its pod and creates none; a Job already gone is fine. */
  suspendJob(namespace: string, name: string, signal?: AbortSignal): Promise<void>;
  /** Deletes the TraceJob if it still has this uid (a precondition, so a re-created namesake survives). */
  deleteTraceJob(namespace: string, name: string, uid: string, signal?: AbortSignal): Promise<void>;
}

export type EventType = 'Normal' | 'Warning';

/** Records Kubernetes Events about a TraceJob. */
export interface EventRecorder {
  event(traceJob: TraceJob, type: EventType, reason: string, message: string): void;
}

/** Everything the TraceJob reconciler works with besides the TraceJob's key (named apart from the runtime's ReconcileContext). */
export interface TraceJobReconcilerDeps {
  caches: TraceJobCaches;
  api: TraceJobApi;
  events: EventRecorder;
  settings: OperatorSettings;
  /** Namespaces TraceJobs may run in; undefined allows all. */
  allowedNamespaces?: ReadonlySet<string> | undefined;
  now: () => Date;
  metrics?: TraceJobMetrics;
  /**
   * Failed log reads per TraceJob uid: a finished pod's log is read again a
   * few times before the trace is finished without its text (a kubelet can
   * be briefly unreachable; the pod and its log stay until the Job goes).
   */
  logReadFailures?: Map<string, number>;
  /**
   * Per TraceJob uid, the resourceVersion our last status write replaced and
   * when: a reconcile that still reads that version waits for the cache
   * instead of writing again (and getting a 409).
   */
  statusWrites?: Map<string, { from: string; at: number }>;
  /** False: never run the fast stop (pods/exec); every stop waits for the ConfigMap fallback. Default true. */
  stopExec?: boolean;
  /** Fast-stop (pods/exec) attempts per TraceJob uid that left the stop to the ConfigMap fallback. */
  stopExecAttempts?: Map<string, number>;
}
