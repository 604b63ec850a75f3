// The runner of reconciles: takes keys from a WorkQueue and hands each to a
// plain `reconcile(key, ctx) -> Action` function on a bounded number of
// concurrent workers, turning the outcome into the queue operation
// controller-runtime would (kube-rs `Controller` + controller-runtime
// `reconcileHandler`). It knows nothing about TraceJobs.
//
// API
//   type Action = { type: 'await_change' } | { type: 'requeue'; afterMs?: number }
//   const Action = { awaitChange(), requeue(afterMs?) }      the two constructors
//   class TerminalError extends Error                        "don't retry": logged and counted, no requeue
//   function isTerminalError(err): boolean                   also through `cause` chains
//   function isPanic(err): boolean                           a programming error (TypeError, ReferenceError, ...)
//   interface ReconcileContext { key, reconcileID, signal, log, retries }
//   type Reconciler = (key, ctx) => Action | Promise<Action>
//   interface ReadinessGate { name: string; ready(signal): Promise<void> }   e.g. a Store
//   class Controller
//     new Controller({ name, queue, reconcile, concurrency = 4, waitFor = [],
//                      cacheSyncTimeoutMs = 120_000, shutdownTimeoutMs = 30_000,
//                      clock?, logger?, metrics?, newReconcileID? })
//     run(signal): Promise<void>     waits for the gates, runs workers until signal aborts, then drains
//     activeWorkers(): number
//   const MAX_CONCURRENCY = 64
//
// Outcome → queue (controller-runtime's semantics)
//   Action.awaitChange()       success: forget(key) (backoff reset)          result="success"
//   Action.requeue(ms > 0)     forget(key), addAfter(key, ms)                 result="requeue_after"
//   Action.requeue()           addRateLimited(key)                            result="requeue"
//   throws TerminalError       forget(key), no retry; error logged + counted  result="error"
//   throws anything else       addRateLimited(key)                            result="error"
//   a panic (see isPanic)      as an error, plus reconcile_panics_total and the stack in the log
//
// Guarantees
// - At most `concurrency` reconciles run at once; the queue's in-flight hold
//   means one key never runs twice at once.
// - No worker starts before every gate in `waitFor` is ready; if they are not
//   ready within `cacheSyncTimeoutMs`, run() rejects naming the gates.
// - A synchronous throw, a rejection or a non-Error thrown value never
//   escapes a worker: the worker logs it and goes on.
// - When `signal` aborts, run() stops taking keys, shuts the queue down and
//   waits for in-flight reconciles; after `shutdownTimeoutMs` it aborts their
//   `ctx.signal`, waits one more second at most, and returns anyway.
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { realClock, type Clock } from './clock.ts';
import { nopLogger, type Logger } from './logger.ts';
import type { ControllerMetrics, ReconcileResult, RuntimeMetrics } from './metrics.ts';
import type { WorkQueue } from './queue.ts';

export type Action = { readonly type: 'await_change' } | { readonly type: 'requeue'; readonly afterMs?: number };

/** Constructors for the two reconcile outcomes. */
export const Action = {
  /** Nothing more to do until something changes (success). */
  awaitChange: (): Action => ({ type: 'await_change' }),
  /** Run again: after `afterMs` if given (> 0), otherwise after the key's rate-limit delay. */
  requeue: (afterMs?: number): Action => (afterMs === undefined ? { type: 'requeue' } : { type: 'requeue', afterMs }),
} as const;

/** An error that retrying cannot fix: logged and counted, never requeued. */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/** True when `error` or one of its causes is a TerminalError. */
export function isTerminalError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    if (e instanceof TerminalError) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

/** A programming error rather than an operational one: the JS analogue of a Go panic. */
export function isPanic(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  return (
    error instanceof TypeError ||
    error instanceof ReferenceError ||
    error instanceof RangeError ||
    error instanceof SyntaxError ||
    error instanceof EvalError ||
    error instanceof URIError
  );
}

export interface ReconcileContext {
  key: string;
  /** A fresh UUID per reconcile, for correlating log lines. */
  reconcileID: string;
  /** Aborts when the controller is shutting down past its grace period. */
  signal: AbortSignal;
  /** Bound to controller, key and reconcileID. */
  log: Logger;
  /** How many rate-limited retries this key has had since its last success. */
  retries: number;
}

export type Reconciler = (key: string, ctx: ReconcileContext) => Action | Promise<Action>;

/** Something that must be ready before workers start (a Store satisfies it). */
export interface ReadinessGate {
  readonly name: string;
  ready(signal: AbortSignal): Promise<void>;
}

export const MAX_CONCURRENCY = 64;

export interface ControllerOptions {
  name: string;
  queue: WorkQueue;
  reconcile: Reconciler;
  /** Concurrent reconciles, 1..MAX_CONCURRENCY (default 4). */
  concurrency?: number;
  waitFor?: readonly ReadinessGate[];
  cacheSyncTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
  metrics?: RuntimeMetrics;
  newReconcileID?: () => string;
}

const noMetrics: ControllerMetrics = {
  reconciled: () => {},
  error: () => {},
  terminalError: () => {},
  panic: () => {},
  activeWorkers: () => {},
};

/** Runs reconciles for the keys of one queue. */
export class Controller {
  readonly #name: string;
  readonly #queue: WorkQueue;
  readonly #reconcile: Reconciler;
  readonly #concurrency: number;
  readonly #waitFor: readonly ReadinessGate[];
  readonly #cacheSyncTimeoutMs: number;
  readonly #shutdownTimeoutMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metricsSource: RuntimeMetrics | undefined;
  readonly #newID: () => string;
  #metrics: ControllerMetrics = noMetrics;
  #active = 0;
  #running = false;

  constructor(options: ControllerOptions) {
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(
        `controller ${options.name}: concurrency must be an integer from 1 to ${MAX_CONCURRENCY} (got ${concurrency})`,
      );
    }
    this.#name = options.name;
    this.#queue = options.queue;
    this.#reconcile = options.reconcile;
    this.#concurrency = concurrency;
    this.#waitFor = options.waitFor ?? [];
    this.#cacheSyncTimeoutMs = options.cacheSyncTimeoutMs ?? 120_000;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
    this.#clock = options.clock ?? realClock;
    this.#log = (options.logger ?? nopLogger).child({ controller: options.name });
    this.#metricsSource = options.metrics;
    this.#newID = options.newReconcileID ?? randomUUID;
  }

  /** Reconciles running right now. */
  activeWorkers(): number {
    return this.#active;
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error(`controller ${this.#name} is already running`);
    this.#running = true;
    try {
      if (this.#metricsSource !== undefined) {
        this.#metrics = this.#metricsSource.controller(this.#name, { maxConcurrentReconciles: this.#concurrency });
        this.#metricsSource.observeQueue(this.#name, this.#queue);
      }
      if (!(await this.#waitForGates(signal))) return;
      this.#log.info('starting workers', { workerCount: this.#concurrency });
      const hardStop = new AbortController();
      const workers = Array.from({ length: this.#concurrency }, () => this.#worker(signal, hardStop.signal));
      const all = Promise.all(workers);
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      this.#log.info('stopping: waiting for in-flight reconciles', { inFlight: this.#active });
      this.#queue.shutdown();
      if (!(await this.#within(all, this.#shutdownTimeoutMs))) {
        this.#log.warn('in-flight reconciles did not finish in time; aborting them', {
          inFlight: this.#active,
          shutdownTimeoutMs: this.#shutdownTimeoutMs,
        });
        hardStop.abort(new Error(`controller ${this.#name} shut down`));
        await this.#within(all, 1000);
      }
      this.#log.info('all workers finished');
    } finally {
      this.#running = false;
    }
  }

  /** Resolves true when all gates are ready, false when aborted first; throws on timeout. */
  async #waitForGates(signal: AbortSignal): Promise<boolean> {
    if (this.#waitFor.length === 0) return !signal.aborted;
    const pending = new Set(this.#waitFor.map((g) => g.name));
    const local = new AbortController();
    const onAbort = (): void => local.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const ready = Promise.all(
        this.#waitFor.map(async (gate) => {
          await gate.ready(local.signal);
          pending.delete(gate.name);
        }),
      ).then(() => 'ready' as const);
      const timeout = this.#clock.sleep(this.#cacheSyncTimeoutMs, local.signal).then(() => 'timeout' as const);
      const outcome = await Promise.race([ready, timeout]).catch(() => 'aborted' as const);
      if (outcome === 'ready') return true;
      if (outcome === 'timeout') {
        throw new Error(
          `controller ${this.#name}: timed out after ${this.#cacheSyncTimeoutMs / 1000}s waiting for caches to sync: ${[...pending].join(', ')}; check the API server connection and RBAC list/watch rights`,
        );
      }
      return false;
    } finally {
      signal.removeEventListener('abort', onAbort);
      local.abort();
    }
  }

  async #within(work: Promise<unknown>, ms: number): Promise<boolean> {
    const timer = new AbortController();
    const finished = work.then(() => true);
    const timedOut = this.#clock.sleep(ms, timer.signal).then(
      () => false,
      () => true,
    );
    try {
      return await Promise.race([finished, timedOut]);
    } finally {
      timer.abort();
    }
  }

  async #worker(signal: AbortSignal, hardStop: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.#queue.get(signal);
      if (key === undefined) return;
      try {
        await this.#process(key, hardStop);
      } finally {
        this.#queue.done(key);
      }
      // A reconcile that needs no request (a settled object, read from the
      // caches) never leaves the microtask queue, so a pass over 10 000 of
      // them after a restart held the event loop for over a second: /readyz,
      // watch events and the lease renewal waited behind it. One turn of the
      // loop per item lets them through.
      await yieldToEventLoop();
    }
  }

  async #process(key: string, hardStop: AbortSignal): Promise<void> {
    const reconcileID = this.#newID();
    const log = this.#log.child({ key, reconcileID });
    const ctx: ReconcileContext = {
      key,
      reconcileID,
      signal: hardStop,
      log,
      retries: this.#queue.numRequeues(key),
    };
    const started = this.#clock.now();
    this.#active++;
    this.#metrics.activeWorkers(1);
    let result: ReconcileResult = 'success';
    try {
      const action = await (async () => this.#reconcile(key, ctx))();
      result = this.#apply(key, action);
      log.debug('reconciled', { result });
    } catch (error: unknown) {
      result = 'error';
      this.#metrics.error();
      if (isTerminalError(error)) {
        this.#metrics.terminalError();
        this.#queue.forget(key);
        log.error('reconcile failed with a terminal error; not retrying', { err: error });
      } else {
        const panic = isPanic(error);
        if (panic) this.#metrics.panic();
        this.#queue.addRateLimited(key);
        log.error(panic ? 'observed a panic in reconcile; recovered, will retry' : 'reconcile failed; will retry', {
          err: error instanceof Error ? error : String(error),
          retries: ctx.retries,
        });
      }
    } finally {
      this.#active--;
      this.#metrics.activeWorkers(-1);
      this.#metrics.reconciled(result, (this.#clock.now() - started) / 1000);
    }
  }

  #apply(key: string, action: Action): ReconcileResult {
    if (action.type === 'requeue') {
      if (action.afterMs !== undefined && action.afterMs > 0) {
        this.#queue.forget(key);
        this.#queue.addAfter(key, action.afterMs);
        return 'requeue_after';
      }
      this.#queue.addRateLimited(key);
      return 'requeue';
    }
    this.#queue.forget(key);
    return 'success';
  }
}
