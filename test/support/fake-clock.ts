// A manually driven Clock for tests (the runtime takes a Clock wherever it
// waits or measures time).
//
// Guarantees: `advance` fires sleepers in due order (ties in creation order)
// and lets promise callbacks run between them, so code that sleeps again
// inside the advanced window is woken within the same `advance` call.
import { abortError, type Clock } from '../../src/runtime/clock.ts';

interface Sleeper {
  due: number;
  seq: number;
  resolve: () => void;
}

/** Manually driven clock for tests. Time only moves in `advance`/`runAll`. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #sleepers: Sleeper[] = [];

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortError(signal));
        return;
      }
      const sleeper: Sleeper = {
        due: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(abortError(signal as AbortSignal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#sleepers.push(sleeper);
    });
  }

  /** Number of sleepers waiting. */
  pending(): number {
    return this.#sleepers.length;
  }

  /** Due time of the earliest sleeper, if any. */
  nextDueMs(): number | undefined {
    return this.#earliest()?.due;
  }

  /** Lets queued promise callbacks and immediates run without moving time. */
  async flush(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Moves time forward by `ms`, waking every sleeper that becomes due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + Math.max(0, ms);
    await this.flush();
    for (;;) {
      const next = this.#earliest();
      if (next === undefined || next.due > target) break;
      this.#now = Math.max(this.#now, next.due);
      this.#sleepers = this.#sleepers.filter((s) => s !== next);
      next.resolve();
      await this.flush();
    }
    this.#now = target;
    await this.flush();
  }

  /** Advances to each pending sleeper in turn until none is left (or `maxSteps` fired). */
  async runAll(maxSteps = 10_000): Promise<void> {
    for (let i = 0; i < maxSteps; i++) {
      await this.flush();
      const next = this.#earliest();
      if (next === undefined) return;
      await this.advance(next.due - this.#now);
    }
    throw new Error(
      `FakeClock.runAll: still ${this.#sleepers.length} sleepers after ${maxSteps} steps (a loop that always sleeps?)`,
    );
  }

  #earliest(): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.#sleepers) {
      if (best === undefined || s.due < best.due || (s.due === best.due && s.seq < best.seq)) best = s;
    }
    return best;
  }
}
