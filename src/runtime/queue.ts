// A keyed work queue, like client-go's rate-limited workqueue and kube-rs's
// scheduler: it carries keys (e.g. "namespace/name"), never objects, and
// knows nothing about Kubernetes.
//
// API
//   class WorkQueue
//     new WorkQueue({ clock?, rateLimiter?, metrics?, priorityOf? })
//     add(key): void                    make key due now
//     addAfter(key, ms): void           make key due in ms (earliest wins)
//     addRateLimited(key): void         addAfter(key, rateLimiter.when(key)); counts a retry
//     forget(key): void                 reset key's rate-limit history (call after a success)
//     numRequeues(key): number
//     get(signal?): Promise<string | undefined>   next due key, waiting if none; undefined = stop
//     done(key): void                   processing of key finished
//     len(): number                     keys due and waiting to be handed out
//     idle(priority): Promise<void>     resolves once no key of at least that priority is due or in processing
//     processing(): number              keys handed out and not yet done
//     delayed(): number                 keys waiting for a later time
//     shutdown(): void / isShutDown(): boolean
//     unfinishedWorkSeconds(): number   sum of the running time of keys in processing
//     longestRunningProcessorSeconds(): number
//   interface QueueMetricsSink          hooks the metrics module implements (workqueue_*)
//
// Guarantees
// - Dedup: a key that is due is held once, however often it is added.
// - In-flight hold: a key handed out by `get` is not handed out again until
//   `done(key)`; if it was added meanwhile, it becomes due again at `done`.
// - One entry per key, earliest wins: `addAfter` does nothing when the key
//   is already due or already scheduled earlier, and replaces a later
//   schedule; `add` supersedes any schedule.
// - Keys are handed out by priority (`priorityOf(key)`, higher first, asked
//   when the key becomes due), and in the order they became due within one
//   priority (FIFO). Without `priorityOf` every key has priority 0: plain FIFO.
//   A due key added again moves up if its priority rose (a stop asked for a
//   trace waiting behind a burst), never down.
// - After `shutdown()`, adds are ignored, scheduled keys are dropped and
//   every `get` (waiting or new) resolves `undefined`; keys in processing may
//   still be `done`.
// - `get(signal)` resolves `undefined` when the signal aborts; no key is lost.
import { defaultControllerRateLimiter, type RateLimiter } from './backoff.ts';
import { realClock, type Clock } from './clock.ts';

/** Hooks called by the queue so a metrics module can publish client-go's workqueue_* series. */
export interface QueueMetricsSink {
  /** Current number of due keys (workqueue_depth). */
  depth(n: number): void;
  /** A key became due that was not already (workqueue_adds_total). */
  added(): void;
  /** Seconds a key waited between becoming due and being handed out (workqueue_queue_duration_seconds). */
  queueLatency(seconds: number): void;
  /** Seconds between `get` and `done` (workqueue_work_duration_seconds). */
  workDuration(seconds: number): void;
  /** A rate-limited re-add (workqueue_retries_total). */
  retried(): void;
}

export interface WorkQueueOptions {
  clock?: Clock;
  /** Defaults to controller-runtime's (5 ms → 1000 s per key, 10 qps / burst 100 overall). */
  rateLimiter?: RateLimiter;
  metrics?: QueueMetricsSink;
  /**
   * A key's priority when it becomes due; higher is handed out first (like
   * controller-runtime's priority queue). Default: 0 for every key.
   */
  priorityOf?: (key: string) => number;
}

interface Waiter {
  resolve: (key: string | undefined) => void;
}

interface Scheduled {
  due: number;
  cancel: AbortController;
}

/** Keyed, deduplicating, rate-limited work queue. */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #limiter: RateLimiter;
  readonly #metrics: QueueMetricsSink | undefined;
  readonly #priorityOf: (key: string) => number;
  /** Due keys not in processing, by priority, each in the order they became due. */
  readonly #lanes = new Map<number, Set<string>>();
  /** The priority of every key due or in processing, and how many there are of each. */
  readonly #priorityOfActive = new Map<string, number>();
  readonly #activeByPriority = new Map<number, number>();
  #idleWaiters: { priority: number; resolve: () => void }[] = [];
  /** Keys that need processing: due ones plus those re-added while in processing. */
  readonly #dirty = new Set<string>();
  /** Keys handed out by get(), with the time they were. */
  readonly #processing = new Map<string, number>();
  /** When each dirty key became due (for queue latency). */
  readonly #dueSince = new Map<string, number>();
  readonly #scheduled = new Map<string, Scheduled>();
  #waiters: Waiter[] = [];
  #shutDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? realClock;
    this.#limiter = options.rateLimiter ?? defaultControllerRateLimiter(this.#clock);
    this.#metrics = options.metrics;
    this.#priorityOf = options.priorityOf ?? (() => 0);
  }

  add(key: string): void {
    if (this.#shutDown) return;
    this.#cancelScheduled(key);
    if (this.#dirty.has(key)) {
      if (!this.#processing.has(key)) this.#raise(key);
      return;
    }
    this.#dirty.add(key);
    this.#dueSince.set(key, this.#clock.now());
    this.#metrics?.added();
    if (this.#processing.has(key)) return;
    this.#makeDue(key);
  }

  addAfter(key: string, ms: number): void {
    if (this.#shutDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    if (this.#dirty.has(key)) return;
    const due = this.#clock.now() + ms;
    const existing = this.#scheduled.get(key);
    if (existing !== undefined) {
      if (existing.due <= due) return;
      existing.cancel.abort();
    }
    const entry: Scheduled = { due, cancel: new AbortController() };
    this.#scheduled.set(key, entry);
    this.#clock.sleep(ms, entry.cancel.signal).then(
      () => {
        if (this.#scheduled.get(key) !== entry) return;
        this.#scheduled.delete(key);
        this.add(key);
      },
      () => {},
    );
  }

  addRateLimited(key: string): void {
    if (this.#shutDown) return;
    this.#metrics?.retried();
    this.addAfter(key, this.#limiter.when(key));
  }

  forget(key: string): void {
    this.#limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.#limiter.retries(key);
  }

  get(signal?: AbortSignal): Promise<string | undefined> {
    if (this.#shutDown || signal?.aborted === true) return Promise.resolve(undefined);
    if (this.#lanes.size > 0) return Promise.resolve(this.#take());
    return new Promise<string | undefined>((resolve) => {
      const onAbort = (): void => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(undefined);
      };
      const waiter: Waiter = {
        resolve: (key) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(key);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  done(key: string): void {
    const started = this.#processing.get(key);
    if (started === undefined) return;
    this.#processing.delete(key);
    this.#metrics?.workDuration((this.#clock.now() - started) / 1000);
    this.#deactivate(key);
    if (this.#dirty.has(key) && !this.#shutDown) this.#makeDue(key);
    else this.#wakeIdle();
  }

  len(): number {
    let due = 0;
    for (const lane of this.#lanes.values()) due += lane.size;
    return due;
  }

  idle(priority: number): Promise<void> {
    if (this.#shutDown || !this.#busyAt(priority)) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push({ priority, resolve }));
  }

  processing(): number {
    return this.#processing.size;
  }

  delayed(): number {
    return this.#scheduled.size;
  }

  shutdown(): void {
    if (this.#shutDown) return;
    this.#shutDown = true;
    for (const entry of this.#scheduled.values()) entry.cancel.abort();
    this.#scheduled.clear();
    this.#lanes.clear();
    for (const key of [...this.#priorityOfActive.keys()]) if (!this.#processing.has(key)) this.#deactivate(key);
    this.#dirty.clear();
    this.#dueSince.clear();
    this.#metrics?.depth(0);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(undefined);
    this.#wakeIdle();
  }

  isShutDown(): boolean {
    return this.#shutDown;
  }

  unfinishedWorkSeconds(): number {
    const now = this.#clock.now();
    let total = 0;
    for (const started of this.#processing.values()) total += now - started;
    return total / 1000;
  }

  longestRunningProcessorSeconds(): number {
    const now = this.#clock.now();
    let longest = 0;
    for (const started of this.#processing.values()) longest = Math.max(longest, now - started);
    return longest / 1000;
  }

  #makeDue(key: string): void {
    const priority = this.#priorityOf(key);
    let lane = this.#lanes.get(priority);
    if (lane === undefined) this.#lanes.set(priority, (lane = new Set()));
    lane.add(key);
    this.#priorityOfActive.set(key, priority);
    this.#activeByPriority.set(priority, (this.#activeByPriority.get(priority) ?? 0) + 1);
    this.#metrics?.depth(this.len());
    this.#wake();
  }

  #take(): string {
    const top = Math.max(...this.#lanes.keys());
    const first = this.#lanes.get(top)?.values().next();
    if (first === undefined || first.done === true) throw new Error('WorkQueue: take() on an empty queue');
    const key = first.value;
    const now = this.#clock.now();
    this.#leaveLane(key, top);
    this.#dirty.delete(key);
    this.#processing.set(key, now);
    const since = this.#dueSince.get(key);
    this.#dueSince.delete(key);
    if (since !== undefined) this.#metrics?.queueLatency((now - since) / 1000);
    this.#metrics?.depth(this.len());
    return key;
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#lanes.size > 0) {
      const waiter = this.#waiters.shift() as Waiter;
      waiter.resolve(this.#take());
    }
  }

  /** Moves a due key to a higher lane if its priority rose since it became due. */
  #raise(key: string): void {
    const current = this.#priorityOfActive.get(key);
    const priority = this.#priorityOf(key);
    if (current === undefined || priority <= current) return;
    this.#leaveLane(key, current);
    this.#deactivate(key);
    this.#makeDue(key);
  }

  /** Takes a due key out of its lane; an emptied lane goes, so `#lanes` holds only non-empty ones. */
  #leaveLane(key: string, priority: number): void {
    const lane = this.#lanes.get(priority);
    lane?.delete(key);
    if (lane?.size === 0) this.#lanes.delete(priority);
  }

  #deactivate(key: string): void {
    const priority = this.#priorityOfActive.get(key);
    if (priority === undefined) return;
    this.#priorityOfActive.delete(key);
    const left = (this.#activeByPriority.get(priority) ?? 1) - 1;
    if (left === 0) this.#activeByPriority.delete(priority);
    else this.#activeByPriority.set(priority, left);
  }

  #busyAt(priority: number): boolean {
    for (const p of this.#activeByPriority.keys()) if (p >= priority) return true;
    return false;
  }

  #wakeIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    const waiting = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const waiter of waiting) {
      if (this.#shutDown || !this.#busyAt(waiter.priority)) waiter.resolve();
      else this.#idleWaiters.push(waiter);
    }
  }

  #cancelScheduled(key: string): void {
    const entry = this.#scheduled.get(key);
    if (entry === undefined) return;
    this.#scheduled.delete(key);
    entry.cancel.abort();
  }
}
