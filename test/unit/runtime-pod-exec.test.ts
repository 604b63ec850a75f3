// KubeClient.exec (src/runtime/pod-exec.ts) against a loopback WebSocket
// server that speaks the API server's side of the exec channel protocol. A
// stand-in, because the parts under test here (a refused handshake with its
// Status body, a command that never ends, a connection that drops before the
// status) are faults the real API server and kubelet will not produce on
// demand. The real path, API server → kubelet → containerd → the runner, is
// tested in test/real-node/stop.e2e.ts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { WebSocketServer, type WebSocket } from 'ws';
import { ApiError } from '../../src/runtime/api-error.ts';
import { loadKubeConfig, KubeClient } from '../../src/runtime/kube-client.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { execQuery, exitCodeOf } from '../../src/runtime/pod-exec.ts';
import { tempDir } from '../fixtures/runner/harness.ts';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

const POD = '/api/v1/namespaces/ns/pods/p';

interface Served {
  client: KubeClient;
  metrics: RuntimeMetrics;
  upgrades: { url: string; protocol: string; auth: string | undefined }[];
}

/** A server that refuses with `refuse` (status, Status body), or upgrades and hands the socket to `session`. */
async function serve(
  t: { teardown(fn: () => void | Promise<void>): void },
  session: (socket: WebSocket) => void,
  refuse?: { status: number; body: object },
): Promise<Served> {
  const upgrades: Served['upgrades'] = [];
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => [...protocols][0] ?? false });
  const srv = http.createServer((_req, res) => res.writeHead(404).end());
  srv.on('upgrade', (req, socket, head) => {
    upgrades.push({
      url: req.url ?? '',
      protocol: String(req.headers['sec-websocket-protocol']),
      auth: req.headers.authorization,
    });
    if (refuse !== undefined) {
      const body = JSON.stringify(refuse.body);
      socket.end(
        `HTTP/1.1 ${refuse.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, session);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { dir, cleanup } = await tempDir();
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` } }],
      users: [{ name: 'u', user: { token: 'secret-token' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  const metrics = new RuntimeMetrics();
  const client = new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig }), metrics });
  t.teardown(async () => {
    client.close();
    wss.close();
    srv.closeAllConnections();
    srv.close();
    await cleanup();
  });
  return { client, metrics, upgrades };
}

const frame = (channel: number, text: string): Buffer => Buffer.concat([Buffer.from([channel]), Buffer.from(text)]);

test('exec sends the command as repeated query parameters with the channel protocols and the credentials', async (t) => {
  const s = await serve(t, (socket) => {
    socket.send(frame(1, 'asked the runner '));
    socket.send(frame(1, 'to stop\n'));
    socket.send(frame(2, 'a warning\n'));
    socket.send(frame(3, JSON.stringify({ metadata: {}, status: 'Success' })));
    socket.close();
  });
  const result = await s.client.exec(POD, { container: 'c', command: ['trace-operator', 'stop', '--request'] });
  t.deepEqual(result, { exitCode: 0, stdout: 'asked the runner to stop\n', stderr: 'a warning\n' });
  t.is(
    s.upgrades[0]?.url,
    `${POD}/exec?command=trace-operator&command=stop&command=--request&container=c&stdout=true&stderr=true`,
  );
  t.is(s.upgrades[0]?.protocol, 'v5.channel.k8s.io,v4.channel.k8s.io');
  t.is(s.upgrades[0]?.auth, 'Bearer secret-token');
  t.regex(await s.metrics.render(), /rest_client_requests_total\{code="101",method="GET",host="127\.0\.0\.1:\d+"\} 1/);
});

test('a non-zero exit comes back as the exit code, not an error', async (t) => {
  const s = await serve(t, (socket) => {
    socket.send(frame(1, 'no pid file\n'));
    socket.send(
      frame(
        3,
        JSON.stringify({
          status: 'Failure',
          reason: 'NonZeroExitCode',
          message: 'command terminated with non-zero exit code: exit status 3',
          details: { causes: [{ reason: 'ExitCode', message: '3' }] },
        }),
      ),
    );
    socket.close();
  });
  t.like(await s.client.exec(POD, { container: 'c', command: ['x'] }), { exitCode: 3, stdout: 'no pid file\n' });
});

test('a refused handshake throws the ApiError of its Status body and is counted by its code', async (t) => {
  const s = await serve(t, () => {}, {
    status: 403,
    body: {
      kind: 'Status',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      message: 'pods "p" is forbidden: User "u" cannot create resource "pods/exec" in the namespace "ns"',
    },
  });
  const error = await t.throwsAsync(s.client.exec(POD, { container: 'c', command: ['x'] }), { instanceOf: ApiError });
  t.is(error?.status, 403);
  t.regex(error?.message ?? '', /cannot create resource "pods\/exec"/);
  t.regex(await s.metrics.render(), /rest_client_requests_total\{code="403",method="GET"/);
});

test('a command that could not start, a dropped connection and no end in time are errors that say so', async (t) => {
  const notFound = await serve(t, (socket) => {
    socket.send(frame(3, JSON.stringify({ status: 'Failure', message: 'container "c" not found in pod "p"' })));
    socket.close();
  });
  await t.throwsAsync(notFound.client.exec(POD, { container: 'c', command: ['x'] }), {
    message: /the command did not run: container "c" not found/,
  });

  const dropped = await serve(t, (socket) => socket.close());
  await t.throwsAsync(dropped.client.exec(POD, { container: 'c', command: ['x'] }), {
    message: /closed before the command's status came/,
  });

  const silent = await serve(t, () => {});
  await t.throwsAsync(silent.client.exec(POD, { container: 'c', command: ['x'] }, { timeoutMs: 300 }), {
    message: /exec of 'x' in .*: no end within 0.3s/,
  });
});

test('exitCodeOf and execQuery', (t) => {
  t.is(exitCodeOf({ status: 'Success' }), 0);
  t.throws(() => exitCodeOf({ status: 'Failure', reason: 'NonZeroExitCode' }), { message: /did not run/ });
  t.is(
    execQuery({ container: 'a b', command: ['sh', '-c', 'echo 1&2'] }),
    '?command=sh&command=-c&command=echo+1%262&container=a+b&stdout=true&stderr=true',
  );
});
