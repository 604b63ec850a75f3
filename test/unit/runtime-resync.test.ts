// Periodic resync on fake time.
import test from 'ava';
import { FakeClock } from '../support/fake-clock.ts';
import { runResync } from '../../src/runtime/resync.ts';

test('every period (with jitter) every key is enqueued again, until aborted', async (t) => {
  const clock = new FakeClock();
  const enqueued: string[] = [];
  let keys = ['ns/a', 'ns/b'];
  const stop = new AbortController();
  const running = runResync(
    {
      everyMs: 60_000,
      jitter: 0.5,
      random: () => 0.5,
      clock,
      keys: () => keys,
      enqueue: (k) => enqueued.push(`${clock.now()} ${k}`),
    },
    stop.signal,
  );
  await clock.advance(74_999);
  t.deepEqual(enqueued, [], 'nothing before the first period (75 s with this jitter)');
  await clock.advance(1);
  t.deepEqual(enqueued, ['75000 ns/a', '75000 ns/b']);
  keys = ['ns/c'];
  await clock.advance(75_000);
  t.deepEqual(enqueued.slice(2), ['150000 ns/c']);
  stop.abort();
  await running;
  t.is(clock.pending(), 0);
});

test('a failing key source is logged and the loop goes on; a bad period is refused', async (t) => {
  const clock = new FakeClock();
  const errors: string[] = [];
  let calls = 0;
  const stop = new AbortController();
  const logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (m: string) => errors.push(m),
    child() {
      return this;
    },
    enabled: () => true,
  };
  const running = runResync(
    {
      everyMs: 1000,
      jitter: 0,
      clock,
      logger,
      enqueue: () => {},
      keys: () => {
        calls++;
        throw new Error('store gone');
      },
    },
    stop.signal,
  );
  await clock.advance(3000);
  t.is(calls, 3);
  t.is(errors.length, 3);
  stop.abort();
  await running;
  await t.throwsAsync(runResync({ everyMs: 0, clock, keys: () => [], enqueue: () => {} }, stop.signal), {
    instanceOf: RangeError,
  });
});
