// A watch cache of the cluster's Nodes, trimmed to what resolving a trace
// target and matching an alert to a node need: the name, the labels (the
// kubernetes.io/hostname label among them), the Ready condition and the
// InternalIP addresses. Shared by the controllers of one manager, so the
// TraceJob reconciler resolves spec.hostname without a request to the API
// server and a trigger can find a node by an alert's instance address.
//
// Why a full watch and not a metadata-only one (PartialObjectMetadata):
// metadata gives names and labels only; readiness (status.conditions) and
// the addresses (status.addresses) are in status. The transform keeps about
// 300 bytes of a Node whose JSON is 5-15 KB (images, capacity, daemon
// endpoints...), before anything is stored; lists are paginated like every
// other watch. Node heartbeats renew a Lease, not the Node, so the watch is
// quiet between real changes.
import type { V1Node } from '@kubernetes/client-node';
import { HOSTNAME_LABEL_KEY } from '../tracejob/index.ts';
import type { Logger } from '../runtime/logger.ts';
import type { KubeObject } from '../runtime/objects.ts';
import { resourcePath } from '../runtime/kube-client.ts';
import type { ReadinessGate } from '../runtime/controller.ts';
import { Store } from '../runtime/store.ts';
import { Watcher, type WatchTransport } from '../runtime/watcher.ts';

/** What the cache keeps of a Node, in the shape of a V1Node so target resolution takes it as it is. */
export type CachedNode = KubeObject &
  V1Node & {
    metadata: { name: string; labels?: Record<string, string> };
  };

export interface NodeCache {
  /** The Node named `name`. */
  byName(name: string): CachedNode | undefined;
  /** The Node named `hostname`, else the one whose kubernetes.io/hostname label is `hostname`. */
  byHostname(hostname: string): CachedNode | undefined;
  /** The Nodes with this InternalIP address. */
  byInternalIP(ip: string): CachedNode[];
  list(): CachedNode[];
  /** Calls `listener` after every change of a cached Node; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  hasSynced(): boolean;
  /** Ready once the first list is in (for controllers that wait for their caches before reconciling). */
  gate: ReadinessGate;
}

export { isNodeReady } from '../tracetrigger/fleet.ts';

/** The Node's InternalIP addresses. */
export function internalIPs(node: V1Node): string[] {
  return (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address);
}

/** Keeps name, labels, the Ready condition and the InternalIP addresses. */
export function trimNode(obj: KubeObject): CachedNode {
  const node = obj as V1Node & KubeObject;
  const { name, uid, resourceVersion, labels, deletionTimestamp } = obj.metadata;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid, resourceVersion, labels, deletionTimestamp },
    status: {
      // Ready's reason and message say why a node does not run pods (TraceJob conditions quote them).
      conditions:
        ready === undefined
          ? []
          : [
              {
                type: 'Ready',
                status: ready.status,
                ...(ready.reason === undefined ? {} : { reason: ready.reason }),
                ...(ready.message === undefined ? {} : { message: ready.message }),
              },
            ],
      addresses: (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP'),
    },
  } as CachedNode;
}

export interface WatchedNodes {
  cache: NodeCache;
  store: Store<CachedNode>;
  watcher: Watcher<CachedNode>;
}

export function createNodeCache(options: {
  transport: WatchTransport;
  logger: Logger;
  watchdogMs?: number | undefined;
}): WatchedNodes {
  const store = new Store<CachedNode>({
    name: 'nodes',
    logger: options.logger,
    indexers: {
      hostname: (n) => n.metadata.labels?.[HOSTNAME_LABEL_KEY],
      internalIP: (n) => internalIPs(n),
    },
  });
  const watcher = new Watcher<CachedNode>({
    transport: options.transport,
    path: resourcePath({ version: 'v1', plural: 'nodes' }),
    transform: trimNode,
    streamingList: true,
    ...(options.watchdogMs === undefined ? {} : { silenceTimeoutMs: options.watchdogMs }),
    logger: options.logger.child({ watch: 'nodes' }),
  });
  const cache: NodeCache = {
    byName: (name) => store.get(name),
    byHostname: (hostname) => cache.byName(hostname) ?? store.byIndex('hostname', hostname)[0],
    byInternalIP: (ip) => store.byIndex('internalIP', ip),
    list: () => store.list(),
    onChange: (listener) => store.subscribe(() => listener()),
    hasSynced: () => store.hasSynced(),
    gate: store,
  };
  return { cache, store, watcher };
}
