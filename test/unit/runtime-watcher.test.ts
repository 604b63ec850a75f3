// The watcher's state machine on fake time with a scripted transport.
//
// Why a fake transport here: these tests pin down transitions on faults a
// real API server cannot be made to produce on demand or in test time — a
// connection that stays open but delivers nothing, not even the bookmarks the
// server sends about once a minute (watchdog); a 410 answered as an HTTP
// status to a watch; a consumer or transform that throws; a watch that the
// server closes at once, over and over. The same machine runs against the
// real control plane in test/integration/runtime-watch.test.ts (events,
// resume, re-list on a real 410, connection refused and back).
import test from 'ava';
import { ProtobufError } from '../../src/runtime/protobuf-reader.ts';
import type { ProtobufDecoder } from '../../src/runtime/watch-protobuf.ts';
import { ApiError } from '../../src/runtime/api-error.ts';
import { ExponentialBackoff } from '../../src/runtime/backoff.ts';
import { FakeClock } from '../support/fake-clock.ts';
import type { KubeObject, ObjectList, RawWatchEvent } from '../../src/runtime/objects.ts';
import {
  Watcher,
  type ListParams,
  type WatchParams,
  type WatchTransport,
  type WatcherEvent,
  type WatcherState,
} from '../../src/runtime/watcher.ts';

/** A watch stream the test drives: push events, end it, or fail it. */
class Stream implements AsyncIterable<RawWatchEvent> {
  readonly params: WatchParams;
  #items: ({ event: RawWatchEvent } | { end: true } | { error: unknown })[] = [];
  #wake: (() => void) | undefined;
  aborted = false;

  constructor(params: WatchParams, signal: AbortSignal) {
    this.params = params;
    signal.addEventListener('abort', () => {
      this.aborted = true;
      this.fail(signal.reason);
    });
  }

  push(type: RawWatchEvent['type'], object: unknown): void {
    this.#items.push({ event: { type, object } });
    this.#wake?.();
  }

  end(): void {
    this.#items.push({ end: true });
    this.#wake?.();
  }

  fail(error: unknown): void {
    this.#items.push({ error });
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RawWatchEvent> {
    for (;;) {
      const item = this.#items.shift();
      if (item === undefined) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      if ('end' in item) return;
      if ('error' in item) throw item.error;
      yield item.event;
    }
  }
}

class FakeTransport implements WatchTransport {
  lists: ListParams[] = [];
  streams: Stream[] = [];
  /** The protobuf decoder each watch was asked to use. */
  decoders: (ProtobufDecoder | undefined)[] = [];
  /** Pages to return, by continue token ('' for the first page). */
  pages = new Map<string, ObjectList<unknown>>();
  listError: unknown;
  watchError: unknown;

  async list(_path: string, params: ListParams): Promise<ObjectList<unknown>> {
    this.lists.push(params);
    if (this.listError !== undefined) {
      const e = this.listError;
      this.listError = undefined;
      throw e;
    }
    const page = this.pages.get(params.continue ?? '');
    if (page === undefined) throw new Error(`no page for continue=${params.continue}`);
    return page;
  }

  watch(
    _path: string,
    params: WatchParams,
    signal: AbortSignal,
    protobuf?: ProtobufDecoder,
  ): AsyncIterable<RawWatchEvent> {
    this.decoders.push(protobuf);
    if (this.watchError !== undefined) {
      const e = this.watchError;
      this.watchError = undefined;
      return {
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(e) }),
      };
    }
    const stream = new Stream(params, signal);
    this.streams.push(stream);
    return stream;
  }

  get last(): Stream {
    const s = this.streams.at(-1);
    if (s === undefined) throw new Error('no watch yet');
    return s;
  }
}

function obj(name: string, rv: string, data?: Record<string, string>): KubeObject & { data?: Record<string, string> } {
  return { metadata: { name, namespace: 'ns', resourceVersion: rv }, ...(data === undefined ? {} : { data }) };
}

function setup(
  options: {
    prepare?: (transport: FakeTransport) => void;
    silenceTimeoutMs?: number;
    transform?: (o: KubeObject) => KubeObject;
    consumer?: (e: WatcherEvent<KubeObject>) => void;
    streamingList?: boolean;
    protobuf?: ProtobufDecoder;
  } = {},
) {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  transport.pages.set('', { metadata: { resourceVersion: '100' }, items: [obj('a', '90'), obj('b', '95')] });
  options.prepare?.(transport);
  const events: string[] = [];
  const states: WatcherState[] = [];
  const watcher = new Watcher({
    transport,
    path: '/api/v1/namespaces/ns/configmaps',
    clock,
    random: () => 0.5,
    backoff: new ExponentialBackoff({ initialMs: 800, maxMs: 30_000 }),
    timeoutSeconds: [300, 600],
    onState: (s) => states.push(s),
    ...(options.silenceTimeoutMs === undefined ? {} : { silenceTimeoutMs: options.silenceTimeoutMs }),
    ...(options.transform === undefined ? {} : { transform: options.transform }),
    ...(options.streamingList === undefined ? {} : { streamingList: options.streamingList }),
    ...(options.protobuf === undefined ? {} : { protobuf: options.protobuf }),
  });
  const stop = new AbortController();
  const running = watcher.run((e) => {
    events.push(
      e.type === 'sync'
        ? `sync ${e.objects.map((o) => o.metadata.name).join(',')}`
        : `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`,
    );
    options.consumer?.(e);
  }, stop.signal);
  return { clock, transport, watcher, events, states, stop, running };
}

test('lists in pages of 500, emits one sync, then watches from the list resourceVersion with bookmarks', async (t) => {
  const h = setup({
    prepare: (transport) => {
      transport.pages.set('', { metadata: { resourceVersion: '', continue: 'p2' }, items: [obj('a', '1')] });
      transport.pages.set('p2', { metadata: { resourceVersion: '100' }, items: [obj('b', '2')] });
    },
  });
  await h.clock.flush();
  t.deepEqual(h.transport.lists, [{ limit: 500 }, { limit: 500, continue: 'p2' }]);
  t.deepEqual(h.events, ['sync a,b']);
  t.is(h.transport.streams.length, 1);
  t.deepEqual(h.transport.last.params, { resourceVersion: '100', allowWatchBookmarks: true, timeoutSeconds: 450 });
  t.is(h.watcher.state(), 'watching');
  t.deepEqual(h.states, ['listing', 'watching']);
  h.stop.abort();
  await h.running;
  t.is(h.watcher.state(), 'stopped');
});

test('events are emitted in order; bookmarks only move the resourceVersion; a server timeout resumes from it', async (t) => {
  const h = setup();
  await h.clock.flush();
  h.transport.last.push('ADDED', obj('c', '101'));
  h.transport.last.push('MODIFIED', obj('a', '102'));
  h.transport.last.push('DELETED', obj('b', '103'));
  h.transport.last.push('BOOKMARK', { metadata: { resourceVersion: '150' } });
  await h.clock.advance(5_000);
  h.transport.last.end();
  await h.clock.flush();
  t.deepEqual(h.events, ['sync a,b', 'added c@101', 'modified a@102', 'deleted b@103']);
  t.is(h.transport.streams.length, 2);
  t.is(h.transport.last.params.resourceVersion, '150');
  t.is(h.transport.lists.length, 1, 'no re-list');
  t.is(h.watcher.resourceVersion(), '150');
  h.stop.abort();
  await h.running;
});

test('an ERROR event with code 410 re-lists at once', async (t) => {
  const h = setup();
  await h.clock.flush();
  h.transport.pages.set('', { metadata: { resourceVersion: '500' }, items: [obj('a', '400')] });
  h.transport.last.push('ERROR', {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'too old resource version: 100 (450)',
    reason: 'Expired',
    code: 410,
  });
  await h.clock.flush();
  t.is(h.transport.lists.length, 2);
  t.deepEqual(h.events, ['sync a,b', 'sync a']);
  t.is(h.transport.last.params.resourceVersion, '500');
  t.is(h.watcher.stats().relistsOnGone, 1);
  h.stop.abort();
  await h.running;
});

test('a 410 HTTP status on the watch request re-lists', async (t) => {
  const h = setup();
  await h.clock.flush();
  h.transport.watchError = new ApiError({ status: 410, reason: 'Gone', message: 'too old', method: 'GET', path: '/x' });
  h.transport.last.end();
  await h.clock.advance(2000);
  t.is(h.transport.lists.length, 2);
  t.is(h.watcher.stats().relistsOnGone, 1);
  h.stop.abort();
  await h.running;
});

test('other watch errors back off and resume from the last resourceVersion without re-listing', async (t) => {
  const h = setup();
  await h.clock.flush();
  h.transport.last.push('ADDED', obj('c', '120'));
  await h.clock.flush();
  h.transport.last.fail(new Error('connect ECONNREFUSED 127.0.0.1:6443'));
  await h.clock.flush();
  t.is(h.watcher.state(), 'backoff');
  t.is(h.transport.streams.length, 1);
  await h.clock.advance(800);
  t.is(h.transport.streams.length, 2);
  t.is(h.transport.last.params.resourceVersion, '120');
  t.is(h.transport.lists.length, 1);
  t.is(h.watcher.stats().errors, 1);
  h.stop.abort();
  await h.running;
});

test('a protobuf stream it cannot read is watched as JSON from then on, from the same resourceVersion', async (t) => {
  const decoder: ProtobufDecoder = () => obj('x', '1');
  const h = setup({ protobuf: decoder });
  await h.clock.flush();
  h.transport.last.push('ADDED', obj('c', '120'));
  await h.clock.flush();
  h.transport.last.fail(
    new Error('watch /api/v1/pods: the stream broke: bad', {
      cause: new ProtobufError('a varint is longer than 10 bytes'),
    }),
  );
  await h.clock.flush();
  await h.clock.advance(800);
  t.deepEqual(h.transport.decoders, [decoder, undefined]);
  t.is(h.transport.last.params.resourceVersion, '120');
  h.transport.last.fail(new Error('connection reset'));
  await h.clock.flush();
  await h.clock.advance(1600);
  t.deepEqual(h.transport.decoders, [decoder, undefined, undefined], 'and stays JSON');
  h.stop.abort();
  await h.running;
});

test('repeated failures back off exponentially; a delivered event resets the backoff', async (t) => {
  const h = setup();
  await h.clock.flush();
  const retryTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    h.transport.last.fail(new Error('connection reset'));
    await h.clock.flush();
    const before = h.transport.streams.length;
    const start = h.clock.now();
    while (h.transport.streams.length === before) await h.clock.advance(100);
    retryTimes.push(h.clock.now() - start);
  }
  t.deepEqual(retryTimes, [800, 1600, 3200]);
  h.transport.last.push('ADDED', obj('z', '130'));
  await h.clock.flush();
  h.transport.last.fail(new Error('connection reset'));
  await h.clock.flush();
  const start = h.clock.now();
  const before = h.transport.streams.length;
  while (h.transport.streams.length === before) await h.clock.advance(100);
  t.is(h.clock.now() - start, 800);
  h.stop.abort();
  await h.running;
});

test('a failing list is retried with backoff until it succeeds, never giving up', async (t) => {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  let failures = 6;
  transport.list = async (_path, params) => {
    transport.lists.push(params);
    if (failures-- > 0) throw new Error('connect ECONNREFUSED');
    return { metadata: { resourceVersion: '7' }, items: [] };
  };
  const watcher = new Watcher({
    transport,
    path: '/p',
    clock,
    backoff: new ExponentialBackoff({ initialMs: 1000, maxMs: 4000 }),
  });
  const stop = new AbortController();
  const events: string[] = [];
  const running = watcher.run((e) => void events.push(e.type), stop.signal);
  await clock.advance(1000 + 2000 + 4000 + 4000 + 4000 + 4000);
  t.is(transport.lists.length, 7);
  t.deepEqual(events, ['sync']);
  t.is(watcher.state(), 'watching');
  stop.abort();
  await running;
});

test('the watchdog restarts a silent watch; bookmarks count as activity', async (t) => {
  const h = setup({ silenceTimeoutMs: 60_000 });
  await h.clock.flush();
  const first = h.transport.last;
  await h.clock.advance(50_000);
  first.push('BOOKMARK', { metadata: { resourceVersion: '110' } });
  await h.clock.advance(50_000);
  t.false(first.aborted, 'a bookmark 50 s ago keeps it alive');
  await h.clock.advance(10_000);
  t.true(first.aborted, 'silent for 60 s: aborted');
  await h.clock.flush();
  t.is(h.transport.streams.length, 2);
  t.is(h.transport.last.params.resourceVersion, '110');
  t.is(h.transport.lists.length, 1, 'resumed, not re-listed');
  t.is(h.watcher.stats().watchdogRestarts, 1);
  h.stop.abort();
  await h.running;
});

test('a transport whose stream ignores the abort signal cannot hang the watchdog', async (t) => {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  transport.pages.set('', { metadata: { resourceVersion: '1' }, items: [] });
  let opened = 0;
  transport.watch = () => {
    opened++;
    return { [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<RawWatchEvent>>(() => {}) }) };
  };
  const watcher = new Watcher({ transport, path: '/p', clock, silenceTimeoutMs: 10_000 });
  const stop = new AbortController();
  const running = watcher.run(() => {}, stop.signal);
  await clock.advance(10_000);
  await clock.flush();
  t.is(opened, 2);
  t.is(watcher.stats().watchdogRestarts, 1);
  stop.abort();
  await running;
});

test('a watch the server ends at once without events counts as a failure and backs off', async (t) => {
  const h = setup();
  await h.clock.flush();
  h.transport.last.end();
  await h.clock.flush();
  t.is(h.watcher.state(), 'backoff');
  await h.clock.advance(800);
  t.is(h.transport.streams.length, 2);
  h.stop.abort();
  await h.running;
});

test('transform runs before anything is emitted; objects it rejects or without metadata are skipped', async (t) => {
  const seen: unknown[] = [];
  const h = setup({
    transform: (o) => {
      if (o.metadata.name === 'bad') throw new Error('cannot transform');
      const { data: _dropped, ...rest } = o as KubeObject & { data?: unknown };
      return rest;
    },
    consumer: (e) => seen.push(e.type === 'sync' ? e.objects : e.object),
  });
  await h.clock.flush();
  h.transport.last.push('ADDED', obj('big', '101', { huge: 'x'.repeat(1000) }));
  h.transport.last.push('ADDED', obj('bad', '102'));
  h.transport.last.push('ADDED', { no: 'metadata' });
  h.transport.last.push('ADDED', obj('ok', '103'));
  await h.clock.flush();
  t.deepEqual(h.events, ['sync a,b', 'added big@101', 'added ok@103']);
  t.false('data' in (seen[1] as object));
  t.is(h.watcher.resourceVersion(), '103');
  h.stop.abort();
  await h.running;
});

test('a consumer that throws makes the watcher re-list after backoff', async (t) => {
  let fail = true;
  const h = setup({
    consumer: (e) => {
      if (e.type === 'added' && fail) {
        fail = false;
        throw new Error('store bug');
      }
    },
  });
  await h.clock.flush();
  h.transport.last.push('ADDED', obj('c', '101'));
  await h.clock.flush();
  t.is(h.watcher.state(), 'backoff');
  await h.clock.advance(800);
  t.is(h.transport.lists.length, 2);
  t.is(h.events.at(-1), 'sync a,b');
  h.stop.abort();
  await h.running;
});

test('run() resolves promptly when aborted in any state', async (t) => {
  for (const state of ['listing', 'watching', 'backoff'] as const) {
    const h = setup({
      prepare: (transport) => {
        if (state === 'listing') transport.list = () => new Promise(() => {});
      },
    });
    await h.clock.flush();
    if (state === 'backoff') {
      h.transport.last.fail(new Error('x'));
      await h.clock.flush();
    }
    t.is(h.watcher.state(), state);
    h.stop.abort();
    await h.running; // even a list that ignores its signal does not hold run() up
    t.is(h.watcher.state(), 'stopped');
  }
});

test('a streaming list: initial events collected into one sync at the end bookmark, then the same stream watches', async (t) => {
  const h = setup({ streamingList: true, transform: (o) => ({ metadata: o.metadata }) });
  await h.clock.flush();
  t.deepEqual(h.transport.lists, [], 'no LIST request');
  t.deepEqual(h.transport.last.params, {
    sendInitialEvents: true,
    resourceVersionMatch: 'NotOlderThan',
    allowWatchBookmarks: true,
    timeoutSeconds: 450,
  });
  t.is(h.watcher.state(), 'listing');
  h.transport.last.push('ADDED', obj('a', '90', { big: 'x' }));
  h.transport.last.push('ADDED', obj('b', '95'));
  await h.clock.flush();
  t.deepEqual(h.events, [], 'nothing emitted before the initial events end');
  h.transport.last.push('BOOKMARK', {
    metadata: { resourceVersion: '100', annotations: { 'k8s.io/initial-events-end': 'true' } },
  });
  h.transport.last.push('ADDED', obj('c', '101'));
  await h.clock.flush();
  t.deepEqual(h.events, ['sync a,b', 'added c@101']);
  t.is(h.watcher.state(), 'watching');
  t.is(h.transport.streams.length, 1, 'one request for list and watch');
  h.transport.last.end();
  await h.clock.flush();
  t.is(h.transport.last.params.resourceVersion, '101', 'resumes as an ordinary watch');
  h.stop.abort();
  await h.running;
});

test('a streaming list the server refuses falls back to pages for good; one cut short is listed again', async (t) => {
  const refused = setup({
    streamingList: true,
    prepare: (transport) => {
      transport.watchError = new ApiError({
        status: 422,
        reason: 'Invalid',
        message: 'sendInitialEvents is forbidden',
        method: 'WATCH',
        path: '/api/v1/namespaces/ns/configmaps',
      });
    },
  });
  await refused.clock.flush();
  t.deepEqual(refused.events, ['sync a,b']);
  t.is(refused.transport.lists.length, 1);
  t.is(refused.transport.last.params.resourceVersion, '100');
  refused.stop.abort();
  await refused.running;

  const cut = setup({ streamingList: true });
  await cut.clock.flush();
  cut.transport.last.push('ADDED', obj('a', '90'));
  cut.transport.last.end();
  await cut.clock.advance(2_000);
  t.deepEqual(cut.events, [], 'a partial initial list is never emitted');
  t.is(cut.transport.streams.length, 2, 'streamed again after the backoff');
  t.is(cut.transport.last.params.sendInitialEvents, true);
  cut.stop.abort();
  await cut.running;
});
