// The webhook's serving certificate from a directory holding tls.crt and
// tls.key (a Secret volume, e.g. written by cert-manager), read again when
// the files change: the kubelet swaps a Secret volume's ..data symlink, which
// a directory watch sees; a slow poll catches anything the watch misses.
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../runtime/logger.ts';
import { errorMessage } from '../error-message.ts';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

export async function readKeyPair(dir: string): Promise<KeyPair> {
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  try {
    const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    return { cert, key };
  } catch (error) {
    throw new Error(
      `cannot read the webhook certificate ${certFile} and key ${keyFile}: ${errorMessage(error)}; mount a TLS Secret there (config/certmanager) or pass --webhook-insecure for plain HTTP behind a TLS-terminating proxy`,
      { cause: error },
    );
  }
}

async function fingerprint(dir: string): Promise<string> {
  const parts = await Promise.all(
    ['tls.crt', 'tls.key'].map(async (f) => {
      try {
        const s = await stat(path.join(dir, f));
        return `${s.mtimeMs}:${s.size}:${s.ino}`;
      } catch {
        return 'missing';
      }
    }),
  );
  return parts.join('|');
}

/** Calls `onChange` with the new key pair whenever the files change, until `signal` aborts. */
export function watchKeyPair(
  dir: string,
  onChange: (pair: KeyPair) => void,
  options: { signal: AbortSignal; logger: Logger; pollMs?: number },
): void {
  let last: string | undefined;
  let busy = false;
  const check = async (): Promise<void> => {
    if (busy || options.signal.aborted) return;
    busy = true;
    try {
      const now = await fingerprint(dir);
      if (last !== undefined && now !== last && !now.includes('missing')) {
        onChange(await readKeyPair(dir));
        options.logger.info('webhook certificate reloaded', { dir });
      }
      last = now;
    } catch (error) {
      options.logger.warn('could not reload the webhook certificate; keeping the old one', {
        dir,
        error: errorMessage(error),
      });
    } finally {
      busy = false;
    }
  };
  void check();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, () => void check());
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  const timer = setInterval(() => void check(), options.pollMs ?? 10_000);
  timer.unref();
  options.signal.addEventListener(
    'abort',
    () => {
      clearInterval(timer);
      watcher?.close();
    },
    { once: true },
  );
}
