// The API server connection read without client-node: in-cluster files and
// simple kubeconfigs; plugin kubeconfigs are left to client-node.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import type https from 'node:https';
import path from 'node:path';
import { scratchDirSync } from '../support/scratch-dir.ts';
import { stringify } from 'yaml';
import { loadClusterConnection } from '../../src/runtime/kube-config.ts';

function dir(): string {
  return scratchDirSync('kube-config');
}

function kubeconfig(d: string, user: object, cluster: object = {}, extra: object = {}): string {
  const file = path.join(d, 'config');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }],
      users: [{ name: 'u', user }],
      contexts: [
        { name: 'ctx', context: { cluster: 'c', user: 'u' } },
        { name: 'other', context: { cluster: 'c', user: 'u' } },
      ],
      'current-context': 'ctx',
      ...extra,
    }),
  );
  return file;
}

async function applied(c: ReturnType<typeof loadClusterConnection>): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = { headers: {} };
  await c.applyToHTTPSOptions(opts);
  return opts;
}

test('a kubeconfig with inline CA, client certificate and key', async (t) => {
  const d = dir();
  const file = kubeconfig(
    d,
    {
      'client-certificate-data': Buffer.from('CERT').toString('base64'),
      'client-key-data': Buffer.from('KEY').toString('base64'),
    },
    { 'certificate-authority-data': Buffer.from('CA').toString('base64'), 'tls-server-name': 'api.local' },
  );
  const c = loadClusterConnection({ kubeconfig: file, env: {} });
  t.deepEqual(c.getCurrentCluster(), { server: 'https://127.0.0.1:6443' });
  const opts = await applied(c);
  t.is(String(opts.ca), 'CA');
  t.is(String(opts.cert), 'CERT');
  t.is(String(opts.key), 'KEY');
  t.is(opts.servername, 'api.local');
  t.is(opts.rejectUnauthorized, undefined);
  t.deepEqual(opts.headers, {});
});

test('files are resolved next to the kubeconfig; a token file is read again on every call', async (t) => {
  const d = dir();
  writeFileSync(path.join(d, 'ca.crt'), 'CA-FILE');
  writeFileSync(path.join(d, 'token'), 'first\n');
  const file = kubeconfig(d, { tokenFile: 'token' }, { 'certificate-authority': 'ca.crt' });
  const c = loadClusterConnection({ kubeconfig: file, env: {} });
  let opts = await applied(c);
  t.is(String(opts.ca), 'CA-FILE');
  t.is((opts.headers as Record<string, string>)['Authorization'], 'Bearer first');
  writeFileSync(path.join(d, 'token'), 'rotated');
  opts = await applied(c);
  t.is((opts.headers as Record<string, string>)['Authorization'], 'Bearer rotated');
});

test('a token, insecure-skip-tls-verify, and a context chosen by name', async (t) => {
  const d = dir();
  const file = kubeconfig(d, { token: 'abc' }, { 'insecure-skip-tls-verify': true });
  const opts = await applied(loadClusterConnection({ kubeconfig: file, context: 'other', env: {} }));
  t.is(opts.rejectUnauthorized, false);
  t.is((opts.headers as Record<string, string>)['Authorization'], 'Bearer abc');
  t.throws(() => loadClusterConnection({ kubeconfig: file, context: 'nope', env: {} }), {
    message: /no context 'nope' \(known: ctx, other\)/,
  });
});

test('$KUBECONFIG is used when no file is given; ~/.kube/config next; then in-cluster', (t) => {
  const d = dir();
  const file = kubeconfig(d, { token: 'abc' });
  t.is(
    loadClusterConnection({ env: { KUBECONFIG: file }, home: d }).getCurrentCluster()?.server,
    'https://127.0.0.1:6443',
  );
  t.throws(() => loadClusterConnection({ env: {}, home: d }), { message: /not in a cluster/ });
});

test('in-cluster: the service host and port, the ServiceAccount CA and a token read on every call', async (t) => {
  const d = dir();
  writeFileSync(path.join(d, 'ca.crt'), 'SA-CA');
  writeFileSync(path.join(d, 'token'), 'sa-token');
  const c = loadClusterConnection({
    inCluster: true,
    env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
    serviceAccountDir: d,
  });
  t.is(c.getCurrentCluster()?.server, 'https://[fd00::1]:443');
  const opts = await applied(c);
  t.is(String(opts.ca), 'SA-CA');
  t.is((opts.headers as Record<string, string>)['Authorization'], 'Bearer sa-token');
});

test('an exec plugin kubeconfig is left to client-node, loaded only when credentials are asked for', async (t) => {
  const d = dir();
  const file = kubeconfig(d, {
    exec: {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: 'sh',
      args: [
        '-c',
        'echo \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}\'',
      ],
      interactiveMode: 'Never',
    },
  });
  const c = loadClusterConnection({ kubeconfig: file, env: {} });
  t.is(c.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
  const opts = await applied(c);
  t.is((opts.headers as Record<string, string>)['Authorization'], 'Bearer from-exec');
});

test("the context's user and namespace are known (the dashboard names the user, plot defaults the namespace)", (t) => {
  const d = dir();
  const file = kubeconfig(
    d,
    { token: 'abc' },
    {},
    { contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'tracing' } }] },
  );
  t.deepEqual(loadClusterConnection({ kubeconfig: file, env: {} }).context, { user: 'u', namespace: 'tracing' });
  const plain = kubeconfig(dir(), { token: 'abc' });
  t.deepEqual(loadClusterConnection({ kubeconfig: plain, env: {} }).context, { user: 'u', namespace: undefined });
});
