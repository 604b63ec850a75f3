// Backoff and rate limiters, and the FakeClock they are tested with.
import test from 'ava';
import {
  BucketRateLimiter,
  ExponentialBackoff,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from '../../src/runtime/backoff.ts';
import { realClock } from '../../src/runtime/clock.ts';
import { FakeClock } from '../support/fake-clock.ts';

test('exponential backoff doubles up to the cap and resets', (t) => {
  const b = new ExponentialBackoff({ initialMs: 100, maxMs: 1000 });
  t.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
  b.reset();
  t.is(b.next(), 100);
});

test('jitter scales each delay into [1 - jitter, 1] of the base, never above the cap', (t) => {
  const low = new ExponentialBackoff({ initialMs: 100, maxMs: 400, jitter: 0.5, random: () => 0.999999 });
  t.deepEqual([low.next(), low.next(), low.next(), low.next()], [50, 100, 200, 200]);
  const high = new ExponentialBackoff({ initialMs: 100, maxMs: 400, jitter: 0.5, random: () => 0 });
  t.deepEqual([high.next(), high.next(), high.next(), high.next()], [100, 200, 400, 400]);
});

test('invalid backoff settings are refused with the reason', (t) => {
  t.throws(() => new ExponentialBackoff({ initialMs: 0, maxMs: 10 }), { instanceOf: RangeError });
  t.throws(() => new ExponentialBackoff({ initialMs: 10, maxMs: 5 }), { instanceOf: RangeError });
  t.throws(() => new ExponentialBackoff({ initialMs: 1, maxMs: 5, jitter: 2 }), { message: /jitter/ });
});

test('the per-item limiter goes 5 ms → 1000 s per key and forget resets only that key', (t) => {
  const r = new ItemExponentialRateLimiter();
  t.deepEqual([r.when('a'), r.when('a'), r.when('a'), r.when('b')], [5, 10, 20, 5]);
  t.is(r.retries('a'), 3);
  for (let i = 0; i < 40; i++) r.when('a');
  t.is(r.when('a'), 1_000_000);
  r.forget('a');
  t.is(r.retries('a'), 0);
  t.is(r.when('a'), 5);
  t.is(r.when('b'), 10);
});

test('the bucket limiter lets a burst through, then spaces items at qps', (t) => {
  const clock = new FakeClock();
  const r = new BucketRateLimiter(clock, { qps: 10, burst: 3 });
  t.deepEqual([r.when('x'), r.when('y'), r.when('z')], [0, 0, 0]);
  t.is(r.when('w'), 100);
  t.is(r.when('v'), 200);
});

test('the bucket refills with time', async (t) => {
  const clock = new FakeClock();
  const r = new BucketRateLimiter(clock, { qps: 10, burst: 1 });
  t.is(r.when('a'), 0);
  t.is(r.when('a'), 100);
  await clock.advance(1000);
  t.is(r.when('a'), 0);
});

test('controller-runtime default: the larger of the two delays', (t) => {
  const clock = new FakeClock();
  const r = defaultControllerRateLimiter(clock);
  t.is(r.when('k'), 5);
  t.is(r.when('k'), 10);
  for (let i = 0; i < 98; i++) r.when(`other-${i}`);
  // the 101st item overall waits for a token (100 ms at 10 qps) even though its own backoff is 5 ms
  t.is(r.when('fresh'), 100);
  t.is(r.retries('k'), 2);
  const max = new MaxOfRateLimiter(
    new ItemExponentialRateLimiter({ baseMs: 1 }),
    new ItemExponentialRateLimiter({ baseMs: 3 }),
  );
  t.is(max.when('a'), 3);
  max.forget('a');
  t.is(max.when('a'), 3);
});

test('FakeClock wakes sleepers in due order, including ones scheduled during the advance', async (t) => {
  const clock = new FakeClock(1000);
  const woke: string[] = [];
  void clock.sleep(30).then(() => woke.push(`a@${clock.now()}`));
  void clock.sleep(10).then(async () => {
    woke.push(`b@${clock.now()}`);
    await clock.sleep(5);
    woke.push(`c@${clock.now()}`);
  });
  await clock.advance(29);
  t.deepEqual(woke, ['b@1010', 'c@1015']);
  await clock.advance(1);
  t.deepEqual(woke, ['b@1010', 'c@1015', 'a@1030']);
  t.is(clock.now(), 1030);
  t.is(clock.pending(), 0);
});

test('sleep rejects with the abort reason, at once when already aborted', async (t) => {
  const clock = new FakeClock();
  const ac = new AbortController();
  const pending = clock.sleep(1000, ac.signal);
  ac.abort(new Error('stop'));
  await t.throwsAsync(pending, { message: 'stop' });
  t.is(clock.pending(), 0);
  await t.throwsAsync(clock.sleep(1, ac.signal), { message: 'stop' });
  await t.throwsAsync(realClock.sleep(10_000, AbortSignal.abort(new Error('now'))), { message: 'now' });
  const real = new AbortController();
  const sleeping = realClock.sleep(10_000, real.signal);
  real.abort(new Error('later'));
  await t.throwsAsync(sleeping, { message: 'later' });
});

test('runAll drains every sleeper and refuses a loop that never stops sleeping', async (t) => {
  const clock = new FakeClock();
  let n = 0;
  void (async () => {
    for (let i = 0; i < 3; i++) {
      await clock.sleep(100);
      n++;
    }
  })();
  await clock.runAll();
  t.is(n, 3);
  t.is(clock.now(), 300);
  const stop = new AbortController();
  void (async () => {
    for (;;) await clock.sleep(1, stop.signal);
  })().catch(() => {});
  await t.throwsAsync(clock.runAll(50), { message: /still 1 sleepers/ });
  stop.abort();
});
