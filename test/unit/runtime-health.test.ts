// The probe and metrics endpoints over real HTTP on 127.0.0.1:0.
import test from 'ava';
import { EndpointServer, eventLoopCheck, eventLoopLagTracker, parseAddress } from '../../src/runtime/health.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { type LogLine, recordingLogger } from '../support/reconciler-fakes.ts';

async function serve(server: EndpointServer): Promise<{ base: string; stop: AbortController }> {
  const stop = new AbortController();
  const { port } = await server.listen(stop.signal);
  return { base: `http://127.0.0.1:${port}`, stop };
}

test('healthz and readyz answer ok when every check passes', async (t) => {
  const server = new EndpointServer({
    address: '127.0.0.1:0',
    healthz: { ping: () => {} },
    readyz: { 'tracejobs-synced': async () => {} },
  });
  const { base, stop } = await serve(server);
  t.teardown(() => stop.abort());
  for (const path of ['/healthz', '/readyz', '/readyz/tracejobs-synced']) {
    const res = await fetch(`${base}${path}`);
    t.is(res.status, 200, path);
    t.is(await res.text(), 'ok');
  }
});

test('a failing readiness check gives 500 and names the check; verbose shows the reason', async (t) => {
  let synced = false;
  const server = new EndpointServer({
    address: '127.0.0.1:0',
    readyz: {
      ping: () => {},
      'caches-synced': () => {
        if (!synced) throw new Error('jobs not synced');
      },
    },
  });
  const { base, stop } = await serve(server);
  t.teardown(() => stop.abort());
  let res = await fetch(`${base}/readyz`);
  t.is(res.status, 500);
  t.is(await res.text(), '[+]ping ok\n[-]caches-synced failed: reason withheld\nreadyz check failed\n');
  res = await fetch(`${base}/readyz?verbose`);
  t.is(await res.text(), '[+]ping ok\n[-]caches-synced failed: jobs not synced\nreadyz check failed\n');
  res = await fetch(`${base}/readyz?exclude=caches-synced`);
  t.is(res.status, 200);
  synced = true;
  res = await fetch(`${base}/readyz?verbose`);
  t.is(res.status, 200);
  t.is(await res.text(), '[+]ping ok\n[+]caches-synced ok\nreadyz check passed\n');
});

test('a hanging check times out; an unknown check is 404', async (t) => {
  const server = new EndpointServer({
    address: '127.0.0.1:0',
    readyz: { leader: () => new Promise(() => {}) },
    checkTimeoutMs: 100,
  });
  const { base, stop } = await serve(server);
  t.teardown(() => stop.abort());
  const res = await fetch(`${base}/readyz/leader?verbose`);
  t.is(res.status, 500);
  t.regex(await res.text(), /leader failed: timed out after 100ms/);
  t.is((await fetch(`${base}/readyz/unknown`)).status, 404);
  t.is((await fetch(`${base}/healthz`)).status, 404, 'not configured on this server');
});

test('/metrics serves the registry in Prometheus text format', async (t) => {
  const metrics = new RuntimeMetrics();
  metrics.controller('tracejob', { maxConcurrentReconciles: 4 });
  const server = new EndpointServer({ address: '127.0.0.1:0', metrics });
  const { base, stop } = await serve(server);
  t.teardown(() => stop.abort());
  const res = await fetch(`${base}/metrics`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
  t.regex(await res.text(), /controller_runtime_max_concurrent_reconciles\{controller="tracejob"\} 4/);
  const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});

test('the server closes when its signal aborts, even with a keep-alive client', async (t) => {
  const server = new EndpointServer({ address: '127.0.0.1:0', healthz: {} });
  const { base, stop } = await serve(server);
  t.is((await fetch(`${base}/healthz`)).status, 200);
  stop.abort();
  await server.closed();
  await t.throwsAsync(fetch(`${base}/healthz`));
});

test('listening on a taken port fails with the cause', async (t) => {
  const first = new EndpointServer({ address: '127.0.0.1:0', healthz: {} });
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const { port } = await first.listen(stop.signal);
  const second = new EndpointServer({ address: `127.0.0.1:${port}`, healthz: {} });
  await t.throwsAsync(second.listen(stop.signal), { code: 'EADDRINUSE' });
});

test('the event-loop check fails during and right after a stall, then recovers', (t) => {
  // Fake time: the tracker's ticks stand in for the interval timer, so a busy machine cannot skew it.
  let now = 0;
  const tracker = eventLoopLagTracker({ maxLagMs: 150, intervalMs: 20, now: () => now });
  for (let i = 0; i < 3; i++) {
    now += 20;
    tracker.tick();
  }
  t.notThrows(() => tracker.check());
  now += 400; // the loop is blocked: no tick for 400 ms
  t.throws(() => tracker.check(), { message: /event loop stalled for 380ms \(limit 150ms\)/ }); // 400 ms since the last tick, which was due 20 ms after it
  tracker.tick(); // the late tick
  now += 60;
  t.throws(() => tracker.check(), { message: /stalled for \d+ms recently/ });
  for (let i = 0; i < 10; i++) {
    now += 20;
    tracker.tick();
  }
  t.notThrows(() => tracker.check());
});

test('the event-loop check runs on a real timer and passes while the loop is free', async (t) => {
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const check = eventLoopCheck({ maxLagMs: 5000, intervalMs: 20, signal: stop.signal });
  await new Promise((r) => setTimeout(r, 60));
  t.notThrows(() => check(stop.signal));
});

test('addresses parse like controller-runtime bind addresses', (t) => {
  t.deepEqual(parseAddress(':8081'), { port: 8081 });
  t.deepEqual(parseAddress('8080'), { port: 8080 });
  t.deepEqual(parseAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.deepEqual(parseAddress('[::1]:9000'), { host: '::1', port: 9000 });
  t.throws(() => parseAddress('localhost'), { message: /host:port/ });
  t.throws(() => parseAddress(':70000'), { message: /out of range/ });
});

test('a readiness check failing on every poll is logged when its failure changes, and once when it passes again', async (t) => {
  const lines: LogLine[] = [];
  let failure: string | undefined = 'jobs not synced';
  const server = new EndpointServer({
    address: '127.0.0.1:0',
    logger: recordingLogger(lines),
    readyz: {
      'caches-synced': () => {
        if (failure !== undefined) throw new Error(failure);
      },
    },
  });
  const { base, stop } = await serve(server);
  t.teardown(() => stop.abort());
  const poll = async (times: number): Promise<void> => {
    for (let i = 0; i < times; i++) await (await fetch(`${base}/readyz`)).text();
  };
  await poll(3);
  failure = 'pods not synced';
  await poll(2);
  failure = undefined;
  await poll(2);
  failure = 'pods not synced';
  await poll(1);
  t.deepEqual(
    lines.filter((l) => l.msg.startsWith('readyz')).map((l) => [l.msg, l.fields['failed']]),
    [
      ['readyz check failed', ['caches-synced: jobs not synced']],
      ['readyz check failed', ['caches-synced: pods not synced']],
      ['readyz check passes again', undefined],
      ['readyz check failed', ['caches-synced: pods not synced']],
    ],
  );
});
