// In-memory fakes of the TraceJob reconciler's narrow dependencies
// (TraceJobCaches, TraceJobApi, EventRecorder) for unit tests of
// src/controller/reconcile.ts. A mock only because the unit tests are about
// the reconciler's branches; what needs the real API server (optimistic
// locking on the wire, the garbage collector, watches) is in
// test/integration/controller-*.test.ts.
//
// The fake keeps one copy of each object: the caches see every write at once
// unless a test pins a stale TraceJob with `staleTraceJob`. Status writes
// check resourceVersion as the API server does and answer 409 on a mismatch.
import type { V1ConfigMap, V1Job, V1Node, V1Pod } from '@kubernetes/client-node';
import { ApiError } from '../../src/runtime/api-error.ts';
import type { ReconcileContext } from '../../src/runtime/controller.ts';
import type { LogFields, Logger, LogLevel } from '../../src/runtime/logger.ts';
import type {
  CreateOutcome,
  EventRecorder,
  EventType,
  TraceJobApi,
  TraceJobCaches,
  TraceJobReconcilerDeps,
} from '../../src/controller/reconcile-deps.ts';
import {
  defaultOperatorSettings,
  isStopRequested,
  STOP_REQUESTED_LABEL_KEY,
  TRACE_ID_LABEL_KEY,
  validateTraceJob,
  type TraceJob,
} from '../../src/tracejob/index.ts';

export const UID = '0b3b6f2e-7d1c-4c8e-9a51-2f6f5c1d9e01';
export const NAMESPACE = 'team-a';

export interface Write {
  verb: 'create' | 'status' | 'patch' | 'delete';
  kind: 'ConfigMap' | 'Job' | 'TraceJob';
  name: string;
}

const key = (namespace: string | undefined, name: string | undefined): string => `${namespace ?? ''}/${name ?? ''}`;

/**
 * A TraceJob as the API server would hand it to the cache: uid, generation,
 * resourceVersion set, and the CRD's defaults applied to the spec (as the
 * API server does), when the spec is valid.
 */
export function newTraceJob(spec: Partial<TraceJob['spec']> = {}, status?: TraceJob['status']): TraceJob {
  const traceJob = {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: {
      name: 'trace',
      namespace: NAMESPACE,
      uid: UID,
      generation: 1,
      resourceVersion: '1',
      creationTimestamp: '2024-01-01T00:00:00Z',
    },
    spec: { hostname: 'node-a', program: 'BEGIN { printf("hi\\n"); exit(); }', ...spec },
    ...(status === undefined ? {} : { status }),
  } as unknown as TraceJob;
  const validated = validateTraceJob(traceJob, defaultOperatorSettings());
  return validated.ok ? { ...traceJob, spec: validated.traceJob.spec } : traceJob;
}

export function node(name: string, hostnameLabel = name): V1Node {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': hostnameLabel } },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
    },
  };
}

export class FakeCluster implements TraceJobCaches, TraceJobApi, EventRecorder {
  readonly traceJobs = new Map<string, TraceJob>();
  readonly jobs = new Map<string, V1Job>();
  readonly configMaps = new Map<string, V1ConfigMap>();
  readonly nodes = new Map<string, V1Node>();
  pods: V1Pod[] = [];
  readonly writes: Write[] = [];
  readonly events: { type: EventType; reason: string; message: string }[] = [];
  readonly patches: { name: string; patch: object }[] = [];
  /** Pod name → what reading its log gives. */
  readonly logs = new Map<string, { text: string } | { error: string }>();
  readonly signals: (AbortSignal | undefined)[] = [];
  /** When set, caches.traceJob returns this copy instead of the stored one (a watch lagging a write). */
  staleTraceJob: TraceJob | undefined;
  #rv = 100;

  put(traceJob: TraceJob): void {
    this.traceJobs.set(key(traceJob.metadata.namespace, traceJob.metadata.name), structuredClone(traceJob));
  }

  stored(name = 'trace'): TraceJob | undefined {
    return this.traceJobs.get(key(NAMESPACE, name));
  }

  // TraceJobCaches
  traceJob(namespace: string, name: string): TraceJob | undefined {
    return this.staleTraceJob ?? this.traceJobs.get(key(namespace, name));
  }
  job(namespace: string, name: string): V1Job | undefined {
    return this.jobs.get(key(namespace, name));
  }
  /** As the real cache: its watch selects pods that are no longer Pending. */
  podsOfTrace(namespace: string, id: string): V1Pod[] {
    return this.#podsOfTrace(namespace, id).filter((p) => p.status?.phase !== 'Pending');
  }
  #podsOfTrace(namespace: string, id: string): V1Pod[] {
    return this.pods.filter(
      (p) => p.metadata?.namespace === namespace && p.metadata.labels?.[TRACE_ID_LABEL_KEY] === id,
    );
  }
  stopRequested(namespace: string, name: string): boolean {
    const cm = this.configMaps.get(key(namespace, name));
    return cm?.metadata?.labels?.[STOP_REQUESTED_LABEL_KEY] !== undefined && isStopRequested(cm);
  }
  /** Nodes the cache has (the API server has `nodes`); the same by default. */
  cachedNodes: Map<string, V1Node> | undefined;
  node(name: string): V1Node | undefined {
    return (this.cachedNodes ?? this.nodes).get(name);
  }
  nodeByHostname(hostname: string): V1Node | undefined {
    const nodes = [...(this.cachedNodes ?? this.nodes).values()];
    return (
      nodes.find((n) => n.metadata?.name === hostname) ??
      nodes.find((n) => n.metadata?.labels?.['kubernetes.io/hostname'] === hostname)
    );
  }

  // TraceJobApi
  readonly nodeReads: string[] = [];
  async getNode(name: string, signal?: AbortSignal): Promise<V1Node | undefined> {
    this.signals.push(signal);
    this.nodeReads.push(name);
    return this.nodes.get(name);
  }
  async listNodesWithHostname(hostname: string, signal?: AbortSignal): Promise<V1Node[]> {
    this.signals.push(signal);
    this.nodeReads.push(`label=${hostname}`);
    return [...this.nodes.values()].filter((n) => n.metadata?.labels?.['kubernetes.io/hostname'] === hostname);
  }
  /** Trace ids whose pods were listed from the API server. */
  readonly podLists: string[] = [];
  async listPodsOfTrace(namespace: string, id: string, signal?: AbortSignal): Promise<V1Pod[]> {
    this.signals.push(signal);
    this.podLists.push(id);
    return this.#podsOfTrace(namespace, id);
  }
  async getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    return this.pods.find((p) => p.metadata?.namespace === namespace && p.metadata.name === name);
  }
  async getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return this.configMaps.get(key(namespace, name));
  }
  async getJob(namespace: string, name: string): Promise<V1Job | undefined> {
    return this.jobs.get(key(namespace, name));
  }
  async createConfigMap(configMap: V1ConfigMap, signal?: AbortSignal): Promise<CreateOutcome> {
    this.signals.push(signal);
    this.writes.push({ verb: 'create', kind: 'ConfigMap', name: configMap.metadata?.name ?? '' });
    const k = key(configMap.metadata?.namespace, configMap.metadata?.name);
    if (this.configMaps.has(k)) return 'exists';
    this.configMaps.set(k, structuredClone(configMap));
    return 'created';
  }
  async createJob(job: V1Job, signal?: AbortSignal): Promise<CreateOutcome> {
    this.signals.push(signal);
    this.writes.push({ verb: 'create', kind: 'Job', name: job.metadata?.name ?? '' });
    const k = key(job.metadata?.namespace, job.metadata?.name);
    if (this.jobs.has(k)) return 'exists';
    this.jobs.set(k, structuredClone(job));
    return 'created';
  }
  async mergePatchConfigMap(namespace: string, name: string, patch: object): Promise<void> {
    this.writes.push({ verb: 'patch', kind: 'ConfigMap', name });
    this.patches.push({ name, patch });
    const cm = this.configMaps.get(key(namespace, name));
    const { data, metadata } = patch as {
      data?: Record<string, string>;
      metadata?: { labels?: Record<string, string> };
    };
    if (cm === undefined) return;
    if (data !== undefined) cm.data = { ...cm.data, ...data };
    if (metadata?.labels !== undefined)
      cm.metadata = { ...cm.metadata, labels: { ...cm.metadata?.labels, ...metadata.labels } };
  }
  async replaceStatus(traceJob: TraceJob, signal?: AbortSignal): Promise<TraceJob> {
    this.signals.push(signal);
    this.writes.push({ verb: 'status', kind: 'TraceJob', name: traceJob.metadata.name });
    const k = key(traceJob.metadata.namespace, traceJob.metadata.name);
    const current = this.traceJobs.get(k);
    if (current === undefined)
      throw new ApiError({ status: 404, reason: 'NotFound', message: 'not found', method: 'PUT', path: k });
    if (current.metadata.resourceVersion !== traceJob.metadata.resourceVersion)
      throw new ApiError({
        status: 409,
        reason: 'Conflict',
        message: 'the object has been modified; please apply your changes to the latest version and try again',
        method: 'PUT',
        path: k,
      });
    const next = structuredClone({ ...current, status: traceJob.status });
    next.metadata.resourceVersion = String(++this.#rv);
    this.traceJobs.set(k, next);
    return structuredClone(next);
  }
  /** Job name → the Job controller's latest FailedCreate message (from its Events). */
  readonly podCreateFailures = new Map<string, string>();
  podCreateFailureReads = 0;
  async latestPodCreateFailure(_namespace: string, jobName: string): Promise<{ message: string } | undefined> {
    this.podCreateFailureReads++;
    const message = this.podCreateFailures.get(jobName);
    return message === undefined ? undefined : { message };
  }
  async suspendJob(namespace: string, name: string): Promise<void> {
    this.writes.push({ verb: 'patch', kind: 'Job', name });
    const job = this.jobs.get(key(namespace, name));
    if (job !== undefined) job.spec = { ...job.spec, template: job.spec?.template ?? {}, suspend: true };
  }
  /** What the next execs in pods answer, in turn (a result, or an error to throw); by default exit 0. */
  readonly execAnswers: ({ exitCode: number; stdout: string; stderr: string } | Error)[] = [];
  readonly execs: { pod: string; container: string; command: readonly string[] }[] = [];
  async execInPod(
    _namespace: string,
    pod: string,
    container: string,
    command: readonly string[],
  ): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    this.execs.push({ pod, container, command });
    const answer = this.execAnswers.shift() ?? { exitCode: 0, stdout: 'asked the runner (PID 7) to stop', stderr: '' };
    if (answer instanceof Error) throw answer;
    return answer;
  }
  async readPodLog(_namespace: string, pod: string): Promise<{ text: string } | { error: string }> {
    return this.logs.get(pod) ?? { error: 'no log in the fake' };
  }
  async deleteTraceJob(namespace: string, name: string, uid: string): Promise<void> {
    this.writes.push({ verb: 'delete', kind: 'TraceJob', name });
    const k = key(namespace, name);
    if (this.traceJobs.get(k)?.metadata.uid === uid) this.traceJobs.delete(k);
  }

  // EventRecorder
  event(_traceJob: TraceJob, type: EventType, reason: string, message: string): void {
    this.events.push({ type, reason, message });
  }

  /** Writes of one kind and verb, e.g. count('create', 'Job'). */
  count(verb: Write['verb'], kind?: Write['kind']): number {
    return this.writes.filter((w) => w.verb === verb && (kind === undefined || w.kind === kind)).length;
  }

  clearRecords(): void {
    this.writes.length = 0;
    this.events.length = 0;
    this.patches.length = 0;
    this.execs.length = 0;
  }
}

/** A wall clock the test moves by hand. */
export class ManualTime {
  ms: number;
  constructor(iso = '2024-01-01T00:00:00Z') {
    this.ms = Date.parse(iso);
  }
  now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

export interface LogLine {
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/** A Logger that keeps its lines (with the fields of its parents). */
export function recordingLogger(lines: LogLine[], bound: LogFields = {}): Logger {
  const at =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}): void => {
      lines.push({ level, msg, fields: { ...bound, ...fields } });
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => recordingLogger(lines, { ...bound, ...fields }),
    enabled: () => true,
  };
}

export interface Harness {
  cluster: FakeCluster;
  time: ManualTime;
  deps: TraceJobReconcilerDeps;
  logs: LogLine[];
  conflicts: () => number;
  /** The fast-stop outcomes counted in the metrics, in order. */
  stopExecs: string[];
  ctx(reconcileID?: string): ReconcileContext;
}

export function harness(options: { allowedNamespaces?: ReadonlySet<string> } = {}): Harness {
  const cluster = new FakeCluster();
  cluster.nodes.set('node-a', node('node-a'));
  const time = new ManualTime();
  const logs: LogLine[] = [];
  let conflicts = 0;
  const stopExecs: string[] = [];
  const deps: TraceJobReconcilerDeps = {
    caches: cluster,
    api: cluster,
    events: cluster,
    settings: defaultOperatorSettings(),
    allowedNamespaces: options.allowedNamespaces,
    now: time.now,
    metrics: {
      started: () => {},
      captured: () => {},
      statusConflict: () => conflicts++,
      stopExec: (outcome) => void stopExecs.push(outcome),
    },
    logReadFailures: new Map(),
    statusWrites: new Map(),
    stopExecAttempts: new Map(),
  };
  const abort = new AbortController();
  return {
    cluster,
    time,
    deps,
    logs,
    conflicts: () => conflicts,
    stopExecs,
    ctx: (reconcileID = 'rid-1') => ({
      key: `${NAMESPACE}/trace`,
      reconcileID,
      signal: abort.signal,
      log: recordingLogger(logs, { key: `${NAMESPACE}/trace`, reconcileID }),
      retries: 0,
    }),
  };
}
