// A reflector store: the latest version of each object of one watched
// collection, fed by a Watcher's events (kube-rs `reflector::Store`,
// client-go's indexer). Reconcilers read from it instead of the API server.
//
// API
//   type StoreChange<T> = { type: 'added', object } | { type: 'modified', object, old } | { type: 'deleted', object }
//   type Indexer<T> = (obj: T) => string | readonly string[] | undefined
//   class Store<T extends KubeObject>
//     new Store({ name, indexers?: Record<string, Indexer<T>>, logger? })
//     readonly name: string
//     apply(event: WatcherEvent<T>): void     feed it: watcher.run((e) => store.apply(e), signal)
//     get(key): T | undefined                 key = "namespace/name" (objectKey)
//     list(): T[]; keys(): string[]; size(): number
//     byIndex(index, value): T[]              e.g. byIndex('traceId', id)
//     addIndex(name, indexer): void           may be called at any time (indexes existing objects)
//     hasSynced(): boolean                    a first complete list has been applied
//     ready(signal?): Promise<void>           resolves at the first complete list; rejects on abort
//     subscribe(listener): () => void        changes, in order, after the store is updated
//   function keysOf(fn): (change) => string[]   helper to map a change to queue keys (object and old)
//
// Guarantees
// - `apply({ type: 'sync', objects })` replaces the contents: listeners get
//   `added` for new keys, `modified` for keys whose resourceVersion changed,
//   and `deleted` (with the last known object) for keys that vanished — so a
//   delete missed during a watch gap is still seen.
// - An event whose resourceVersion equals the stored one is applied silently
//   (no listener call); `deleted` for an unknown key is still reported.
// - A listener that throws is logged and does not affect the store or other
//   listeners. Listeners run synchronously; they should only enqueue keys.
// - Objects are stored as given; callers must not mutate what get/list
//   return (use the watcher's `transform` to drop fields up front).
import type { Logger } from './logger.ts';
import { nopLogger } from './logger.ts';
import { objectKey, type KubeObject } from './objects.ts';
import type { WatcherEvent } from './watcher.ts';

export type StoreChange<T> =
  { type: 'added'; object: T } | { type: 'modified'; object: T; old: T } | { type: 'deleted'; object: T };
export type StoreListener<T> = (change: StoreChange<T>) => void;
export type Indexer<T> = (obj: T) => string | readonly string[] | undefined;

export interface StoreOptions<T> {
  /** Used in logs and as the readiness check name (e.g. "tracejobs"). */
  name: string;
  indexers?: Record<string, Indexer<T>>;
  logger?: Logger;
}

function indexValues<T>(indexer: Indexer<T>, obj: T): readonly string[] {
  const values = indexer(obj);
  if (values === undefined) return [];
  return typeof values === 'string' ? [values] : values;
}

/** Latest object per key, with secondary indexes and change notifications. */
export class Store<T extends KubeObject> {
  readonly name: string;
  readonly #objects = new Map<string, T>();
  readonly #indexers = new Map<string, Indexer<T>>();
  /** index name → value → keys */
  readonly #indexes = new Map<string, Map<string, Set<string>>>();
  readonly #listeners = new Set<StoreListener<T>>();
  readonly #log: Logger;
  #synced = false;
  #readyWaiters: (() => void)[] = [];

  constructor(options: StoreOptions<T>) {
    this.name = options.name;
    this.#log = (options.logger ?? nopLogger).child({ store: options.name });
    for (const [name, indexer] of Object.entries(options.indexers ?? {})) this.addIndex(name, indexer);
  }

  get(key: string): T | undefined {
    return this.#objects.get(key);
  }

  list(): T[] {
    return [...this.#objects.values()];
  }

  keys(): string[] {
    return [...this.#objects.keys()];
  }

  size(): number {
    return this.#objects.size;
  }

  byIndex(index: string, value: string): T[] {
    const byValue = this.#indexes.get(index);
    if (byValue === undefined)
      throw new Error(
        `store ${this.name} has no index '${index}' (known: ${[...this.#indexes.keys()].join(', ') || 'none'})`,
      );
    const keys = byValue.get(value);
    if (keys === undefined) return [];
    const out: T[] = [];
    for (const key of keys) {
      const obj = this.#objects.get(key);
      if (obj !== undefined) out.push(obj);
    }
    return out;
  }

  addIndex(name: string, indexer: Indexer<T>): void {
    if (this.#indexers.has(name)) throw new Error(`store ${this.name} already has an index '${name}'`);
    this.#indexers.set(name, indexer);
    this.#indexes.set(name, new Map());
    for (const [key, obj] of this.#objects) this.#indexOne(name, indexer, key, obj);
  }

  hasSynced(): boolean {
    return this.#synced;
  }

  ready(signal?: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.#readyWaiters = this.#readyWaiters.filter((w) => w !== waiter);
        reject(signal?.reason);
      };
      const waiter = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#readyWaiters.push(waiter);
    });
  }

  subscribe(listener: StoreListener<T>): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  apply(event: WatcherEvent<T>): void {
    switch (event.type) {
      case 'sync':
        this.#replace(event.objects);
        break;
      case 'added':
      case 'modified':
        this.#upsert(event.object);
        break;
      case 'deleted':
        this.#delete(event.object);
        break;
    }
  }

  #replace(objects: readonly T[]): void {
    const incoming = new Map<string, T>();
    for (const obj of objects) incoming.set(objectKey(obj), obj);
    const changes: StoreChange<T>[] = [];
    for (const [key, old] of this.#objects) {
      if (!incoming.has(key)) {
        this.#remove(key, old);
        changes.push({ type: 'deleted', object: old });
      }
    }
    for (const [key, obj] of incoming) {
      const old = this.#objects.get(key);
      this.#put(key, obj, old);
      if (old === undefined) changes.push({ type: 'added', object: obj });
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion)
        changes.push({ type: 'modified', object: obj, old });
    }
    if (!this.#synced) {
      this.#synced = true;
      this.#log.debug('synced', { objects: this.#objects.size });
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const waiter of waiters) waiter();
    }
    for (const change of changes) this.#emit(change);
  }

  #upsert(obj: T): void {
    const key = objectKey(obj);
    const old = this.#objects.get(key);
    this.#put(key, obj, old);
    if (old === undefined) this.#emit({ type: 'added', object: obj });
    else if (
      old.metadata.resourceVersion !== obj.metadata.resourceVersion ||
      obj.metadata.resourceVersion === undefined
    )
      this.#emit({ type: 'modified', object: obj, old });
  }

  #delete(obj: T): void {
    const key = objectKey(obj);
    const old = this.#objects.get(key);
    if (old !== undefined) this.#remove(key, old);
    this.#emit({ type: 'deleted', object: obj });
  }

  #put(key: string, obj: T, old: T | undefined): void {
    if (old !== undefined) this.#unindex(key, old);
    this.#objects.set(key, obj);
    for (const [name, indexer] of this.#indexers) this.#indexOne(name, indexer, key, obj);
  }

  #remove(key: string, old: T): void {
    this.#unindex(key, old);
    this.#objects.delete(key);
  }

  #indexOne(name: string, indexer: Indexer<T>, key: string, obj: T): void {
    const byValue = this.#indexes.get(name);
    if (byValue === undefined) return;
    for (const value of this.#safeValues(name, indexer, obj)) {
      let keys = byValue.get(value);
      if (keys === undefined) {
        keys = new Set();
        byValue.set(value, keys);
      }
      keys.add(key);
    }
  }

  #unindex(key: string, old: T): void {
    for (const [name, indexer] of this.#indexers) {
      const byValue = this.#indexes.get(name);
      if (byValue === undefined) continue;
      for (const value of this.#safeValues(name, indexer, old)) {
        const keys = byValue.get(value);
        keys?.delete(key);
        if (keys?.size === 0) byValue.delete(value);
      }
    }
  }

  #safeValues(name: string, indexer: Indexer<T>, obj: T): readonly string[] {
    try {
      return indexValues(indexer, obj);
    } catch (error: unknown) {
      this.#log.error('indexer threw; object left out of the index', { index: name, key: objectKey(obj), err: error });
      return [];
    }
  }

  #emit(change: StoreChange<T>): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error: unknown) {
        this.#log.error('store listener threw', { change: change.type, key: objectKey(change.object), err: error });
      }
    }
  }
}

/**
 * Turns a function from one object to queue keys into a function from a
 * change to keys, covering both the new and the old object of a
 * modification (e.g. when an owner reference or label changed).
 */
export function keysOf<T>(
  fn: (obj: T) => string | readonly string[] | undefined,
): (change: StoreChange<T>) => string[] {
  return (change) => {
    const out = new Set<string>();
    for (const obj of change.type === 'modified' ? [change.object, change.old] : [change.object]) {
      const keys = fn(obj);
      if (keys === undefined) continue;
      for (const key of typeof keys === 'string' ? [keys] : keys) out.add(key);
    }
    return [...out];
  };
}
