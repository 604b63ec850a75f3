// Periodic resync: every so often, re-enqueue every key a store holds, so a
// level-triggered reconciler gets to look at each object even when nothing
// changed (controller-runtime's SyncPeriod).
//
// API
//   function runResync({ everyMs, keys, enqueue, jitter = 0.1, clock?, random?, logger? }, signal): Promise<void>
//     keys: () => Iterable<string>   read at each tick (e.g. () => store.keys())
//     enqueue: (key) => void         e.g. (k) => queue.add(k)
//
// Guarantees: the first resync happens one period after the start (the
// initial list already enqueued everything); each period is everyMs scaled
// by a uniform factor in [1, 1 + jitter] so replicas and controllers do not
// tick together; resolves when signal aborts, never rejects.
import { realClock, type Clock } from './clock.ts';
import { nopLogger, type Logger } from './logger.ts';

export interface ResyncOptions {
  everyMs: number;
  keys: () => Iterable<string>;
  enqueue: (key: string) => void;
  jitter?: number;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

export async function runResync(options: ResyncOptions, signal: AbortSignal): Promise<void> {
  if (!(options.everyMs > 0)) throw new RangeError(`resync period must be positive (got ${options.everyMs})`);
  const clock = options.clock ?? realClock;
  const random = options.random ?? Math.random;
  const jitter = options.jitter ?? 0.1;
  const log = options.logger ?? nopLogger;
  while (!signal.aborted) {
    try {
      await clock.sleep(options.everyMs * (1 + jitter * random()), signal);
    } catch {
      return;
    }
    let n = 0;
    try {
      for (const key of options.keys()) {
        options.enqueue(key);
        n++;
      }
    } catch (error: unknown) {
      log.error('resync failed to enqueue keys', { err: error });
    }
    log.debug('resync enqueued keys', { keys: n });
  }
}
