// The watch caches the TraceJob controller reads: TraceJobs, and the Jobs
// and Pods the operator made (selected by label, so nothing else in the
// cluster is cached; of the pods only those that left Pending, see
// STARTED_POD_SELECTOR), and of its program ConfigMaps only those that carry a
// stop request (their own label): reconcile reads a ConfigMap for nothing
// else, and watching every one cost an event per trace in a burst and a
// list of them all on a restart (bench/README.md, 2026-12-07, evening). Each object
// is trimmed to what reconcile reads before it is stored (the watcher
// applies the transform to each object of a list page or watch event, so an
// untrimmed object never reaches a store):
// no program text, no pod specs beyond names, of pod and Job status only
// what deriving the trace's phase reads, and no managedFields nor kubectl's
// last-applied-configuration (together often more than half of a TraceJob's
// JSON; the operator writes TraceJobs only through /status, where the API
// server ignores everything but status).
// Pods, Jobs and ConfigMaps are watched in protobuf (cache-protobuf.ts reads
// the same trimmed fields): the API server serves them so for a quarter to a
// half of the CPU, and encodes their changes as JSON for no other watcher.
// Their lists are streamed (a watch with sendInitialEvents: one object per
// event, never a whole page body) where the API server serves that, else
// paginated. TraceJobs, which have only JSON, are listed in pages of 500.
// Watches are cluster-wide, or one per namespace when the watch scope is
// limited (each with its own store, since a re-list replaces a store whole).
// Also maps every change to the key of the TraceJob it belongs to. Nodes are
// cached cluster-wide (node-cache.ts), trimmed to name, labels, Ready and
// InternalIPs, so resolving spec.hostname needs no request.
import type { V1ConfigMap, V1Job, V1Pod } from '@kubernetes/client-node';
import {
  API_GROUP,
  API_VERSION,
  KIND,
  MANAGED_BY_LABEL_KEY,
  MANAGED_BY_VALUE,
  PLURAL,
  isStopRequested,
  STOP_KEY,
  STOP_REQUESTED_LABEL_KEY,
  TRACE_ID_LABEL_KEY,
  TRACEJOB_ANNOTATION_KEY,
  type TraceJob,
} from '../tracejob/index.ts';
import type { ReadinessGate } from '../runtime/controller.ts';
import type { Logger } from '../runtime/logger.ts';
import { controllerOwnerKey, type KubeObject, type ObjectMeta } from '../runtime/objects.ts';
import { resourcePath } from '../runtime/kube-client.ts';
import { Store, type StoreChange } from '../runtime/store.ts';
import { Watcher, type WatchTransport } from '../runtime/watcher.ts';
import type { ProtobufDecoder } from '../runtime/watch-protobuf.ts';
import { readTrimmedConfigMap, readTrimmedJob, readTrimmedPod } from './cache-protobuf.ts';
import { createNodeCache, type NodeCache } from './node-cache.ts';
import type { TraceJobCaches } from './reconcile-deps.ts';

/** Only objects the operator created: the kubectl-trace id label plus managed-by. */
export const OWNED_SELECTOR = `${TRACE_ID_LABEL_KEY},${MANAGED_BY_LABEL_KEY}=${MANAGED_BY_VALUE}`;

/**
 * Pods once they leave Pending: running or ended. A pod's start (created,
 * scheduled, its containers created) was half of the events the manager
 * received for it, and reconcile needs a starting pod only when it is late
 * (podStartIsLate in tracejob/phase.ts), when it lists the trace's pods.
 */
export const STARTED_POD_SELECTOR = 'status.phase!=Pending';

type Cached<T> = T & KubeObject;

function trimMeta(meta: ObjectMeta): ObjectMeta {
  const {
    name,
    namespace,
    uid,
    resourceVersion,
    generation,
    creationTimestamp,
    deletionTimestamp,
    labels,
    annotations,
    ownerReferences,
  } = meta;
  return {
    name,
    namespace,
    uid,
    resourceVersion,
    generation,
    creationTimestamp,
    deletionTimestamp,
    labels,
    annotations,
    ownerReferences,
  };
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function trimTraceJob(obj: KubeObject): Cached<TraceJob> {
  const { managedFields: _dropped, ...metadata } = obj.metadata as ObjectMeta & { managedFields?: unknown };
  if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _copy, ...annotations } = metadata.annotations;
    metadata.annotations = annotations;
  }
  return { ...obj, metadata } as Cached<TraceJob>;
}

/** A ConfigMap keeps only the stop request: the program text can be up to 256 KiB and reconcile never reads it. */
export function trimConfigMap(obj: KubeObject): Cached<V1ConfigMap> {
  const cm = obj as V1ConfigMap & KubeObject;
  const stop = cm.data?.[STOP_KEY];
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: trimMeta(obj.metadata),
    ...(stop === undefined ? {} : { data: { [STOP_KEY]: stop } }),
  } as Cached<V1ConfigMap>;
}

type ContainerStatus = NonNullable<NonNullable<V1Pod['status']>['containerStatuses']>[number];

/** State, restarts and readiness: no image ids, container ids, resources or mounts. */
function trimContainerStatus(c: ContainerStatus): ContainerStatus {
  return {
    name: c.name,
    ready: c.ready,
    restartCount: c.restartCount,
    started: c.started,
    state: c.state,
    lastState: c.lastState,
  } as ContainerStatus;
}

export function trimPod(obj: KubeObject): Cached<V1Pod> {
  const pod = obj as V1Pod & KubeObject;
  const spec = pod.spec;
  const status = pod.status;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: trimMeta(obj.metadata),
    spec: {
      nodeName: spec?.nodeName,
      containers: (spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image })),
    },
    status:
      status === undefined
        ? undefined
        : {
            phase: status.phase,
            reason: status.reason,
            message: status.message,
            startTime: status.startTime,
            conditions: status.conditions?.map(({ type, status: s, reason, message, lastTransitionTime }) => ({
              type,
              status: s,
              reason,
              message,
              lastTransitionTime,
            })),
            containerStatuses: status.containerStatuses?.map(trimContainerStatus),
            initContainerStatuses: status.initContainerStatuses?.map(trimContainerStatus),
          },
  } as Cached<V1Pod>;
}

export function trimJob(obj: KubeObject): Cached<V1Job> {
  const status = (obj as V1Job & KubeObject).status;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: trimMeta(obj.metadata),
    status:
      status === undefined
        ? undefined
        : {
            active: status.active,
            ready: status.ready,
            succeeded: status.succeeded,
            failed: status.failed,
            terminating: status.terminating,
            startTime: status.startTime,
            completionTime: status.completionTime,
            conditions: status.conditions,
          },
  } as Cached<V1Job>;
}

function byCreationDescending(a: KubeObject, b: KubeObject): number {
  return (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '');
}

/** The key of the TraceJob an owned object belongs to: its controller owner, or (for pods, owned by the Job) the annotation. */
export function traceJobKeyOf(obj: KubeObject): string | undefined {
  const owner = controllerOwnerKey(obj, { kind: KIND, apiGroup: API_GROUP });
  if (owner !== undefined) return owner;
  const name = obj.metadata.annotations?.[TRACEJOB_ANNOTATION_KEY];
  const namespace = obj.metadata.namespace;
  return name === undefined || namespace === undefined ? undefined : `${namespace}/${name}`;
}

function specOrLifecycleChanged(old: KubeObject, current: KubeObject): boolean {
  const before = old.metadata;
  const after = current.metadata;
  return (
    before.generation !== after.generation ||
    before.deletionTimestamp !== after.deletionTimestamp ||
    before.uid !== after.uid
  );
}

interface Resource {
  name: string;
  group?: string;
  version: string;
  plural: string;
  labelSelector?: string;
  fieldSelector?: string;
  transform?: (obj: KubeObject) => KubeObject;
  /** Watched in protobuf and read with this (cache-protobuf.ts); built-in kinds only. */
  protobuf?: ProtobufDecoder;
  indexers?: Record<string, (obj: KubeObject) => string | undefined>;
}

const ALL = '';

/** One resource's stores: one per watched namespace, or one for the whole cluster. */
class ScopedStores<T extends KubeObject> {
  readonly #stores = new Map<string, Store<T>>();
  readonly watchers: [Watcher<KubeObject>, Store<T>][] = [];

  constructor(
    resource: Resource,
    scope: readonly string[] | undefined,
    transport: WatchTransport,
    logger: Logger,
    watchdogMs: number | undefined,
  ) {
    for (const namespace of scope ?? [ALL]) {
      const store = new Store<T>({
        name: namespace === ALL ? resource.name : `${resource.name}/${namespace}`,
        logger,
        ...(resource.indexers === undefined ? {} : { indexers: resource.indexers }),
      });
      const path = resourcePath({
        ...(resource.group === undefined ? {} : { group: resource.group }),
        version: resource.version,
        plural: resource.plural,
        ...(namespace === ALL ? {} : { namespace }),
      });
      const watcher = new Watcher<KubeObject>({
        transport,
        path,
        ...(resource.labelSelector === undefined ? {} : { labelSelector: resource.labelSelector }),
        ...(resource.fieldSelector === undefined ? {} : { fieldSelector: resource.fieldSelector }),
        ...(resource.transform === undefined ? {} : { transform: resource.transform }),
        ...(resource.protobuf === undefined ? {} : { protobuf: resource.protobuf }),
        ...(watchdogMs === undefined ? {} : { silenceTimeoutMs: watchdogMs }),
        // A JSON resource is listed in pages: inside a watch event the API
        // server checks each object's JSON once more, so streaming the 10 000
        // TraceJobs of a restart cost it 1.7x the CPU of listing them
        // (bench/README.md, 2026-12-03). Protobuf has no such step.
        streamingList: resource.protobuf !== undefined,
        logger: logger.child({ watch: resource.name, namespace: namespace === ALL ? '*' : namespace }),
      });
      this.#stores.set(namespace, store);
      this.watchers.push([watcher, store]);
    }
  }

  #storeFor(namespace: string): Store<T> | undefined {
    return this.#stores.get(namespace) ?? this.#stores.get(ALL);
  }

  get(namespace: string, name: string): T | undefined {
    return this.#storeFor(namespace)?.get(`${namespace}/${name}`);
  }

  byIndex(namespace: string, index: string, value: string): T[] {
    return (this.#storeFor(namespace)?.byIndex(index, value) ?? []).filter((o) => o.metadata.namespace === namespace);
  }

  *list(): Iterable<T> {
    for (const store of this.#stores.values()) yield* store.list();
  }

  *keys(): Iterable<string> {
    for (const store of this.#stores.values()) yield* store.keys();
  }

  subscribe(listener: (change: StoreChange<T>) => void): void {
    for (const store of this.#stores.values()) store.subscribe(listener);
  }

  hasSynced(): boolean {
    return [...this.#stores.values()].every((s) => s.hasSynced());
  }

  gates(): ReadinessGate[] {
    return [...this.#stores.values()];
  }
}

export interface WatchedCaches {
  traceJobs: { list(): Iterable<Cached<TraceJob>>; keys(): Iterable<string> };
  /** The reconciler's read interface over the stores. */
  view: TraceJobCaches;
  /** The cluster's Nodes (for other controllers too, e.g. matching an alert's address to a node). */
  nodes: NodeCache;
  /** Calls `enqueue` with the TraceJob key of every change that may need a reconcile. */
  onChange(enqueue: (key: string) => void): void;
  /** Runs all watches until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  hasSynced(): boolean;
  /** One gate per store; the controller starts when all are synced. */
  gates(): ReadinessGate[];
}

export interface CacheOptions {
  transport: WatchTransport;
  logger: Logger;
  /** Namespaces to watch; undefined watches the whole cluster. */
  namespaces?: readonly string[] | undefined;
  watchdogMs?: number;
}

export function createCaches(options: CacheOptions): WatchedCaches {
  const { transport, logger, namespaces, watchdogMs } = options;
  const scoped = <T extends KubeObject>(resource: Resource): ScopedStores<T> =>
    new ScopedStores<T>(resource, namespaces, transport, logger, watchdogMs);
  const traceJobs = scoped<Cached<TraceJob>>({
    name: 'tracejobs',
    group: API_GROUP,
    version: API_VERSION,
    plural: PLURAL,
    transform: trimTraceJob,
  });
  const jobs = scoped<Cached<V1Job>>({
    name: 'jobs',
    group: 'batch',
    version: 'v1',
    plural: 'jobs',
    labelSelector: OWNED_SELECTOR,
    transform: trimJob,
    protobuf: readTrimmedJob,
  });
  const pods = scoped<Cached<V1Pod>>({
    name: 'pods',
    version: 'v1',
    plural: 'pods',
    labelSelector: OWNED_SELECTOR,
    fieldSelector: STARTED_POD_SELECTOR,
    transform: trimPod,
    protobuf: readTrimmedPod,
    indexers: { traceId: (p) => p.metadata.labels?.[TRACE_ID_LABEL_KEY] },
  });
  const stopRequests = scoped<Cached<V1ConfigMap>>({
    name: 'configmaps',
    version: 'v1',
    plural: 'configmaps',
    labelSelector: `${OWNED_SELECTOR},${STOP_REQUESTED_LABEL_KEY}`,
    transform: trimConfigMap,
    protobuf: readTrimmedConfigMap,
  });
  const owned = [jobs, pods, stopRequests] as ScopedStores<KubeObject>[];
  const all = [traceJobs as unknown as ScopedStores<KubeObject>, ...owned];
  const nodes = createNodeCache({ transport, logger, watchdogMs });

  return {
    traceJobs,
    view: {
      traceJob: (namespace, name) => traceJobs.get(namespace, name),
      job: (namespace, name) => jobs.get(namespace, name),
      podsOfTrace: (namespace, id) => pods.byIndex(namespace, 'traceId', id).sort(byCreationDescending),
      stopRequested: (namespace, name) => isStopRequested(stopRequests.get(namespace, name)),
      node: (name) => nodes.cache.byName(name),
      nodeByHostname: (hostname) => nodes.cache.byHostname(hostname),
    },
    nodes: nodes.cache,
    onChange(enqueue) {
      traceJobs.subscribe((change) => {
        // Status writes (the operator's own) do not change the generation and need no reconcile.
        if (change.type === 'modified' && !specOrLifecycleChanged(change.old, change.object)) return;
        enqueue(`${change.object.metadata.namespace ?? ''}/${change.object.metadata.name}`);
      });
      for (const stores of owned) {
        stores.subscribe((change) => {
          const key = traceJobKeyOf(change.object);
          if (key !== undefined) enqueue(key);
        });
      }
    },
    async run(signal) {
      await Promise.all([
        ...all.flatMap((s) => s.watchers).map(([watcher, store]) => watcher.run((event) => store.apply(event), signal)),
        nodes.watcher.run((event) => nodes.store.apply(event), signal),
      ]);
    },
    hasSynced: () => all.every((s) => s.hasSynced()) && nodes.store.hasSynced(),
    gates: () => [...all.flatMap((s) => s.gates()), nodes.store],
  };
}
