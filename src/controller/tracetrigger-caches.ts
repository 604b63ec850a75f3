// The watch caches of the TraceTrigger controller and the webhook: the
// TraceTriggers and the TraceJobs triggers created (selected by the trigger
// label, trimmed to what limits and status read), plus a view of the
// manager's one Node cache (node-cache.ts, shared with the TraceJob
// controller) as target resolution reads it: name, hostname label,
// InternalIPs, labels, readiness. Watches are cluster-wide, or one per
// namespace for a namespace-scoped install.
import { API_GROUP, API_VERSION, HOSTNAME_LABEL_KEY, PLURAL, type TraceJob } from '../tracejob/index.ts';
import {
  TRIGGER_KIND,
  TRIGGER_LABEL_KEY,
  TRIGGER_PLURAL,
  type NodeFacts,
  type TraceTrigger,
} from '../tracetrigger/index.ts';
import type { TraceResult } from '../tracejob/result.ts';
import { internalIPs, isNodeReady, type CachedNode as SharedNode, type NodeCache } from './node-cache.ts';
import { RUN_LABEL_KEY } from '../tracetrigger/run.ts';
import type { ReadinessGate } from '../runtime/controller.ts';
import type { Logger } from '../runtime/logger.ts';
import { resourcePath } from '../runtime/kube-client.ts';
import type { KubeObject } from '../runtime/objects.ts';
import { Store } from '../runtime/store.ts';
import { Watcher, type WatchTransport } from '../runtime/watcher.ts';

export type CachedTrigger = TraceTrigger & KubeObject;
/** A triggered TraceJob as cached: metadata, spec.stop, status.phase. */
export type CachedTriggeredJob = KubeObject & {
  metadata: TraceJob['metadata'] & { ownerReferences?: { kind: string; name: string; uid: string }[] };
  spec: { stop?: boolean; hostname?: string };
  /** result and failure only for TraceJobs of a fleet run (issue 14), whose results the run merges. */
  status?: { phase?: string; result?: TraceResult; failure?: string };
};
export type CachedNode = KubeObject & { facts: NodeFacts; labels: Record<string, string>; ready: boolean };

const ALL = '';

function trimTrigger(obj: KubeObject): CachedTrigger {
  const { managedFields: _dropped, ...metadata } = obj.metadata as KubeObject['metadata'] & { managedFields?: unknown };
  return { ...obj, metadata } as CachedTrigger;
}

function trimTraceJob(obj: KubeObject): CachedTriggeredJob {
  const tj = obj as KubeObject & {
    spec?: { stop?: boolean; hostname?: string };
    status?: {
      phase?: string;
      result?: TraceResult;
      conditions?: { type: string; status: string; message?: string }[];
    };
  };
  const m = obj.metadata;
  const inRun = m.labels?.[RUN_LABEL_KEY] !== undefined;
  const failure = tj.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True')?.message;
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: m.name ?? '',
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
      deletionTimestamp: m.deletionTimestamp,
      labels: m.labels,
      annotations: m.annotations,
      ownerReferences: m.ownerReferences,
    },
    spec: {
      ...(tj.spec?.stop === undefined ? {} : { stop: tj.spec.stop }),
      ...(tj.spec?.hostname === undefined ? {} : { hostname: tj.spec.hostname }),
    },
    ...(tj.status?.phase === undefined
      ? {}
      : {
          status: {
            phase: tj.status.phase,
            ...(inRun && tj.status.result !== undefined ? { result: tj.status.result } : {}),
            ...(inRun && failure !== undefined ? { failure: failure.slice(0, 256) } : {}),
          },
        }),
  } as CachedTriggeredJob;
}

/** The trigger's view of a Node of the shared Node cache. */
function triggerNode(node: SharedNode): CachedNode {
  const labels = node.metadata.labels ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: node.metadata.name, uid: node.metadata.uid, resourceVersion: node.metadata.resourceVersion },
    labels,
    ready: isNodeReady(node),
    facts: { name: node.metadata.name, hostnameLabel: labels[HOSTNAME_LABEL_KEY], internalIPs: internalIPs(node) },
  };
}

/** The controlling TraceTrigger of a TraceJob: its uid and key. */
export function triggerOwnerOf(tj: CachedTriggeredJob): { uid: string; key: string } | undefined {
  const owner = tj.metadata.ownerReferences?.find((o) => o.kind === TRIGGER_KIND);
  if (owner === undefined) return undefined;
  return { uid: owner.uid, key: `${tj.metadata.namespace ?? ''}/${owner.name}` };
}

export interface TriggerCaches {
  trigger(namespace: string, name: string): CachedTrigger | undefined;
  triggerKeys(): string[];
  /** TraceJobs controlled by the trigger with this uid. */
  traceJobsOf(triggerUid: string): CachedTriggeredJob[];
  /** Every TraceJob any trigger created (for the operator-wide rate cap). */
  allTriggeredJobs(): CachedTriggeredJob[];
  nodes(): CachedNode[];
  /** Calls `enqueue` with the trigger key of every change that may need a reconcile. */
  onChange(enqueue: (key: string) => void): void;
  run(signal: AbortSignal): Promise<void>;
  hasSynced(): boolean;
  gates(): ReadinessGate[];
}

export function createTriggerCaches(options: {
  transport: WatchTransport;
  logger: Logger;
  namespaces?: readonly string[] | undefined;
  /** The manager's one Node cache (the TraceJob controller's); the trigger caches do not watch Nodes again. */
  nodes: NodeCache;
}): TriggerCaches {
  const { transport, logger } = options;
  const scope = options.namespaces ?? [ALL];
  const pairs: [Watcher<KubeObject>, Store<KubeObject>][] = [];
  const watch = <T extends KubeObject>(
    name: string,
    pathOf: (namespace: string | undefined) => string,
    namespaces: readonly string[],
    extra: {
      labelSelector?: string;
      transform: (o: KubeObject) => T;
      indexers?: Record<string, (o: T) => string | undefined>;
    },
  ): Store<T>[] =>
    namespaces.map((namespace) => {
      const store = new Store<T>({
        name: namespace === ALL ? name : `${name}/${namespace}`,
        logger,
        ...(extra.indexers === undefined ? {} : { indexers: extra.indexers }),
      });
      const watcher = new Watcher<T>({
        transport,
        path: pathOf(namespace === ALL ? undefined : namespace),
        ...(extra.labelSelector === undefined ? {} : { labelSelector: extra.labelSelector }),
        transform: extra.transform,
        logger: logger.child({ watch: name, namespace: namespace === ALL ? '*' : namespace }),
      });
      pairs.push([watcher as unknown as Watcher<KubeObject>, store as unknown as Store<KubeObject>]);
      return store;
    });
  const group = (plural: string) => (namespace: string | undefined) =>
    resourcePath({ group: API_GROUP, version: API_VERSION, plural, ...(namespace === undefined ? {} : { namespace }) });
  const triggers = watch<CachedTrigger>('tracetriggers', group(TRIGGER_PLURAL), scope, { transform: trimTrigger });
  const jobs = watch<CachedTriggeredJob>('triggered-tracejobs', group(PLURAL), scope, {
    labelSelector: TRIGGER_LABEL_KEY,
    transform: trimTraceJob,
    indexers: { owner: (tj) => triggerOwnerOf(tj)?.uid },
  });
  const all = [...triggers, ...jobs] as unknown as Store<KubeObject>[];
  // The trigger's view of the Nodes, made once per change of the Node cache, not on every webhook request.
  let nodeView: CachedNode[] | undefined;
  options.nodes.onChange(() => {
    nodeView = undefined;
  });
  return {
    trigger: (namespace, name) => {
      for (const store of triggers) {
        const found = store.get(`${namespace}/${name}`);
        if (found !== undefined) return found;
      }
      return undefined;
    },
    triggerKeys: () => triggers.flatMap((s) => s.keys()),
    traceJobsOf: (uid) => jobs.flatMap((s) => s.byIndex('owner', uid)),
    allTriggeredJobs: () => jobs.flatMap((s) => s.list()),
    nodes: () => (nodeView ??= options.nodes.list().map(triggerNode)),
    onChange(enqueue) {
      for (const store of triggers) {
        store.subscribe((change) => {
          if (change.type === 'modified') {
            const before = change.old.metadata;
            const after = change.object.metadata;
            // Status writes (ours) leave the generation and annotations alone and need no reconcile.
            if (
              before.generation === after.generation &&
              before.deletionTimestamp === after.deletionTimestamp &&
              JSON.stringify(before.annotations ?? {}) === JSON.stringify(after.annotations ?? {})
            )
              return;
          }
          enqueue(`${change.object.metadata.namespace ?? ''}/${change.object.metadata.name ?? ''}`);
        });
      }
      for (const store of jobs) {
        store.subscribe((change) => {
          const owner = triggerOwnerOf(change.object);
          if (owner !== undefined) enqueue(owner.key);
        });
      }
    },
    async run(signal) {
      await Promise.all(pairs.map(([watcher, store]) => watcher.run((event) => store.apply(event), signal)));
    },
    hasSynced: () => all.every((s) => s.hasSynced()) && options.nodes.hasSynced(),
    gates: () => [...all, options.nodes.gate],
  };
}
