// List+watch of one resource collection as an explicit state machine
// (kube-rs `watcher`, client-go's reflector), emitting typed events to one
// consumer (usually Store.apply).
//
// API
//   type WatcherEvent<T> = { type: 'sync'; objects: T[] } | { type: 'added' | 'modified' | 'deleted'; object: T }
//   interface WatchTransport { list(path, params, signal); watch(path, params, signal): AsyncIterable<RawWatchEvent> }
//                                        (KubeClient implements it; tests may fake it)
//   type WatcherState = 'listing' | 'watching' | 'backoff' | 'stopped'
//   class Watcher<T extends KubeObject = KubeObject>
//     new Watcher({ transport, path, labelSelector?, fieldSelector?, pageSize = 500, streamingList = false, protobuf?,
//                   timeoutSeconds = [300, 600], silenceTimeoutMs = 150_000, backoff?, clock?,
//                   random?, transform?, logger?, onState? })
//     run(consumer, signal): Promise<void>   resolves only when signal aborts
//     state(): WatcherState
//     resourceVersion(): string | undefined  the last one seen (list, event or bookmark)
//     stats(): { lists, watches, relistsOnGone, watchdogRestarts, errors }
//
// States
//   listing  → paginated LIST (limit/continue), then emit { type: 'sync', objects } → watching(rv of the list)
//              with streamingList: instead a WATCH ?sendInitialEvents=true&resourceVersionMatch=NotOlderThan
//              (the API server's streaming list, KEP-3157): the objects arrive one event at a time, are
//              transformed and collected, and the BOOKMARK annotated k8s.io/initial-events-end emits the
//              sync; the same stream then goes on as an ordinary watch. No list body is ever held whole.
//              A server that refuses the parameters (4xx) is listed in pages from then on.
//   watching → WATCH ?resourceVersion=rv&allowWatchBookmarks=true&timeoutSeconds=<random in range>;
//              each event updates rv and is emitted; bookmarks only update rv
//     stream ended by the server (timeout) → watching(rv) at once
//     410 (HTTP status or ERROR event with code 410) → listing at once
//     a protobuf stream it cannot read → JSON from then on, backoff → watching(rv)
//     other error / connection refused / very short empty watch → backoff → watching(rv)
//     watchdog: nothing (not even a bookmark) for silenceTimeoutMs → abort and watching(rv)
//   backoff  → sleep backoff.next() (default 800 ms doubling to 30 s, jittered) → next state
//   The backoff resets after a list or a watch event succeeds. Errors from the
//   consumer are logged, then backoff → listing, so the consumer is re-synced.
//
// Guarantees
// - run() never returns or throws while its signal is not aborted: every
//   failure goes through backoff and the machine continues.
// - Objects reach the consumer only after `transform` (drop what you do not
//   need before anything is stored); objects without metadata are skipped.
// - The consumer is awaited: events are delivered one at a time, in order.
import { isGone, ApiError } from './api-error.ts';
import { ExponentialBackoff, type Backoff } from './backoff.ts';
import { realClock, type Clock } from './clock.ts';
import { nopLogger, type Logger } from './logger.ts';
import { isKubeObject, type KubeObject, type ObjectList, type RawWatchEvent, type Status } from './objects.ts';
import { ProtobufError } from './protobuf-reader.ts';
import type { ProtobufDecoder } from './watch-protobuf.ts';

export type WatcherEvent<T> = { type: 'sync'; objects: T[] } | { type: 'added' | 'modified' | 'deleted'; object: T };
export type WatcherConsumer<T> = (event: WatcherEvent<T>) => void | Promise<void>;
export type WatcherState = 'listing' | 'watching' | 'backoff' | 'stopped';

export interface ListParams {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WatchParams {
  labelSelector?: string;
  fieldSelector?: string;
  /** Omitted for a streaming list (sendInitialEvents), which starts from the newest state. */
  resourceVersion?: string;
  allowWatchBookmarks: boolean;
  timeoutSeconds: number;
  sendInitialEvents?: boolean;
  resourceVersionMatch?: 'NotOlderThan';
}

/** The annotation on the bookmark that ends a streaming list's initial events. */
export const INITIAL_EVENTS_END_ANNOTATION = 'k8s.io/initial-events-end';

/**
 * How the watcher talks to the API server. Errors should be ApiErrors where
 * there was a response. Both calls should stop when `signal` aborts; the
 * watcher also stops waiting on its own, so a transport that does not still
 * cannot hang it (the abandoned stream is closed with `return()`).
 */
export interface WatchTransport {
  list(path: string, params: ListParams, signal: AbortSignal): Promise<ObjectList<unknown>>;
  /** With `protobuf`, asks for the protobuf stream and reads each object with it (a transport may still use JSON). */
  watch(
    path: string,
    params: WatchParams,
    signal: AbortSignal,
    protobuf?: ProtobufDecoder,
  ): AsyncIterable<RawWatchEvent>;
}

export interface WatcherOptions<T extends KubeObject> {
  transport: WatchTransport;
  /** Collection path, e.g. /apis/batch/v1/namespaces/ns/jobs or /apis/batch/v1/jobs. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  pageSize?: number;
  /** List through a watch with sendInitialEvents=true (falls back to pages if the server refuses). */
  streamingList?: boolean;
  /** Server-side watch timeout, picked uniformly in [min, max] seconds for each watch. */
  timeoutSeconds?: readonly [number, number];
  /** Restart a watch that has delivered nothing (not even a bookmark) for this long. */
  silenceTimeoutMs?: number;
  backoff?: Backoff;
  clock?: Clock;
  random?: () => number;
  /** Applied to every object before it is emitted (keep only what you need). */
  transform?: (obj: KubeObject) => T;
  /**
   * Watch in protobuf and read each object with this (built-in kinds only; a
   * custom resource has no protobuf form). It should read what `transform`
   * keeps, in the same form; `transform` still applies to what it returns.
   */
  protobuf?: ProtobufDecoder;
  logger?: Logger;
  onState?: (state: WatcherState) => void;
}

/** True when `error` or one of its causes is an instance of `type`. */
function causedBy(error: unknown, type: abstract new (...args: never[]) => Error): boolean {
  let e: unknown = error;
  while (e instanceof Error) {
    if (e instanceof type) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Rejects with the abort reason as soon as `signal` aborts, even if `work` ignores it. */
function abortable<R>(work: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<R>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Iterates `source`, but ends with the abort reason as soon as `signal` aborts. */
async function* abortableIterable<R>(
  source: AsyncIterable<R>,
  signal: AbortSignal,
): AsyncGenerator<R, void, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = await abortable(iterator.next(), signal);
      if (next.done === true) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    // Not awaited: an iterator stuck in next() would hold return() up too.
    if (!finished) void iterator.return?.()?.catch(() => {});
  }
}

/** A 4xx other than 410/429 on a streaming list: the server does not support (or allow) it. */
function refusesStreamingList(error: unknown): boolean {
  return (
    error instanceof ApiError &&
    error.status >= 400 &&
    error.status < 500 &&
    error.status !== 410 &&
    error.status !== 429
  );
}

/** A watch that ends this quickly without a single event counts as a failure (backs off). */
const SHORT_WATCH_MS = 1000;

type Next =
  | { kind: 'list' }
  | { kind: 'stream' }
  | { kind: 'watch'; rv: string }
  | { kind: 'backoff'; then: { kind: 'list' } | { kind: 'stream' } | { kind: 'watch'; rv: string } };

class WatchdogFired extends Error {
  constructor(silentMs: number) {
    super(`watch delivered nothing for ${Math.round(silentMs / 1000)}s`);
    this.name = 'WatchdogFired';
  }
}

/** Lists and watches one collection forever (until its signal aborts). */
export class Watcher<T extends KubeObject = KubeObject> {
  readonly #transport: WatchTransport;
  readonly #path: string;
  readonly #labelSelector: string | undefined;
  readonly #fieldSelector: string | undefined;
  readonly #pageSize: number;
  #streamingList: boolean;
  readonly #timeoutRange: readonly [number, number];
  readonly #silenceMs: number;
  readonly #backoff: Backoff;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #transform: (obj: KubeObject) => T;
  #protobuf: ProtobufDecoder | undefined;
  readonly #log: Logger;
  readonly #onState: ((state: WatcherState) => void) | undefined;
  #state: WatcherState = 'stopped';
  #rv: string | undefined;
  readonly #stats = { lists: 0, watches: 0, relistsOnGone: 0, watchdogRestarts: 0, errors: 0 };

  constructor(options: WatcherOptions<T>) {
    this.#transport = options.transport;
    this.#path = options.path;
    this.#labelSelector = options.labelSelector;
    this.#fieldSelector = options.fieldSelector;
    this.#pageSize = options.pageSize ?? 500;
    this.#streamingList = options.streamingList ?? false;
    this.#timeoutRange = options.timeoutSeconds ?? [300, 600];
    this.#silenceMs = options.silenceTimeoutMs ?? 150_000;
    this.#clock = options.clock ?? realClock;
    this.#random = options.random ?? Math.random;
    this.#backoff =
      options.backoff ??
      new ExponentialBackoff({ initialMs: 800, maxMs: 30_000, factor: 2, jitter: 0.5, random: this.#random });
    this.#transform = options.transform ?? ((obj) => obj as T);
    this.#protobuf = options.protobuf;
    this.#log = (options.logger ?? nopLogger).child({
      watch: options.path,
      ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
    });
    this.#onState = options.onState;
  }

  state(): WatcherState {
    return this.#state;
  }

  resourceVersion(): string | undefined {
    return this.#rv;
  }

  stats(): Readonly<{
    lists: number;
    watches: number;
    relistsOnGone: number;
    watchdogRestarts: number;
    errors: number;
  }> {
    return { ...this.#stats };
  }

  async run(consumer: WatcherConsumer<T>, signal: AbortSignal): Promise<void> {
    let next: Next = this.#listStep();
    try {
      while (!signal.aborted) {
        switch (next.kind) {
          case 'list':
            next = this.#streamingList ? { kind: 'stream' } : await this.#list(consumer, signal);
            break;
          case 'stream':
            next = await this.#watch(undefined, consumer, signal);
            break;
          case 'watch':
            next = await this.#watch(next.rv, consumer, signal);
            break;
          case 'backoff': {
            this.#setState('backoff');
            const delay = this.#backoff.next();
            this.#log.debug('backing off', { delayMs: delay });
            try {
              await this.#clock.sleep(delay, signal);
            } catch {
              return;
            }
            next = next.then;
            break;
          }
        }
      }
    } finally {
      this.#setState('stopped');
    }
  }

  #listStep(): Next {
    return this.#streamingList ? { kind: 'stream' } : { kind: 'list' };
  }

  #setState(state: WatcherState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#onState?.(state);
  }

  async #list(consumer: WatcherConsumer<T>, signal: AbortSignal): Promise<Next> {
    this.#setState('listing');
    this.#stats.lists++;
    let objects: T[];
    let rv: string;
    try {
      ({ objects, rv } = await this.#listAll(signal));
    } catch (error: unknown) {
      if (signal.aborted) return { kind: 'list' };
      this.#stats.errors++;
      this.#log.warn('list failed; will retry', { err: error });
      return { kind: 'backoff', then: { kind: 'list' } };
    }
    this.#rv = rv;
    try {
      await consumer({ type: 'sync', objects });
    } catch (error: unknown) {
      return this.#consumerFailed(error);
    }
    this.#backoff.reset();
    this.#log.debug('listed', { objects: objects.length, resourceVersion: rv });
    return { kind: 'watch', rv };
  }

  async #listAll(signal: AbortSignal): Promise<{ objects: T[]; rv: string }> {
    const objects: T[] = [];
    let continueToken: string | undefined;
    for (;;) {
      const page = await abortable(
        this.#transport.list(
          this.#path,
          {
            ...(this.#labelSelector === undefined ? {} : { labelSelector: this.#labelSelector }),
            ...(this.#fieldSelector === undefined ? {} : { fieldSelector: this.#fieldSelector }),
            limit: this.#pageSize,
            ...(continueToken === undefined ? {} : { continue: continueToken }),
          },
          signal,
        ),
        signal,
      );
      for (const item of page.items) {
        const obj = this.#accept(item);
        if (obj !== undefined) objects.push(obj);
      }
      continueToken = page.metadata.continue;
      if (continueToken === undefined || continueToken === '') {
        const rv = page.metadata.resourceVersion;
        if (rv === undefined || rv === '') throw new Error(`list of ${this.#path} returned no resourceVersion`);
        return { objects, rv };
      }
    }
  }

  /** Watches from `rv`; with `rv` undefined, a streaming list first (initial events, then the sync). */
  async #watch(rv: string | undefined, consumer: WatcherConsumer<T>, signal: AbortSignal): Promise<Next> {
    // Objects of a streaming list not yet emitted; undefined once the sync is out (or for a plain watch).
    let initial: T[] | undefined = rv === undefined ? [] : undefined;
    this.#setState(initial === undefined ? 'watching' : 'listing');
    if (initial === undefined) this.#stats.watches++;
    else this.#stats.lists++;
    const [min, max] = this.#timeoutRange;
    const timeoutSeconds = Math.round(min + (max - min) * this.#random());
    const watchAbort = new AbortController();
    const onOuterAbort = (): void => watchAbort.abort(signal.reason);
    signal.addEventListener('abort', onOuterAbort, { once: true });
    let lastActivity = this.#clock.now();
    const watchdogStop = new AbortController();
    const watchdog = this.#watchdog(() => lastActivity, watchAbort, watchdogStop.signal);
    const started = this.#clock.now();
    let events = 0;
    let current = rv ?? '';
    // Where to go when this stream fails: before its sync, list again; after, resume from `current`.
    const resume = (): { kind: 'list' } | { kind: 'watch'; rv: string } =>
      initial === undefined ? { kind: 'watch', rv: current } : { kind: 'list' };
    try {
      const stream = this.#transport.watch(
        this.#path,
        {
          ...(this.#labelSelector === undefined ? {} : { labelSelector: this.#labelSelector }),
          ...(this.#fieldSelector === undefined ? {} : { fieldSelector: this.#fieldSelector }),
          ...(rv === undefined
            ? { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' as const }
            : { resourceVersion: rv }),
          allowWatchBookmarks: true,
          timeoutSeconds,
        },
        watchAbort.signal,
        this.#protobuf,
      );
      for await (const event of abortableIterable(stream, watchAbort.signal)) {
        lastActivity = this.#clock.now();
        events++;
        if (event.type === 'ERROR') {
          const status = (typeof event.object === 'object' && event.object !== null ? event.object : {}) as Status;
          throw ApiError.fromStatus(status, { method: 'WATCH', path: this.#path }, status.code ?? 500);
        }
        if (!isKubeObject(event.object)) {
          this.#log.warn('watch event without metadata; skipped', { eventType: event.type });
          continue;
        }
        const eventRv = event.object.metadata.resourceVersion;
        if (event.type === 'BOOKMARK') {
          if (eventRv !== undefined && eventRv !== '') current = eventRv;
          this.#rv = current;
          if (initial !== undefined && event.object.metadata.annotations?.[INITIAL_EVENTS_END_ANNOTATION] === 'true') {
            const objects = initial;
            initial = undefined;
            try {
              await consumer({ type: 'sync', objects });
            } catch (error: unknown) {
              return this.#consumerFailed(error);
            }
            this.#backoff.reset();
            this.#setState('watching');
            this.#log.debug('listed (streaming)', { objects: objects.length, resourceVersion: current });
          }
          continue;
        }
        const obj = this.#accept(event.object);
        if (eventRv !== undefined && eventRv !== '') current = eventRv;
        this.#rv = current;
        if (obj === undefined) continue;
        if (initial !== undefined) {
          if (event.type === 'ADDED') initial.push(obj);
          continue;
        }
        try {
          await consumer({
            type: event.type === 'ADDED' ? 'added' : event.type === 'MODIFIED' ? 'modified' : 'deleted',
            object: obj,
          });
        } catch (error: unknown) {
          return this.#consumerFailed(error);
        }
        this.#backoff.reset();
      }
      if (signal.aborted) return resume();
      if (initial !== undefined) {
        this.#stats.errors++;
        this.#log.warn('streaming list ended before its initial events did; listing again after backoff', {
          events,
        });
        return { kind: 'backoff', then: { kind: 'list' } };
      }
      if (events === 0 && this.#clock.now() - started < SHORT_WATCH_MS) {
        this.#stats.errors++;
        this.#log.warn('watch ended at once without events; backing off', { resourceVersion: current });
        return { kind: 'backoff', then: { kind: 'watch', rv: current } };
      }
      this.#log.debug('watch ended; resuming', { resourceVersion: current, events });
      return { kind: 'watch', rv: current };
    } catch (error: unknown) {
      if (signal.aborted) return resume();
      if (watchAbort.signal.aborted && watchAbort.signal.reason instanceof WatchdogFired) {
        this.#stats.watchdogRestarts++;
        this.#log.warn('watch was silent too long; restarting it', {
          silenceTimeoutMs: this.#silenceMs,
          resourceVersion: current,
        });
        return resume();
      }
      if (initial !== undefined && refusesStreamingList(error)) {
        this.#streamingList = false;
        this.#log.info('the API server does not serve streaming lists; listing in pages', { err: error });
        return { kind: 'list' };
      }
      if (this.#protobuf !== undefined && causedBy(error, ProtobufError)) {
        this.#protobuf = undefined;
        this.#stats.errors++;
        this.#log.warn('cannot read the protobuf watch stream; watching as JSON from now on', {
          err: error,
          resourceVersion: current,
        });
        return { kind: 'backoff', then: resume() };
      }
      if (isGone(error)) {
        this.#stats.relistsOnGone++;
        this.#log.info('resourceVersion too old (410 Gone); re-listing', { resourceVersion: current });
        this.#rv = undefined;
        return { kind: 'list' };
      }
      this.#stats.errors++;
      this.#log.warn('watch failed; will resume after backoff', { err: error, resourceVersion: current });
      return { kind: 'backoff', then: resume() };
    } finally {
      signal.removeEventListener('abort', onOuterAbort);
      watchdogStop.abort();
      watchAbort.abort();
      await watchdog;
    }
  }

  async #watchdog(lastActivity: () => number, watch: AbortController, stop: AbortSignal): Promise<void> {
    try {
      for (;;) {
        const silent = this.#clock.now() - lastActivity();
        if (silent >= this.#silenceMs) {
          watch.abort(new WatchdogFired(silent));
          return;
        }
        await this.#clock.sleep(this.#silenceMs - silent, stop);
      }
    } catch {
      // stopped
    }
  }

  #accept(raw: unknown): T | undefined {
    if (!isKubeObject(raw)) {
      this.#log.warn('object without metadata; skipped');
      return undefined;
    }
    try {
      return this.#transform(raw);
    } catch (error: unknown) {
      this.#log.error('transform threw; object skipped', {
        name: raw.metadata.name,
        namespace: raw.metadata.namespace,
        err: error,
      });
      return undefined;
    }
  }

  #consumerFailed(error: unknown): Next {
    this.#stats.errors++;
    this.#log.error('watch consumer threw; re-listing after backoff', { err: error });
    return { kind: 'backoff', then: { kind: 'list' } };
  }
}
