// The reconcile runner on fake time: concurrency cap, one key at a time,
// error/terminal/panic/requeue semantics, readiness gate and shutdown.
import test from 'ava';
import { ItemExponentialRateLimiter } from '../../src/runtime/backoff.ts';
import { FakeClock } from '../support/fake-clock.ts';
import {
  Action,
  Controller,
  TerminalError,
  isPanic,
  isTerminalError,
  type ReconcileContext,
  type Reconciler,
} from '../../src/runtime/controller.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { WorkQueue } from '../../src/runtime/queue.ts';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function setup(
  reconcile: Reconciler,
  options: {
    concurrency?: number;
    shutdownTimeoutMs?: number;
    waitFor?: { name: string; ready(signal: AbortSignal): Promise<void> }[];
    cacheSyncTimeoutMs?: number;
  } = {},
) {
  const clock = new FakeClock();
  const metrics = new RuntimeMetrics();
  const queue = new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter(), metrics: metrics.queue('test') });
  let logText = '';
  const logger = createLogger({ stream: { write: (s: string) => (logText += s) }, level: 'debug', clock });
  const controller = new Controller({ name: 'test', queue, reconcile, clock, metrics, logger, ...options });
  const stop = new AbortController();
  const running = controller.run(stop.signal);
  return {
    clock,
    queue,
    controller,
    metrics,
    stop,
    running,
    logs: () =>
      logText
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function metric(metrics: RuntimeMetrics, series: string): Promise<number | undefined> {
  const line = (await metrics.render()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('no more than `concurrency` reconciles run at once', async (t) => {
  let active = 0;
  let peak = 0;
  const gate = deferred();
  const h = setup(
    async () => {
      active++;
      peak = Math.max(peak, active);
      await gate.promise;
      active--;
      return Action.awaitChange();
    },
    { concurrency: 3 },
  );
  for (let i = 0; i < 10; i++) h.queue.add(`ns/k${i}`);
  await h.clock.flush();
  t.is(active, 3);
  t.is(h.controller.activeWorkers(), 3);
  t.is(await metric(h.metrics, 'controller_runtime_active_workers{controller="test"}'), 3);
  gate.resolve();
  await h.clock.flush();
  t.is(peak, 3);
  t.is(h.queue.len(), 0);
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_total{controller="test",result="success"}'), 10);
  h.stop.abort();
  await h.running;
});

test('a long pass of reconciles that make no request still lets timers, I/O and probes run between them', async (t) => {
  let done = 0;
  const h = setup(() => {
    done++;
    return Action.awaitChange();
  });
  for (let i = 0; i < 2000; i++) h.queue.add(`ns/k${i}`);
  // Without a turn of the event loop between reconciles, this would run only after all 2000.
  const doneWhenLoopTurned = await new Promise<number>((resolve) => setImmediate(() => resolve(done)));
  t.true(doneWhenLoopTurned < 2000, `the event loop turned only after ${doneWhenLoopTurned} reconciles`);
  for (let turns = 0; done < 2000 && turns < 10_000; turns++) await new Promise((resolve) => setImmediate(resolve));
  t.is(done, 2000);
  h.stop.abort();
  await h.running;
});

test('one key never runs twice at once; re-added while running, it runs again after', async (t) => {
  const calls: string[] = [];
  let inFlight = 0;
  const gate = deferred();
  const h = setup(
    async (key) => {
      inFlight++;
      t.is(inFlight, 1, 'overlapping reconciles of one key');
      calls.push(key);
      if (calls.length === 1) await gate.promise;
      inFlight--;
      return Action.awaitChange();
    },
    { concurrency: 4 },
  );
  h.queue.add('ns/a');
  await h.clock.flush();
  h.queue.add('ns/a');
  h.queue.add('ns/a');
  await h.clock.flush();
  t.deepEqual(calls, ['ns/a']);
  gate.resolve();
  await h.clock.flush();
  t.deepEqual(calls, ['ns/a', 'ns/a']);
  h.stop.abort();
  await h.running;
});

test('an error requeues with per-key exponential backoff; success resets it', async (t) => {
  const seen: { at: number; retries: number }[] = [];
  let failures = 3;
  const h = setup(async (_key, ctx) => {
    seen.push({ at: h.clock.now(), retries: ctx.retries });
    if (failures-- > 0) throw new Error('API server said no');
    return Action.awaitChange();
  });
  h.queue.add('ns/a');
  await h.clock.advance(1000);
  t.deepEqual(
    seen.map((s) => s.at),
    [0, 5, 15, 35],
  );
  t.deepEqual(
    seen.map((s) => s.retries),
    [0, 1, 2, 3],
  );
  t.is(h.queue.numRequeues('ns/a'), 0, 'forgotten after success');
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_total{controller="test",result="error"}'), 3);
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_errors_total{controller="test"}'), 3);
  t.is(await metric(h.metrics, 'workqueue_retries_total{name="test",controller="test"}'), 3);
  const errorLog = h.logs().find((l) => l['msg'] === 'reconcile failed; will retry');
  t.is(errorLog?.['key'], 'ns/a');
  t.is(errorLog?.['controller'], 'test');
  t.is(typeof errorLog?.['reconcileID'], 'string');
  h.stop.abort();
  await h.running;
});

test('a TerminalError is logged and counted but never retried', async (t) => {
  let calls = 0;
  const h = setup(async () => {
    calls++;
    throw new Error('wrapped', { cause: new TerminalError('spec.hostname names no node') });
  });
  h.queue.add('ns/a');
  await h.clock.advance(60_000);
  t.is(calls, 1);
  t.is(h.queue.delayed(), 0);
  t.is(await metric(h.metrics, 'controller_runtime_terminal_reconcile_errors_total{controller="test"}'), 1);
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_errors_total{controller="test"}'), 1);
  t.true(h.logs().some((l) => l['level'] === 'error' && String(l['msg']).includes('terminal')));
  h.stop.abort();
  await h.running;
});

test('a panic (TypeError, thrown non-Error, synchronous throw) is recovered, counted and retried', async (t) => {
  const calls = new Map<string, number>();
  const h = setup((key) => {
    const n = (calls.get(key) ?? 0) + 1;
    calls.set(key, n);
    if (key === 'ns/sync') throw new TypeError("Cannot read properties of undefined (reading 'spec')");
    if (n < 3) return Promise.reject('a string, not an Error');
    return Action.awaitChange();
  });
  h.queue.add('ns/sync');
  h.queue.add('ns/other');
  // ns/sync: attempts at 0, 5, 15, 35 ms; ns/other: 0, 5, 15 (then succeeds)
  await h.clock.advance(35);
  t.is(calls.get('ns/sync'), 4);
  t.is(calls.get('ns/other'), 3);
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_panics_total{controller="test"}'), 6);
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_total{controller="test",result="success"}'), 1);
  const panics = h.logs().filter((l) => String(l['msg']).includes('panic'));
  t.regex(
    String((panics.find((l) => l['key'] === 'ns/sync')?.['err'] as { stack?: string } | undefined)?.stack),
    /TypeError: Cannot read properties/,
  );
  t.is(panics.find((l) => l['key'] === 'ns/other')?.['err'], 'a string, not an Error');
  t.is(h.queue.delayed(), 1, 'the panicking key is still retried');
  h.stop.abort();
  await h.running;
});

test('requeue(after) runs the key again after that time and resets its backoff', async (t) => {
  const at: number[] = [];
  const h = setup(async () => {
    at.push(h.clock.now());
    return at.length < 3 ? Action.requeue(30_000) : Action.awaitChange();
  });
  h.queue.add('ns/a');
  await h.clock.advance(100_000);
  t.deepEqual(at, [0, 30_000, 60_000]);
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_total{controller="test",result="requeue_after"}'), 2);
  h.stop.abort();
  await h.running;
});

test('requeue() without a delay is rate limited', async (t) => {
  const at: number[] = [];
  const h = setup(async () => {
    at.push(h.clock.now());
    return at.length < 3 ? Action.requeue() : Action.awaitChange();
  });
  h.queue.add('ns/a');
  await h.clock.advance(1000);
  t.deepEqual(at, [0, 5, 15]);
  t.is(await metric(h.metrics, 'controller_runtime_reconcile_total{controller="test",result="requeue"}'), 2);
  h.stop.abort();
  await h.running;
});

test('workers wait for the readiness gates; a gate that never syncs fails run() naming it', async (t) => {
  const synced = deferred();
  const calls: string[] = [];
  const h = setup(
    async (key) => {
      calls.push(key);
      return Action.awaitChange();
    },
    { waitFor: [{ name: 'tracejobs', ready: () => synced.promise }], cacheSyncTimeoutMs: 60_000 },
  );
  h.queue.add('ns/a');
  await h.clock.advance(1000);
  t.deepEqual(calls, []);
  synced.resolve();
  await h.clock.flush();
  t.deepEqual(calls, ['ns/a']);
  h.stop.abort();
  await h.running;

  const never = setup(async () => Action.awaitChange(), {
    waitFor: [
      {
        name: 'jobs',
        ready: (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      },
    ],
    cacheSyncTimeoutMs: 5000,
  });
  const failed = t.throwsAsync(never.running, { message: /timed out after 5s waiting for caches to sync: jobs/ });
  await never.clock.advance(5000);
  await failed;
});

test('stopping waits for in-flight reconciles, then returns; nothing new starts', async (t) => {
  const gate = deferred();
  const started: string[] = [];
  const h = setup(
    async (key) => {
      started.push(key);
      await gate.promise;
      return Action.awaitChange();
    },
    { concurrency: 1 },
  );
  h.queue.add('ns/a');
  h.queue.add('ns/b');
  await h.clock.flush();
  let stopped = false;
  void h.running.then(() => (stopped = true));
  h.stop.abort();
  await h.clock.flush();
  t.false(stopped, 'still waiting for ns/a');
  gate.resolve();
  await h.running;
  t.deepEqual(started, ['ns/a']);
  t.true(h.queue.isShutDown());
});

test('a reconcile that ignores shutdown gets its signal aborted after shutdownTimeoutMs', async (t) => {
  let ctxSignal: AbortSignal | undefined;
  const h = setup(
    (_key, ctx: ReconcileContext) => {
      ctxSignal = ctx.signal;
      return new Promise<Action>((resolve) =>
        ctx.signal.addEventListener('abort', () => resolve(Action.awaitChange())),
      );
    },
    { shutdownTimeoutMs: 10_000 },
  );
  h.queue.add('ns/stuck');
  await h.clock.flush();
  h.stop.abort();
  await h.clock.advance(9_999);
  t.false(ctxSignal?.aborted);
  await h.clock.advance(1);
  await h.running;
  t.true(ctxSignal?.aborted);
});

test('every reconcile gets its own reconcileID', async (t) => {
  const ids = new Set<string>();
  const h = setup(async (_key, ctx) => {
    ids.add(ctx.reconcileID);
    return Action.awaitChange();
  });
  for (let i = 0; i < 5; i++) h.queue.add(`ns/${i}`);
  await h.clock.flush();
  t.is(ids.size, 5);
  for (const id of ids) t.regex(id, /^[0-9a-f-]{36}$/);
  h.stop.abort();
  await h.running;
});

test('concurrency outside 1..64 is refused; helpers classify errors', (t) => {
  const queue = new WorkQueue();
  t.throws(() => new Controller({ name: 'x', queue, reconcile: () => Action.awaitChange(), concurrency: 0 }), {
    message: /1 to 64/,
  });
  t.throws(() => new Controller({ name: 'x', queue, reconcile: () => Action.awaitChange(), concurrency: 65 }), {
    instanceOf: RangeError,
  });
  t.true(isTerminalError(new TerminalError('x')));
  t.false(isTerminalError(new Error('x')));
  t.true(isPanic(new ReferenceError('x')));
  t.true(isPanic(42));
  t.false(isPanic(new Error('x')));
  t.deepEqual(Action.requeue(5), { type: 'requeue', afterMs: 5 });
});
