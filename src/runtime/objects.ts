// The few shapes of Kubernetes objects the runtime itself relies on, as they
// arrive on the wire (JSON; timestamps are strings). Resource-specific types
// (TraceJob, Job, Pod) live with their owners and only need to be assignable
// to `KubeObject`.
//
// API
//   interface ObjectMeta, OwnerReference, KubeObject, ObjectList<T>, Status
//   type RawWatchEvent = { type: 'ADDED'|'MODIFIED'|'DELETED'|'BOOKMARK'|'ERROR'; object: unknown }
//   function objectKey(obj): string        "namespace/name", or "name" for cluster-scoped objects
//   function splitKey(key): { namespace?: string; name: string }
//   function controllerOwnerKey(obj, { kind, apiGroup? }): string | undefined
//                                           key of obj's controller owner of that kind (same namespace)
//   function isKubeObject(value): value is KubeObject

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: ListMeta;
  items: T[];
}

/** metav1.Status, as returned with errors and in watch ERROR events. */
export interface Status {
  kind?: 'Status';
  apiVersion?: string;
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: { reason?: string; message?: string; field?: string }[];
    retryAfterSeconds?: number;
  };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One line of a watch stream, parsed but not yet validated. */
export interface RawWatchEvent {
  type: WatchEventType;
  object: unknown;
}

export function isKubeObject(value: unknown): value is KubeObject {
  if (typeof value !== 'object' || value === null) return false;
  const metadata = (value as { metadata?: unknown }).metadata;
  return typeof metadata === 'object' && metadata !== null;
}

/** "namespace/name" for namespaced objects, "name" for cluster-scoped ones. */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata.name ?? '';
  const namespace = obj.metadata.namespace;
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * The key of `obj`'s controller owner (ownerReferences[].controller === true)
 * of the given kind, and API group if given; owners live in the same namespace.
 */
export function controllerOwnerKey(obj: KubeObject, owner: { kind: string; apiGroup?: string }): string | undefined {
  for (const ref of obj.metadata.ownerReferences ?? []) {
    if (ref.controller !== true || ref.kind !== owner.kind) continue;
    if (owner.apiGroup !== undefined) {
      const slash = ref.apiVersion.indexOf('/');
      const group = slash < 0 ? '' : ref.apiVersion.slice(0, slash);
      if (group !== owner.apiGroup) continue;
    }
    const namespace = obj.metadata.namespace;
    return namespace === undefined || namespace === '' ? ref.name : `${namespace}/${ref.name}`;
  }
  return undefined;
}
