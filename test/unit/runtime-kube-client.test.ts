// KubeClient behaviour on responses the real API server will not give on
// demand in this test cluster (it runs with priority-and-fairness off and
// client-certificate auth): 429 with Retry-After, 401 for an expired token,
// a keep-alive socket closed under a request, a non-Status error body, and a
// watch stream split mid-line. A plain node:http server plays those parts.
// Everything else is tested against the real API server in
// test/integration/runtime-kube-client.test.ts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError, isTooManyRequests } from '../../src/runtime/api-error.ts';
import { eventually } from '../support/eventually.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { KubeClient, resourcePath } from '../../src/runtime/kube-client.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

async function server(
  t: { teardown(fn: () => void): void },
  handler: Handler,
): Promise<{ url: string; requests: { method: string; url: string; auth: string | undefined; body: string }[] }> {
  const requests: { method: string; url: string; auth: string | undefined; body: string }[] = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, requests };
}

function kubeConfig(url: string, token: () => string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  // A token source that changes, like an exec plugin or a rotated service-account token file.
  kc.addAuthenticator({
    isAuthProvider: () => true,
    applyAuthentication: async (_user, opts) =>
      void (((opts.headers ??= {}) as Record<string, string>)['Authorization'] = `Bearer ${token()}`),
  });
  kc.loadFromOptions({
    clusters: kc.clusters,
    users: [{ name: 'u', authProvider: { name: 'custom' } }],
    contexts: kc.contexts,
    currentContext: 'ctx',
  });
  return kc;
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

test('429 is retried after Retry-After, and every attempt is counted', async (t) => {
  let n = 0;
  const s = await server(t, (_req, res) => {
    if (n++ < 2)
      json(
        res,
        429,
        { kind: 'Status', status: 'Failure', reason: 'TooManyRequests', code: 429, message: 'slow down' },
        { 'Retry-After': '1' },
      );
    else json(res, 201, { metadata: { name: 'x' } });
  });
  const clock = new FakeClock();
  const metrics = new RuntimeMetrics();
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't'), clock, metrics });
  t.teardown(() => client.close());
  const created = client.create('/api/v1/namespaces/ns/configmaps', { metadata: { name: 'x' } });
  while (s.requests.length < 3) await clock.advance(1000);
  t.deepEqual(await created, { metadata: { name: 'x' } });
  const text = await metrics.render();
  const host = new URL(s.url).host;
  t.true(text.includes(`rest_client_requests_total{code="429",method="POST",host="${host}"} 2`));
  t.true(text.includes(`rest_client_requests_total{code="201",method="POST",host="${host}"} 1`));
});

test('429 past maxRetries surfaces as TooManyRequests with retryAfterSeconds', async (t) => {
  const s = await server(t, (_req, res) =>
    json(
      res,
      429,
      { kind: 'Status', reason: 'TooManyRequests', code: 429, message: 'slow down' },
      { 'Retry-After': '0' },
    ),
  );
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't'), maxRetries: 1 });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.get('/api/v1/namespaces/ns/configmaps/x'), { instanceOf: ApiError });
  t.true(isTooManyRequests(error));
  t.is(error?.retryAfterSeconds, 0);
  t.is(s.requests.length, 2);
});

test('a 401 refreshes the credentials once and retries', async (t) => {
  let token = 'old';
  const s = await server(t, (req, res) => {
    if (req.headers.authorization === 'Bearer new') json(res, 200, { metadata: { name: 'x' } });
    else json(res, 401, { kind: 'Status', reason: 'Unauthorized', code: 401, message: 'Unauthorized' });
  });
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => token), authRefreshMs: 3_600_000 });
  t.teardown(() => client.close());
  await t.throwsAsync(client.get('/x'), { message: /401 Unauthorized/ });
  token = 'new';
  t.deepEqual(await client.get('/x'), { metadata: { name: 'x' } });
  t.deepEqual(
    s.requests.map((r) => r.auth),
    ['Bearer old', 'Bearer old', 'Bearer old', 'Bearer new'],
  );
});

test('a keep-alive socket the server closed under a request is retried on a new connection', async (t) => {
  let n = 0;
  const s = await server(t, (req, res) => {
    n++;
    if (n === 2) {
      req.socket.destroy();
      return;
    }
    json(res, 200, { n });
  });
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't') });
  t.teardown(() => client.close());
  t.deepEqual(await client.get('/a'), { n: 1 });
  t.deepEqual(await client.get('/b'), { n: 3 });
});

test('errors without a Status body keep the HTTP status, reason and text; network errors name the request', async (t) => {
  const s = await server(t, (_req, res) => {
    res.writeHead(503, { 'Content-Type': 'text/plain' });
    res.end('upstream connect error\n');
  });
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't') });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.get('/api/v1/namespaces'), { instanceOf: ApiError });
  t.is(error?.status, 503);
  t.is(error?.reason, 'ServiceUnavailable');
  t.is(error?.serverMessage, 'upstream connect error');
  const dead = new KubeClient({ kubeConfig: kubeConfig('http://127.0.0.1:1', () => 't') });
  const metrics = new RuntimeMetrics();
  const counted = new KubeClient({ kubeConfig: kubeConfig('http://127.0.0.1:1', () => 't'), metrics });
  await t.throwsAsync(dead.get('/api'), { message: /GET http:\/\/127\.0\.0\.1:1\/api: connect ECONNREFUSED/ });
  await t.throwsAsync(counted.get('/api'));
  t.true(
    (await metrics.render()).includes('rest_client_requests_total{code="<error>",method="GET",host="127.0.0.1:1"} 1'),
  );
});

test('watch parses a stream whose lines are split across chunks, and stops on abort', async (t) => {
  const s = await server(t, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const a = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '6' } } });
    const b = JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } });
    res.write(a.slice(0, 10));
    setTimeout(() => res.write(`${a.slice(10)}\n${b.slice(0, 5)}`), 20);
    setTimeout(() => res.write(`${b.slice(5)}\n`), 40);
  });
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't') });
  t.teardown(() => client.close());
  const ac = new AbortController();
  const seen: string[] = [];
  const consumed = (async () => {
    for await (const ev of client.watch(
      '/api/v1/configmaps',
      { resourceVersion: '5', allowWatchBookmarks: true, timeoutSeconds: 9 },
      ac.signal,
    )) {
      seen.push(`${ev.type} ${(ev.object as { metadata: { resourceVersion: string } }).metadata.resourceVersion}`);
      if (seen.length === 2) ac.abort(new Error('done'));
    }
  })();
  await t.throwsAsync(consumed, { message: 'done' });
  t.deepEqual(seen, ['ADDED 6', 'BOOKMARK 7']);
  t.is(s.requests[0]?.url, '/api/v1/configmaps?resourceVersion=5&allowWatchBookmarks=true&timeoutSeconds=9&watch=true');
});

test('a watch refused with an HTTP error throws ApiError before any event', async (t) => {
  const s = await server(t, (_req, res) =>
    json(res, 410, { kind: 'Status', reason: 'Expired', code: 410, message: 'too old resource version: 1 (5)' }),
  );
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't') });
  t.teardown(() => client.close());
  const iterate = async (): Promise<void> => {
    for await (const _ of client.watch(
      '/x',
      { resourceVersion: '1', allowWatchBookmarks: true, timeoutSeconds: 1 },
      new AbortController().signal,
    ))
      t.fail();
  };
  const error = await t.throwsAsync(iterate(), { instanceOf: ApiError });
  t.is(error?.status, 410);
  t.is(error?.reason, 'Expired');
});

test('write options become query parameters; patch types set their content type', async (t) => {
  const s = await server(t, (req, res) => json(res, 200, { ct: req.headers['content-type'], url: req.url }));
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't'), fieldManager: 'tester' });
  t.teardown(() => client.close());
  const path = resourcePath({ version: 'v1', plural: 'configmaps', namespace: 'ns', name: 'x' });
  t.is(path, '/api/v1/namespaces/ns/configmaps/x');
  t.deepEqual(await client.patch(path, { data: {} }, 'merge'), {
    ct: 'application/merge-patch+json',
    url: `${path}?fieldManager=tester`,
  });
  t.deepEqual(await client.patch(path, {}, 'strategic', { dryRun: true }), {
    ct: 'application/strategic-merge-patch+json',
    url: `${path}?fieldManager=tester&dryRun=All`,
  });
  t.deepEqual(await client.patch(path, [], 'json'), {
    ct: 'application/json-patch+json',
    url: `${path}?fieldManager=tester`,
  });
  t.deepEqual(await client.patch(path, {}, 'apply', { force: true, fieldManager: 'me' }), {
    ct: 'application/apply-patch+yaml',
    url: `${path}?fieldManager=me&force=true`,
  });
  t.deepEqual(await client.patchStatus(path, {}, 'merge'), {
    ct: 'application/merge-patch+json',
    url: `${path}/status?fieldManager=tester`,
  });
  await client.delete(path, { propagationPolicy: 'Background', preconditions: { uid: 'u1' } });
  t.deepEqual(JSON.parse(s.requests.at(-1)?.body ?? ''), {
    kind: 'DeleteOptions',
    apiVersion: 'v1',
    propagationPolicy: 'Background',
    preconditions: { uid: 'u1' },
  });
  t.is(resourcePath({ group: 'batch', version: 'v1', plural: 'jobs' }), '/apis/batch/v1/jobs');
  t.is(
    resourcePath({
      group: 'observe.alexeldeib.xyz',
      version: 'v1alpha1',
      plural: 'tracejobs',
      namespace: 'ns',
      name: 'tj',
      subresource: 'status',
    }),
    '/apis/observe.alexeldeib.xyz/v1alpha1/namespaces/ns/tracejobs/tj/status',
  );
});

test('aborting a signal ends every request in flight under it with its reason; an aborted signal sends nothing', async (t) => {
  const s = await server(t, () => {
    // Never answers: only the abort ends the requests.
  });
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't') });
  t.teardown(() => client.close());
  const ac = new AbortController();
  const other = new AbortController();
  const errorOf = (request: Promise<unknown>): Promise<unknown> =>
    request.then(
      () => undefined,
      (e: unknown) => e,
    );
  const a = errorOf(client.get('/a', { signal: ac.signal }));
  const b = errorOf(client.createUnparsed('/b', { metadata: { name: 'b' } }, { signal: ac.signal }));
  const c = errorOf(client.get('/c', { signal: other.signal }));
  await eventually('all three requests reached the server', async () => (s.requests.length === 3 ? true : undefined));
  ac.abort(new Error('shutting down'));
  t.is(((await a) as Error).message, 'shutting down');
  t.is(((await b) as Error).message, 'shutting down');
  other.abort(new Error('c only'));
  t.is(((await c) as Error).message, 'c only');
  await t.throwsAsync(client.get('/d', { signal: ac.signal }), { message: 'shutting down' });
  t.is(s.requests.length, 3, 'a request under an aborted signal is never sent');
});

test('createUnparsed POSTs the object and ignores an answer it does not need; errors still throw ApiError', async (t) => {
  let n = 0;
  const s = await server(t, (_req, res) => {
    n++;
    if (n === 1) {
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end('not JSON: never parsed');
      return;
    }
    json(res, 409, { kind: 'Status', reason: 'AlreadyExists', code: 409, message: 'jobs "j" already exists' });
  });
  const client = new KubeClient({ kubeConfig: kubeConfig(s.url, () => 't') });
  t.teardown(() => client.close());
  await client.createUnparsed('/apis/batch/v1/namespaces/ns/jobs', { metadata: { name: 'j' } });
  t.deepEqual(JSON.parse(s.requests[0]?.body ?? ''), { metadata: { name: 'j' } });
  t.is(s.requests[0]?.url, '/apis/batch/v1/namespaces/ns/jobs?fieldManager=trace-operator');
  const error = await t.throwsAsync(client.createUnparsed('/apis/batch/v1/namespaces/ns/jobs', {}), {
    instanceOf: ApiError,
  });
  t.is(error?.reason, 'AlreadyExists');
});
