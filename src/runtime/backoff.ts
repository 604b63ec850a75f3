// Backoff and per-key rate limiting, pure and injectable (no timers here: the
// caller sleeps on its Clock for the returned number of milliseconds).
//
// API
//   interface Backoff { next(): number; reset(): void }
//   class ExponentialBackoff implements Backoff
//     new ExponentialBackoff({ initialMs, maxMs, factor = 2, jitter = 0, random = Math.random })
//   interface RateLimiter { when(key): number; forget(key): void; retries(key): number }
//   class ItemExponentialRateLimiter implements RateLimiter   base·2^failures, capped (5 ms → 1000 s)
//   class BucketRateLimiter implements RateLimiter            token bucket shared by all keys (10 qps, burst 100)
//   class MaxOfRateLimiter implements RateLimiter             the longest delay of several limiters
//   function defaultControllerRateLimiter(clock): RateLimiter controller-runtime's default: MaxOf(item 5ms..1000s, bucket 10qps/100)
//
// Guarantees
// - `ExponentialBackoff.next()` returns initial, initial·factor, ... capped at
//   maxMs; with `jitter = j` each delay is scaled by a uniform factor in
//   [1 - j, 1] (never above the cap, never negative). `reset()` restarts.
// - `ItemExponentialRateLimiter.when(key)` counts failures per key:
//   the n-th call (n from 0) returns min(base·2^n, max); `forget(key)`
//   resets that key only.
// - `BucketRateLimiter.when(key)` reserves one token and returns how long to
//   wait for it, so a burst beyond `burst` items is spread at `qps`.
import type { Clock } from './clock.ts';

/** A stateful sequence of delays. */
export interface Backoff {
  /** The next delay in milliseconds. */
  next(): number;
  /** Back to the first delay. */
  reset(): void;
}

export interface ExponentialBackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth factor per step (default 2). */
  factor?: number;
  /** Fraction in [0, 1]: each delay is scaled by a uniform factor in [1 - jitter, 1] (default 0). */
  jitter?: number;
  /** Source of randomness in [0, 1) (default Math.random), injectable for tests. */
  random?: () => number;
}

/** Exponential backoff with optional jitter. */
export class ExponentialBackoff implements Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #current: number;

  constructor(options: ExponentialBackoffOptions) {
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs)) {
      throw new RangeError(
        `ExponentialBackoff needs 0 < initialMs <= maxMs (got ${options.initialMs}, ${options.maxMs})`,
      );
    }
    const jitter = options.jitter ?? 0;
    if (jitter < 0 || jitter > 1) throw new RangeError(`ExponentialBackoff jitter must be in [0, 1] (got ${jitter})`);
    this.#initial = options.initialMs;
    this.#max = options.maxMs;
    this.#factor = options.factor ?? 2;
    this.#jitter = jitter;
    this.#random = options.random ?? Math.random;
    this.#current = this.#initial;
  }

  next(): number {
    const base = this.#current;
    this.#current = Math.min(this.#max, this.#current * this.#factor);
    if (this.#jitter === 0) return base;
    return Math.max(0, Math.round(base * (1 - this.#jitter * this.#random())));
  }

  reset(): void {
    this.#current = this.#initial;
  }
}

/** Decides how long an item must wait before it is retried. */
export interface RateLimiter {
  /** Delay in milliseconds before `key` may be processed again; records one more retry of it. */
  when(key: string): number;
  /** Stops tracking `key` (its next failure starts from the first delay again). */
  forget(key: string): void;
  /** How many times `key` has been through `when` since it was last forgotten. */
  retries(key: string): number;
}

/** Per-key exponential delay: base·2^failures, capped at max (controller-runtime: 5 ms → 1000 s). */
export class ItemExponentialRateLimiter implements RateLimiter {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #failures = new Map<string, number>();

  constructor(options: { baseMs?: number; maxMs?: number } = {}) {
    this.#baseMs = options.baseMs ?? 5;
    this.#maxMs = options.maxMs ?? 1_000_000;
  }

  when(key: string): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    // 2^n overflows to Infinity for large n, which min() caps.
    return Math.min(this.#maxMs, this.#baseMs * 2 ** n);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

/** A token bucket shared by all keys: the overall retry rate stays under `qps` after a burst of `burst`. */
export class BucketRateLimiter implements RateLimiter {
  readonly #clock: Clock;
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(clock: Clock, options: { qps?: number; burst?: number } = {}) {
    this.#clock = clock;
    this.#qps = options.qps ?? 10;
    this.#burst = options.burst ?? 100;
    if (!(this.#qps > 0) || !(this.#burst >= 1)) throw new RangeError('BucketRateLimiter needs qps > 0 and burst >= 1');
    this.#tokens = this.#burst;
    this.#last = clock.now();
  }

  when(_key: string): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#qps) * 1000);
  }

  forget(_key: string): void {}

  retries(_key: string): number {
    return 0;
  }
}

/** The longest delay of its limiters; retries are those of the first limiter that counts them. */
export class MaxOfRateLimiter implements RateLimiter {
  readonly #limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    if (limiters.length === 0) throw new RangeError('MaxOfRateLimiter needs at least one limiter');
    this.#limiters = limiters;
  }

  when(key: string): number {
    let delay = 0;
    for (const limiter of this.#limiters) delay = Math.max(delay, limiter.when(key));
    return delay;
  }

  forget(key: string): void {
    for (const limiter of this.#limiters) limiter.forget(key);
  }

  retries(key: string): number {
    let retries = 0;
    for (const limiter of this.#limiters) retries = Math.max(retries, limiter.retries(key));
    return retries;
  }
}

/** controller-runtime's default: per item 5 ms → 1000 s exponential, overall 10 qps with a burst of 100. */
export function defaultControllerRateLimiter(clock: Clock): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialRateLimiter({ baseMs: 5, maxMs: 1_000_000 }),
    new BucketRateLimiter(clock, { qps: 10, burst: 100 }),
  );
}
