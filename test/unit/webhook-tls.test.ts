// The webhook serves the certificate in its directory and picks up a new one
// when the files change (as when cert-manager renews the Secret), without a
// restart. Real files, real openssl certificates, a real TLS socket.
import test from 'ava';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { scratchDir } from '../support/scratch-dir.ts';
import { nopLogger } from '../../src/runtime/logger.ts';
import { WebhookServer } from '../../src/webhook/server.ts';
import { writeSelfSignedCert } from '../support/alerting.ts';
import { eventually } from '../support/eventually.ts';

function servedCommonName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject.CN;
      socket.end();
      resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
    });
    socket.on('error', reject);
  });
}

test('the serving certificate is reloaded when its files change', async (t) => {
  const dir = await scratchDir('webhook-tls');
  await writeSelfSignedCert(dir, 'first');
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const server = new WebhookServer({
    address: '127.0.0.1:0',
    certDir: dir,
    maxBodyBytes: 1024,
    logger: nopLogger,
    handler: async () => ({ status: 200, body: {} }),
  });
  const { port, tls: secure } = await server.listen(stop.signal);
  t.true(secure);
  t.is(await servedCommonName(port), 'first');
  // Write the new pair aside and move it in, as the kubelet swaps a Secret volume.
  const next = await scratchDir('webhook-tls-next');
  await writeSelfSignedCert(next, 'second');
  await rename(path.join(next, 'tls.key'), path.join(dir, 'tls.key'));
  await rename(path.join(next, 'tls.crt'), path.join(dir, 'tls.crt'));
  await eventually(
    'the new certificate is served',
    async () => ((await servedCommonName(port)) === 'second' ? true : undefined),
    20_000,
  );
  t.pass();
});

test('a missing certificate fails fast with what to do', async (t) => {
  const dir = await scratchDir('webhook-tls-empty');
  const server = new WebhookServer({
    address: '127.0.0.1:0',
    certDir: dir,
    maxBodyBytes: 1024,
    logger: nopLogger,
    handler: async () => ({ status: 200, body: {} }),
  });
  const error = await t.throwsAsync(server.listen(new AbortController().signal));
  t.regex(error?.message ?? '', /tls\.crt.*config\/certmanager.*--webhook-insecure/);
});
