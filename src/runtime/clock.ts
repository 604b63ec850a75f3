// Injected time. Every runtime module that waits or measures time takes a
// `Clock`, so queue, backoff, watcher-watchdog, controller and leader-election
// tests run on a manual clock (test/support/fake-clock.ts) instead of wall time.
//
// API
//   interface Clock { now(): number; sleep(ms, signal?): Promise<void> }
//   const realClock: Clock                  wall time (Date.now, setTimeout)
//   function abortError(signal): unknown    the reason a sleep rejects with
//
// Guarantees
// - `sleep` resolves after at least `ms` of the clock's time, or rejects with
//   `signal.reason` as soon as `signal` aborts (at once if already aborted),
//   like `timers/promises.setTimeout`. A loop that forgets to check its
//   signal still ends, because the next sleep throws.

/** Milliseconds-based time source and sleeper. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms` milliseconds; rejects with `signal.reason` if `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The reason to reject with when `signal` aborted (its reason, or an AbortError). */
export function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Wall-clock time: `Date.now()` and `setTimeout`. */
export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortError(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortError(signal as AbortSignal));
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
