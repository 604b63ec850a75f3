// The Event recorder never makes a reconcile wait: event() returns at once,
// at most two Events are in flight, a full queue drops instead of
// growing, with waitTurn nothing is written until it resolves, and close()
// ends within its grace. A fake client because the point is the recorder's queueing; the
// Events' shape and the count patch run against the real API server in
// test/integration/deploy-rbac.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { KubeEventRecorder, MAX_QUEUED_EVENTS, type EventClient } from '../../src/controller/events.ts';
import { ApiError } from '../../src/runtime/api-error.ts';
import { nopLogger } from '../../src/runtime/logger.ts';
import { recordingLogger, type LogLine } from '../support/reconciler-fakes.ts';
import type { TraceJob } from '../../src/tracejob/index.ts';

function traceJob(name: string): TraceJob {
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}` },
    spec: { hostname: 'n', program: 'BEGIN {}' },
  } as unknown as TraceJob;
}

function slowClient(): {
  client: EventClient;
  inFlight: () => number;
  max: () => number;
  release: () => void;
  created: string[];
} {
  let inFlight = 0;
  let max = 0;
  const waiting: (() => void)[] = [];
  const created: string[] = [];
  const client = {
    create: async (_path: string, body: unknown) => {
      inFlight++;
      max = Math.max(max, inFlight);
      await new Promise<void>((resolve) => waiting.push(resolve));
      inFlight--;
      created.push((body as { reason: string }).reason);
      return body;
    },
    patch: async () => ({}),
  } as unknown as EventClient;
  return {
    client,
    inFlight: () => inFlight,
    max: () => max,
    release: () => {
      for (const r of waiting.splice(0)) r();
    },
    created,
  };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

test('event() returns at once; two senders drain the queue in order; a full queue drops', async (t) => {
  const c = slowClient();
  const recorder = new KubeEventRecorder({ client: c.client, logger: nopLogger, instance: 'test' });
  for (let i = 0; i < MAX_QUEUED_EVENTS + 10; i++) recorder.event(traceJob(`t${i}`), 'Normal', `R${i}`, 'm');
  await flush();
  t.is(c.inFlight(), 2, 'two Events in flight, however many are queued');
  t.is(recorder.pending(), MAX_QUEUED_EVENTS + 2, 'the queue is bounded: the rest were dropped');
  for (let i = 0; i < MAX_QUEUED_EVENTS && recorder.pending() > 0; i++) {
    c.release();
    await flush();
  }
  t.is(recorder.pending(), 0);
  t.is(c.max(), 2);
  t.deepEqual(c.created.slice(0, 3), ['R0', 'R1', 'R2']);
  t.is(c.created.length, MAX_QUEUED_EVENTS + 2);
});

test('with waitTurn, Events wait for their turn and keep the time they happened', async (t) => {
  const written: { reason: string; firstTimestamp: Date }[] = [];
  const client = {
    create: async (_path: string, body: unknown) => {
      written.push(body as { reason: string; firstTimestamp: Date });
      return body;
    },
    patch: async () => ({}),
  } as unknown as EventClient;
  let clock = 1_000;
  let giveTurn: () => void = () => {};
  let turn = new Promise<void>((resolve) => (giveTurn = resolve));
  const recorder = new KubeEventRecorder({
    client,
    logger: nopLogger,
    instance: 'test',
    now: () => new Date(clock),
    waitTurn: () => turn,
  });
  recorder.event(traceJob('a'), 'Normal', 'Created', 'm');
  clock = 5_000;
  await flush();
  t.is(written.length, 0, 'held until its turn');
  t.is(recorder.pending(), 1);
  giveTurn();
  for (let i = 0; i < 10 && written.length === 0; i++) await flush();
  t.deepEqual(
    written.map((e) => [e.reason, e.firstTimestamp.getTime()]),
    [['Created', 1_000]],
  );
  turn = Promise.resolve();
  recorder.event(traceJob('b'), 'Normal', 'Created', 'm');
  for (let i = 0; i < 10 && written.length < 2; i++) await flush();
  t.is(written.length, 2);
});

test('close() writes what is queued without waiting for a turn, for at most its grace, then drops the rest', async (t) => {
  const c = slowClient();
  const lines: LogLine[] = [];
  const recorder = new KubeEventRecorder({
    client: c.client,
    logger: recordingLogger(lines),
    instance: 'test',
    waitTurn: () => new Promise<void>(() => {}),
  });
  for (let i = 0; i < 5; i++) recorder.event(traceJob(`t${i}`), 'Normal', `R${i}`, 'm');
  await flush();
  t.is(c.inFlight(), 0, 'no turn yet: nothing in flight');
  const closing = recorder.close(200);
  for (let i = 0; i < 10 && c.inFlight() < 2; i++) await flush();
  t.is(c.inFlight(), 2, 'closing: the queue is written without its turn');
  c.release();
  for (let i = 0; i < 10 && c.created.length < 2; i++) await flush();
  const started = performance.now();
  await closing;
  t.true(performance.now() - started < 1_000, 'the grace ends the wait though the API server never answers');
  t.deepEqual(c.created, ['R0', 'R1']);
  const warning = lines.find((l) => l.msg.startsWith('shutting down with Events unwritten'));
  t.like(warning?.fields, { dropped: 1, inFlight: 2 });
  recorder.event(traceJob('late'), 'Normal', 'Late', 'm');
  c.release();
  await flush();
  await flush();
  t.false(c.created.includes('Late'), 'closed: no more Events are taken');
  t.false(c.created.includes('R4'), 'dropped: not written after the grace');
});

test('close() returns at once when nothing is queued', async (t) => {
  const c = slowClient();
  const recorder = new KubeEventRecorder({ client: c.client, logger: nopLogger, instance: 'test' });
  const timer = new AbortController();
  const first = await Promise.race([
    recorder.close(60_000).then(() => 'closed'),
    sleep(1_000, 'still waiting', { signal: timer.signal }),
  ]);
  timer.abort();
  t.is(first, 'closed');
});

test('AlreadyExists on a create is the Event written (a POST retried after its connection reset): no warning, and a repeat counts on it', async (t) => {
  // A fake client: a real API server cannot be made to reset a connection after it has written the Event.
  const patched: { path: string; patch: unknown }[] = [];
  let creates = 0;
  const client = {
    create: async (path: string, body: { metadata: { name: string } }) => {
      creates++;
      throw new ApiError({
        status: 409,
        reason: 'AlreadyExists',
        message: `events "${body.metadata.name}" already exists`,
        method: 'POST',
        path,
      });
    },
    patch: async (path: string, patch: unknown) => {
      patched.push({ path, patch });
      return {};
    },
  } as unknown as EventClient;
  const lines: LogLine[] = [];
  const recorder = new KubeEventRecorder({ client, logger: recordingLogger(lines), instance: 'test' });
  recorder.event(traceJob('a'), 'Normal', 'Created', 'm');
  for (let i = 0; i < 10 && creates < 1; i++) await flush();
  await flush();
  recorder.event(traceJob('a'), 'Normal', 'Created', 'm');
  for (let i = 0; i < 10 && patched.length < 1; i++) await flush();
  t.deepEqual(
    lines.filter((l) => l.level === 'warn'),
    [],
  );
  t.is(creates, 1);
  t.like(patched[0]?.patch, { count: 2 });
  t.regex(patched[0]?.path ?? '', /\/namespaces\/ns\/events\/a\.[0-9a-f]{16}$/);
});

test('any other failure to create an Event is logged with the object and the reason', async (t) => {
  const client = {
    create: async (path: string) => {
      throw new ApiError({ status: 403, reason: 'Forbidden', message: 'no', method: 'POST', path });
    },
    patch: async () => ({}),
  } as unknown as EventClient;
  const lines: LogLine[] = [];
  const recorder = new KubeEventRecorder({ client, logger: recordingLogger(lines), instance: 'test' });
  recorder.event(traceJob('a'), 'Normal', 'Created', 'm');
  for (let i = 0; i < 10 && lines.length < 1; i++) await flush();
  t.like(lines[0], { level: 'warn', msg: 'could not record event', fields: { reason: 'Created', tracejob: 'ns/a' } });
});
