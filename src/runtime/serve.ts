// Listening until an AbortSignal, for the operator's HTTP servers (probes and
// metrics, the Alertmanager webhook): a listen error rejects, and the abort
// closes idle connections at once and the rest after a grace period, so
// requests in flight can finish but a shutdown never waits for a stuck client.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Serving {
  address: AddressInfo;
  /** Resolves once the server has closed after the abort. */
  closed: Promise<void>;
}

export async function serveUntilAborted(
  server: http.Server,
  at: { host?: string | undefined; port: number },
  signal: AbortSignal,
  graceMs: number,
): Promise<Serving> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const closed = new Promise<void>((resolve) => {
    const close = (): void => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), graceMs).unref();
    };
    if (signal.aborted) close();
    else signal.addEventListener('abort', close, { once: true });
  });
  return { address: server.address() as AddressInfo, closed };
}
