// The keyed work queue on fake time: dedup, in-flight hold, earliest-wins
// scheduling, rate limiting and shutdown, and its metric hooks.
import test from 'ava';
import { ItemExponentialRateLimiter } from '../../src/runtime/backoff.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { WorkQueue, type QueueMetricsSink } from '../../src/runtime/queue.ts';

/** The next `n` keys the queue hands out, in order. */
async function takeAll(queue: WorkQueue, n: number): Promise<(string | undefined)[]> {
  const keys = [];
  for (let i = 0; i < n; i++) keys.push(await queue.get());
  return keys;
}

function setup(): { clock: FakeClock; queue: WorkQueue } {
  const clock = new FakeClock();
  return {
    clock,
    queue: new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter({ baseMs: 5, maxMs: 1_000_000 }) }),
  };
}

test('a key added many times while waiting is handed out once, in FIFO order with others', async (t) => {
  const { queue } = setup();
  queue.add('ns/a');
  queue.add('ns/b');
  queue.add('ns/a');
  queue.add('ns/a');
  t.is(queue.len(), 2);
  t.is(await queue.get(), 'ns/a');
  t.is(await queue.get(), 'ns/b');
  t.is(queue.len(), 0);
});

test('keys of a higher priority are handed out first, FIFO within one priority', async (t) => {
  const urgent = new Set(['ns/new-1', 'ns/new-2']);
  const queue = new WorkQueue({ priorityOf: (key) => (urgent.has(key) ? 1 : 0) });
  queue.add('ns/old-1');
  queue.add('ns/new-1');
  queue.add('ns/old-2');
  queue.add('ns/new-2');
  t.is(queue.len(), 4);
  t.deepEqual(await takeAll(queue, 4), ['ns/new-1', 'ns/new-2', 'ns/old-1', 'ns/old-2']);
  t.is(queue.len(), 0);
});

test('a due key added again with a higher priority moves up, never down', async (t) => {
  const urgent = new Set(['ns/new']);
  const queue = new WorkQueue({ priorityOf: (key) => (urgent.has(key) ? 1 : 0) });
  queue.add('ns/old');
  queue.add('ns/stopped');
  queue.add('ns/new');
  urgent.add('ns/stopped');
  queue.add('ns/stopped');
  urgent.delete('ns/new');
  queue.add('ns/new');
  t.is(queue.len(), 3);
  t.deepEqual(await takeAll(queue, 3), ['ns/new', 'ns/stopped', 'ns/old']);
  queue.done('ns/new');
  queue.done('ns/stopped');
  await queue.idle(1);
  t.is(queue.processing(), 1, 'only the follow-up is still in processing');
});

test('idle(p) waits while a key of priority p or more is due or in processing', async (t) => {
  const queue = new WorkQueue({ priorityOf: (key) => (key.startsWith('urgent') ? 1 : 0) });
  await queue.idle(1);
  queue.add('calm');
  await queue.idle(1);
  t.pass('a lower-priority key does not hold idle(1)');
  queue.add('urgent-a');
  let idle = false;
  const waiting = queue.idle(1).then(() => (idle = true));
  const first = await queue.get();
  t.is(first, 'urgent-a');
  await Promise.resolve();
  t.false(idle, 'still in processing');
  queue.add('urgent-a');
  queue.done('urgent-a');
  await Promise.resolve();
  t.false(idle, 'added again while in processing: due again');
  t.is(await queue.get(), 'urgent-a');
  queue.done('urgent-a');
  await waiting;
  t.true(idle);
  t.is(queue.len(), 1, 'the calm key is still due');
});

test('shutdown releases idle waiters', async (t) => {
  const queue = new WorkQueue({ priorityOf: () => 1 });
  queue.add('k');
  const waiting = queue.idle(1);
  queue.shutdown();
  await waiting;
  t.pass();
});

test('a key being processed is not handed out again; re-added, it comes back after done', async (t) => {
  const { queue, clock } = setup();
  queue.add('k');
  t.is(await queue.get(), 'k');
  queue.add('k');
  queue.add('k');
  t.is(queue.len(), 0, 'held while in flight');
  let second: string | undefined = 'not yet';
  const waiting = queue.get().then((k) => (second = k));
  await clock.flush();
  t.is(second, 'not yet');
  queue.done('k');
  await waiting;
  t.is(second, 'k');
  queue.done('k');
  t.is(queue.len(), 0, 'processed once more, not twice');
  t.is(queue.processing(), 0);
});

test('a waiting get is woken by add, and resolves undefined when its signal aborts', async (t) => {
  const { queue } = setup();
  const got = queue.get();
  queue.add('x');
  t.is(await got, 'x');
  const ac = new AbortController();
  const idle = queue.get(ac.signal);
  ac.abort();
  t.is(await idle, undefined);
  queue.add('y');
  t.is(await queue.get(), 'y', 'the aborted getter did not swallow the key');
});

test('addAfter makes a key due later; the earliest schedule wins', async (t) => {
  const { queue, clock } = setup();
  queue.addAfter('k', 1000);
  queue.addAfter('k', 5000);
  t.is(queue.delayed(), 1);
  await clock.advance(999);
  t.is(queue.len(), 0);
  await clock.advance(1);
  t.is(queue.len(), 1);
  t.is(await queue.get(), 'k');
  queue.done('k');
  await clock.advance(10_000);
  t.is(queue.len(), 0, 'the later schedule was dropped');
});

test('an earlier addAfter replaces a later one', async (t) => {
  const { queue, clock } = setup();
  queue.addAfter('k', 5000);
  queue.addAfter('k', 100);
  await clock.advance(100);
  t.is(queue.len(), 1);
  t.is(await queue.get(), 'k');
  queue.done('k');
  await clock.advance(10_000);
  t.is(queue.len(), 0);
  t.is(clock.pending(), 0, 'the replaced timer was cancelled');
});

test('add supersedes a pending schedule; addAfter on a due key does nothing', async (t) => {
  const { queue, clock } = setup();
  queue.addAfter('k', 1000);
  queue.add('k');
  t.is(queue.delayed(), 0);
  t.is(queue.len(), 1);
  queue.addAfter('k', 50);
  t.is(queue.delayed(), 0, 'already due');
  t.is(await queue.get(), 'k');
  queue.done('k');
  await clock.advance(2000);
  t.is(queue.len(), 0);
});

test('addAfter with zero or negative delay adds at once', (t) => {
  const { queue } = setup();
  queue.addAfter('a', 0);
  queue.addAfter('b', -5);
  t.is(queue.len(), 2);
});

test('addRateLimited backs off exponentially per key until forget', async (t) => {
  const { queue, clock } = setup();
  const dueAfter = async (key: string): Promise<number> => {
    const start = clock.now();
    queue.addRateLimited(key);
    const next = clock.nextDueMs();
    t.not(next, undefined);
    await clock.advance((next ?? 0) - start);
    t.is(await queue.get(), key);
    queue.done(key);
    return clock.now() - start;
  };
  t.is(await dueAfter('k'), 5);
  t.is(await dueAfter('k'), 10);
  t.is(await dueAfter('k'), 20);
  t.is(queue.numRequeues('k'), 3);
  queue.forget('k');
  t.is(queue.numRequeues('k'), 0);
  t.is(await dueAfter('k'), 5);
});

test('a key scheduled while in flight becomes due after its delay, not before done', async (t) => {
  const { queue, clock } = setup();
  queue.add('k');
  t.is(await queue.get(), 'k');
  queue.addAfter('k', 100);
  await clock.advance(100);
  t.is(queue.len(), 0, 'still in flight');
  queue.done('k');
  t.is(queue.len(), 1);
});

test('shutdown wakes every getter with undefined, drops scheduled keys and ignores adds', async (t) => {
  const { queue, clock } = setup();
  const g1 = queue.get();
  const g2 = queue.get();
  queue.addAfter('later', 100);
  queue.shutdown();
  t.deepEqual(await Promise.all([g1, g2]), [undefined, undefined]);
  queue.add('x');
  queue.addRateLimited('y');
  t.is(queue.len(), 0);
  t.is(await queue.get(), undefined);
  await clock.advance(1000);
  t.is(queue.len(), 0);
  t.true(queue.isShutDown());
  t.is(clock.pending(), 0);
});

test('keys in flight at shutdown can still be marked done', async (t) => {
  const { queue } = setup();
  queue.add('k');
  t.is(await queue.get(), 'k');
  queue.add('k');
  queue.shutdown();
  queue.done('k');
  t.is(queue.processing(), 0);
  t.is(queue.len(), 0);
});

test('metric hooks see depth, adds, latency, work duration and retries', async (t) => {
  const clock = new FakeClock();
  const seen = { depth: [] as number[], adds: 0, latency: [] as number[], work: [] as number[], retries: 0 };
  const sink: QueueMetricsSink = {
    depth: (n) => seen.depth.push(n),
    added: () => seen.adds++,
    queueLatency: (s) => seen.latency.push(s),
    workDuration: (s) => seen.work.push(s),
    retried: () => seen.retries++,
  };
  const queue = new WorkQueue({ clock, metrics: sink, rateLimiter: new ItemExponentialRateLimiter() });
  queue.add('a');
  queue.add('a');
  queue.add('b');
  await clock.advance(250);
  const key = await queue.get();
  t.is(key, 'a');
  await clock.advance(1500);
  t.is(queue.unfinishedWorkSeconds(), 1.5);
  t.is(queue.longestRunningProcessorSeconds(), 1.5);
  queue.done('a');
  queue.addRateLimited('a');
  t.is(seen.adds, 2);
  t.deepEqual(seen.latency, [0.25]);
  t.deepEqual(seen.work, [1.5]);
  t.is(seen.retries, 1);
  t.deepEqual(seen.depth, [1, 2, 1]);
  t.is(queue.unfinishedWorkSeconds(), 0);
});
