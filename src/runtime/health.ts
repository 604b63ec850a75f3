// The HTTP endpoints a manager exposes: liveness (/healthz), readiness
// (/readyz) and Prometheus metrics (/metrics), in the shape of
// controller-runtime's probe and metrics servers. A manager usually runs two:
// probes on :8081 and metrics on :8080 (both configurable).
//
// API
//   type Check = (signal: AbortSignal) => void | Promise<void>     throws (or rejects) when unhealthy
//   interface EndpointServerOptions {
//     address?: string              "host:port", ":port" or "port" (default ":8081")
//     healthz?: Record<string, Check>   liveness checks; omit to not serve /healthz
//     readyz?: Record<string, Check>    readiness checks; omit to not serve /readyz
//     metrics?: { render(): Promise<string>; contentType: string }   omit to not serve /metrics
//     checkTimeoutMs?: number       per check (default 5000)
//     logger?: Logger
//   }
//   class EndpointServer
//     new EndpointServer(options)            starts nothing
//     listen(signal): Promise<{ host: string; port: number }>   closes gracefully when signal aborts
//     closed(): Promise<void>                resolves once the server has closed
//   function eventLoopCheck({ maxLagMs = 5000, intervalMs = 500, signal }): Check
//   function eventLoopLagTracker({ maxLagMs, intervalMs, now }): { tick(); check() }   its timer-free core
//                                            fails while the event loop has recently stalled longer than maxLagMs
//   function parseAddress(address): { host?: string; port: number }
//
// Responses follow Kubernetes' /healthz conventions: 200 "ok", or 500
// listing failed checks; `?verbose` lists every check as "[+]name ok" or
// "[-]name failed: reason"; `/readyz/<name>` runs one check; `?exclude=name`
// skips one. HEAD is answered like GET without a body.
import http from 'node:http';
import { nopLogger, type Logger } from './logger.ts';
import { serveUntilAborted } from './serve.ts';
import { errorMessage } from '../error-message.ts';

export type Check = (signal: AbortSignal) => void | Promise<void>;

export interface MetricsSource {
  render(): Promise<string>;
  readonly contentType: string;
}

export interface EndpointServerOptions {
  address?: string;
  healthz?: Record<string, Check>;
  readyz?: Record<string, Check>;
  metrics?: MetricsSource;
  checkTimeoutMs?: number;
  logger?: Logger;
}

/** Parses "host:port", ":port", "port" and "[v6]:port". */
export function parseAddress(address: string): { host?: string; port: number } {
  const match = /^(?:(\[[^\]]+\]|[^:]*):)?(\d+)$/.exec(address.trim());
  if (match === null) throw new Error(`invalid listen address '${address}': use host:port, :port or port`);
  const rawHost = match[1];
  const port = Number(match[2]);
  if (port > 65535) throw new Error(`invalid listen address '${address}': port out of range`);
  const host = rawHost === undefined || rawHost === '' ? undefined : rawHost.replace(/^\[|\]$/g, '');
  return host === undefined ? { port } : { host, port };
}

/**
 * A liveness check that fails while the event loop is stalled longer than
 * maxLagMs, and for 10 intervals after such a stall (a loop that is blocked
 * cannot answer the probe at all; this catches the stalls between probes).
 */
/**
 * The bookkeeping of the event-loop check, without its timer: `tick()` is
 * called every `intervalMs`; `check()` throws while a tick is overdue by
 * more than `maxLagMs`, and for ten intervals after a late tick. `now` is
 * injectable so tests run on fake time.
 */
export function eventLoopLagTracker(options: { maxLagMs: number; intervalMs: number; now: () => number }): {
  tick(): void;
  check(): void;
} {
  const { maxLagMs: maxLag, intervalMs: interval, now } = options;
  let expected = now() + interval;
  let stallLag = 0;
  let stallUntil = 0;
  return {
    tick() {
      const at = now();
      const lag = at - expected;
      expected = at + interval;
      if (lag > maxLag) {
        stallLag = lag;
        stallUntil = at + 10 * interval;
      }
    },
    check() {
      const at = now();
      const overdue = at - expected;
      if (overdue > maxLag) throw new Error(`event loop stalled for ${Math.round(overdue)}ms (limit ${maxLag}ms)`);
      if (at < stallUntil)
        throw new Error(`event loop stalled for ${Math.round(stallLag)}ms recently (limit ${maxLag}ms)`);
    },
  };
}

export function eventLoopCheck(options: { maxLagMs?: number; intervalMs?: number; signal: AbortSignal }): Check {
  const intervalMs = options.intervalMs ?? 500;
  const tracker = eventLoopLagTracker({ maxLagMs: options.maxLagMs ?? 5000, intervalMs, now: () => performance.now() });
  const timer = setInterval(() => tracker.tick(), intervalMs);
  timer.unref();
  options.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  return () => tracker.check();
}

interface CheckOutcome {
  name: string;
  error?: string;
}

/** One HTTP server for probes and/or metrics. */
export class EndpointServer {
  readonly #address: { host?: string; port: number };
  readonly #healthz: ReadonlyMap<string, Check> | undefined;
  readonly #readyz: ReadonlyMap<string, Check> | undefined;
  readonly #metrics: MetricsSource | undefined;
  readonly #checkTimeoutMs: number;
  readonly #log: Logger;
  /** The failures last logged per endpoint: a probe polled while caches list logs each change once, not each poll. */
  readonly #loggedFailures = new Map<string, string>();
  #server: http.Server | undefined;
  #closed: Promise<void> = Promise.resolve();

  constructor(options: EndpointServerOptions) {
    this.#address = parseAddress(options.address ?? ':8081');
    this.#healthz = options.healthz === undefined ? undefined : new Map(Object.entries(options.healthz));
    this.#readyz = options.readyz === undefined ? undefined : new Map(Object.entries(options.readyz));
    this.#metrics = options.metrics;
    this.#checkTimeoutMs = options.checkTimeoutMs ?? 5000;
    this.#log = options.logger ?? nopLogger;
  }

  closed(): Promise<void> {
    return this.#closed;
  }

  async listen(signal: AbortSignal): Promise<{ host: string; port: number }> {
    if (this.#server !== undefined) throw new Error('EndpointServer is already listening');
    if (signal.aborted) throw signal.reason;
    const server = http.createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        this.#log.error('endpoint handler failed', { url: req.url, err: error });
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      });
    });
    server.keepAliveTimeout = 5000;
    this.#server = server;
    // Scrapes in flight get a moment after the abort; then everything goes.
    const serving = await serveUntilAborted(server, this.#address, signal, 2000);
    this.#closed = serving.closed;
    const info = serving.address;
    this.#log.info('serving', {
      address: `${info.address}:${info.port}`,
      healthz: this.#healthz !== undefined,
      readyz: this.#readyz !== undefined,
      metrics: this.#metrics !== undefined,
    });
    return { host: info.address, port: info.port };
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      send(res, 405, 'method not allowed\n', head, { Allow: 'GET, HEAD' });
      return;
    }
    if (url.pathname === '/metrics' && this.#metrics !== undefined) {
      const text = await this.#metrics.render();
      send(res, 200, text, head, { 'Content-Type': this.#metrics.contentType });
      return;
    }
    for (const [prefix, checks] of [
      ['/healthz', this.#healthz],
      ['/readyz', this.#readyz],
    ] as const) {
      if (checks === undefined) continue;
      if (url.pathname === prefix || url.pathname === `${prefix}/`) {
        const excluded = new Set(url.searchParams.getAll('exclude'));
        const selected = [...checks].filter(([name]) => !excluded.has(name));
        await this.#respond(res, prefix.slice(1), selected, url.searchParams.has('verbose'), head);
        return;
      }
      if (url.pathname.startsWith(`${prefix}/`)) {
        const name = decodeURIComponent(url.pathname.slice(prefix.length + 1));
        const check = checks.get(name);
        if (check === undefined) {
          send(res, 404, `no check named '${name}'\n`, head);
          return;
        }
        await this.#respond(res, prefix.slice(1), [[name, check]], url.searchParams.has('verbose'), head);
        return;
      }
    }
    send(res, 404, 'not found\n', head);
  }

  async #respond(
    res: http.ServerResponse,
    what: string,
    checks: [string, Check][],
    verbose: boolean,
    head: boolean,
  ): Promise<void> {
    const outcomes = await Promise.all(checks.map(([name, check]) => this.#run(name, check)));
    const failed = outcomes.filter((o) => o.error !== undefined);
    this.#logChange(what, failed);
    if (failed.length === 0 && !verbose) {
      send(res, 200, 'ok', head);
      return;
    }
    const lines = outcomes.map((o) =>
      o.error === undefined ? `[+]${o.name} ok` : `[-]${o.name} failed: ${verbose ? o.error : 'reason withheld'}`,
    );
    lines.push(failed.length === 0 ? `${what} check passed` : `${what} check failed`);
    send(res, failed.length === 0 ? 200 : 500, `${lines.join('\n')}\n`, head);
  }

  #logChange(what: string, failed: CheckOutcome[]): void {
    const reasons = failed.map((f) => `${f.name}: ${f.error}`);
    const before = this.#loggedFailures.get(what);
    if (failed.length === 0) {
      if (before === undefined) return;
      this.#loggedFailures.delete(what);
      this.#log.info(`${what} check passes again`);
      return;
    }
    const signature = reasons.join('\n');
    if (before === signature) return;
    this.#loggedFailures.set(what, signature);
    this.#log.info(`${what} check failed`, { failed: reasons });
  }

  async #run(name: string, check: Check): Promise<CheckOutcome> {
    const signal = AbortSignal.timeout(this.#checkTimeoutMs);
    try {
      await Promise.race([
        (async () => check(signal))(),
        new Promise<never>((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error(`timed out after ${this.#checkTimeoutMs}ms`)), {
            once: true,
          }),
        ),
      ]);
      return { name };
    } catch (error: unknown) {
      return { name, error: errorMessage(error) };
    }
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  body: string,
  head: boolean,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
    'Content-Length': String(Buffer.byteLength(body)),
  });
  res.end(head ? undefined : body);
}
