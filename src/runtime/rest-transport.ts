// The HTTP layer under KubeClient: one keep-alive connection pool per API
// server, credentials from a ClusterConnection (kube-config.ts, or
// client-node's KubeConfig, which has the same two methods), retries that cannot
// duplicate a write, and a count of every attempt in
// rest_client_requests_total. It knows paths and bytes, not resources.
//
// Why a node:https pool, not client-node's generated APIs or undici fetch:
// in client-node 2.0.1 every generated call runs
// `KubeConfig.applySecurityAuthentication`, which builds a new undici Agent
// per request, so each request pays a fresh TCP+TLS handshake and no
// connection is reused. Measured on the local control plane (2 vCPUs shared
// with the API server and etcd; ConfigMap creates, three alternating rounds
// of 1000 with 16 in flight, then 500 with 4 in flight):
//                                               16 in flight       4 in flight   client CPU/request
//   this pool (node:https keep-alive)           802–997 creates/s  676/s         ~0.6 ms
//   undici fetch with one pooled Agent          560–656/s          437/s         ~1.2 ms
//   client-node CoreV1Api.createNamespacedConfigMap  143–163/s     120/s         ~5.2 ms
// So a ClusterConnection does the config work — kubeconfig files, the
// in-cluster service account, TLS material; client-node's KubeConfig,
// loaded only when needed, for exec/OIDC plugins and proxies — and requests go over one keep-alive
// `node:https` Agent sized for concurrency, plus a second, unbounded agent
// for long-running streams (watches) so they never take a request slot. No
// dependency beyond client-node, and that only for plugins.
//
// API
//   type Query = Record<string, string | number | boolean | undefined>
//   interface RestRequest { method, path, query?, body?, contentType?, accept? }
//   interface RequestOptions { signal?: AbortSignal; timeoutMs?: number }   timeoutMs: inactivity, 0 = none
//   class RestTransport
//     new RestTransport({ kubeConfig, metrics?, maxSockets = 32, requestTimeoutMs = 60_000, userAgent?,
//                         authRefreshMs = 30_000, maxRetries = 5, clock?, logger? })
//     send(req, opts?): Promise<{ status, headers, text }>    whole body; ApiError for >= 400
//     stream(req, signal): Promise<http.IncomingMessage>      a 200 response to read as it comes; ApiError otherwise
//     webSocket(path, query, protocols, opts?, attach?): Promise<WebSocket>   an upgraded connection (pods/exec); ApiError otherwise
//     close(): void                                          destroys pooled connections
//     readonly server: string; readonly host: string
//
// Retries (none can duplicate a write): 429 honouring Retry-After (capped at
// 10 s) up to maxRetries; ECONNRESET on a reused keep-alive socket before
// any response, once; 401 once after refreshing credentials. Credentials are
// re-read from the KubeConfig every authRefreshMs (rotated service-account
// tokens, exec plugins). Network failures throw an Error naming the request
// with the socket error as `cause`; every attempt is counted, with code
// "<error>" when no response came.
import http from 'node:http';
import https from 'node:https';
import type { WebSocket } from 'ws';
import type { ClusterConnection } from './kube-config.ts';
import { ApiError, reasonForStatus } from './api-error.ts';
import { realClock, type Clock } from './clock.ts';
import { nopLogger, type Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';
import type { Status } from './objects.ts';
import { PROTOBUF_TYPE, statusFromProtobuf } from './watch-protobuf.ts';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RestRequest {
  method: string;
  path: string;
  query?: Query;
  body?: string;
  contentType?: string;
  accept?: string;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Inactivity timeout of this request (default: the transport's requestTimeoutMs; 0 = none). */
  timeoutMs?: number;
}

export interface RestTransportOptions {
  kubeConfig: ClusterConnection;
  metrics?: RuntimeMetrics;
  /** Keep-alive connections for ordinary requests (default 32). */
  maxSockets?: number;
  requestTimeoutMs?: number;
  userAgent?: string;
  authRefreshMs?: number;
  maxRetries?: number;
  clock?: Clock;
  logger?: Logger;
}

export interface RestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

interface Connection {
  url: URL;
  /** Path prefix of the server URL (usually ""). */
  basePath: string;
  agent: http.Agent;
  watchAgent: http.Agent;
  secure: boolean;
  /** TLS material for connections outside the pools (WebSockets). */
  tls: https.AgentOptions;
  /** client-node's proxy agent, when the kubeconfig names a proxy. */
  proxyAgent?: http.Agent;
}

interface Auth {
  headers: Record<string, string>;
  at: number;
}

function encodeQuery(query: Query | undefined): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}

function parseStatus(text: string): Status | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && (parsed as { kind?: unknown }).kind === 'Status')
      return parsed as Status;
  } catch {
    // not JSON
  }
  return undefined;
}

function retryAfterMs(headers: http.IncomingHttpHeaders): number {
  const raw = headers['retry-after'];
  const seconds = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 10) * 1000 : 1000;
}

/**
 * The requests in flight under each abort signal, aborted through one
 * 'abort' listener per signal. The manager passes one signal to every
 * request; node:http's own `signal` option adds and removes an EventTarget
 * listener per request, about 0.1 ms of CPU per trace in a burst profile
 * (bench/README.md, 2026-12-07, night).
 */
class InFlight {
  readonly #bySignal = new WeakMap<AbortSignal, Set<http.ClientRequest>>();

  track(signal: AbortSignal, request: http.ClientRequest): void {
    const tracked = this.#requestsUnder(signal);
    tracked.add(request);
    request.once('close', () => tracked.delete(request));
  }

  #requestsUnder(signal: AbortSignal): Set<http.ClientRequest> {
    const known = this.#bySignal.get(signal);
    if (known !== undefined) return known;
    const requests = new Set<http.ClientRequest>();
    signal.addEventListener(
      'abort',
      () => {
        for (const r of requests) r.destroy(new Error('the request was aborted', { cause: signal.reason }));
        requests.clear();
      },
      { once: true },
    );
    this.#bySignal.set(signal, requests);
    return requests;
  }
}

/** Sends requests to one API server over a keep-alive pool. */
export class RestTransport {
  readonly #kc: ClusterConnection;
  readonly #metrics: RuntimeMetrics | undefined;
  readonly #maxSockets: number;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #authRefreshMs: number;
  readonly #maxRetries: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly server: string;
  readonly host: string;
  #conn: Connection | undefined;
  #connPending: Promise<Connection> | undefined;
  #auth: Auth | undefined;
  #authPending: Promise<Auth> | undefined;
  readonly #inFlight = new InFlight();

  constructor(options: RestTransportOptions) {
    this.#kc = options.kubeConfig;
    const cluster = this.#kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server;
    this.host = new URL(cluster.server).host;
    this.#metrics = options.metrics;
    this.#maxSockets = options.maxSockets ?? 32;
    this.#timeoutMs = options.requestTimeoutMs ?? 60_000;
    this.#userAgent = options.userAgent ?? `trace-operator/0.1.0 (node ${process.version})`;
    this.#authRefreshMs = options.authRefreshMs ?? 30_000;
    this.#maxRetries = options.maxRetries ?? 5;
    this.#clock = options.clock ?? realClock;
    this.#log = options.logger ?? nopLogger;
  }

  /** Opens a long-running GET (a watch) on the stream pool; resolves with a 200 response, throws ApiError otherwise. */
  async stream(req: RestRequest, signal: AbortSignal): Promise<http.IncomingMessage> {
    const res = await this.#open(req, { signal, timeoutMs: 0 }, true);
    if (res.statusCode === 200) return res;
    // A watch that asked for protobuf gets its error Status in protobuf too.
    const text = (res.headers['content-type'] ?? '').startsWith(PROTOBUF_TYPE)
      ? JSON.stringify(statusFromProtobuf(await readBytes(res)) ?? {})
      : await readText(res);
    throw this.#errorFor(req.method, req.path, res.statusCode ?? 0, res.headers, text);
  }

  /**
   * Opens a WebSocket on `path` (`query` already encoded, with its "?"): the
   * same server, TLS material and credentials as every request, counted in
   * the request metrics by the status of the handshake (101 when it
   * switched). Resolves once the connection is open; an answer other than
   * 101 throws its ApiError (403 when RBAC refuses), a network failure or
   * no handshake within the timeout an Error naming the request. `attach`
   * gets the socket before any event (to listen for messages). The `ws`
   * module loads on the first call: the manager needs it only to stop a trace.
   */
  async webSocket(
    path: string,
    query: string,
    protocols: readonly string[],
    opts: RequestOptions = {},
    attach: (socket: WebSocket) => void = () => {},
  ): Promise<WebSocket> {
    if (opts.signal?.aborted === true) throw opts.signal.reason;
    const conn = await this.#connection();
    const auth = await this.#authHeaders();
    const { WebSocket } = await import('ws');
    const url = `${conn.secure ? 'wss' : 'ws'}://${conn.url.host}${conn.basePath}${path}${query}`;
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const started = performance.now();
    const count = (code: number | string): void =>
      this.#metrics?.restRequest({
        method: 'GET',
        code,
        host: this.host,
        seconds: (performance.now() - started) / 1000,
      });
    return new Promise<WebSocket>((resolve, reject) => {
      let settled = false;
      const settle = (error: unknown, socket?: WebSocket): void => {
        if (settled) return;
        settled = true;
        opts.signal?.removeEventListener('abort', onAbort);
        if (socket !== undefined) resolve(socket);
        else reject(error);
      };
      const socket = new WebSocket(url, [...protocols], {
        headers: { ...auth.headers, 'User-Agent': this.#userAgent },
        ...conn.tls,
        ...(conn.proxyAgent === undefined ? {} : { agent: conn.proxyAgent }),
        ...(timeoutMs > 0 ? { handshakeTimeout: timeoutMs } : {}),
      });
      attach(socket);
      const onAbort = (): void => {
        settle(opts.signal?.reason);
        socket.terminate();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('upgrade', () => count(101));
      socket.once('open', () => settle(undefined, socket));
      socket.once('unexpected-response', (request, res) => {
        const status = res.statusCode ?? 0;
        count(status);
        void readText(res)
          .then(
            (text) => this.#errorFor('GET', path, status, res.headers, text),
            (error: unknown) => error,
          )
          .then((error) => {
            settle(error);
            request.destroy();
            socket.terminate();
          });
      });
      // After 'unexpected-response' ws reports the aborted handshake as an error too: the first cause wins.
      socket.on('error', (error) => {
        if (!settled) count('<error>');
        settle(new Error(`GET ${this.server}${path}: ${error.message}`, { cause: error }));
      });
    });
  }

  /** Destroys pooled connections (open streams end with an error). */
  close(): void {
    this.#conn?.agent.destroy();
    this.#conn?.watchAgent.destroy();
    this.#conn = undefined;
  }

  /** Sends a request and reads the whole answer; throws ApiError for >= 400 after the retries above. */
  async send(req: RestRequest, opts: RequestOptions = {}): Promise<RestResponse> {
    const { method, path } = req;
    let authRetried = false;
    let resetRetried = false;
    for (let attempt = 0; ; attempt++) {
      let res: http.IncomingMessage;
      let text: string;
      try {
        res = await this.#open(req, opts, false);
        text = await readText(res);
      } catch (error: unknown) {
        if (!resetRetried && isReusedSocketReset(error) && opts.signal?.aborted !== true) {
          resetRetried = true;
          continue;
        }
        throw error;
      }
      const status = res.statusCode ?? 0;
      if (status < 400) return { status, headers: res.headers, text };
      if (status === 401 && !authRetried) {
        authRetried = true;
        this.#auth = undefined;
        continue;
      }
      if (status === 429 && attempt < this.#maxRetries) {
        const wait = retryAfterMs(res.headers);
        this.#log.debug('throttled by the API server; retrying', { method, path, waitMs: wait, attempt });
        await this.#clock.sleep(wait, opts.signal);
        continue;
      }
      throw this.#errorFor(method, path, status, res.headers, text);
    }
  }

  #errorFor(method: string, path: string, status: number, headers: http.IncomingHttpHeaders, text: string): ApiError {
    const parsed = parseStatus(text);
    const retryAfter = headers['retry-after'] === undefined ? undefined : Number(headers['retry-after']);
    if (parsed !== undefined) {
      const error = ApiError.fromStatus(parsed, { method, path }, status);
      return retryAfter === undefined || Number.isNaN(retryAfter)
        ? error
        : new ApiError({
            status,
            reason: error.reason,
            message: error.serverMessage,
            method,
            path,
            details: error.details,
            retryAfterSeconds: retryAfter,
          });
    }
    return new ApiError({
      status,
      reason: reasonForStatus(status),
      message: text.trim().slice(0, 500) || `HTTP ${status}`,
      method,
      path,
      ...(retryAfter === undefined || Number.isNaN(retryAfter) ? {} : { retryAfterSeconds: retryAfter }),
    });
  }

  /** One attempt: resolves with the response head (body unread); counts it in the metrics. */
  async #open(req: RestRequest, opts: RequestOptions, watch: boolean): Promise<http.IncomingMessage> {
    const { method, path } = req;
    if (opts.signal?.aborted === true) throw opts.signal.reason;
    const conn = await this.#connection();
    const auth = await this.#authHeaders();
    opts.signal?.throwIfAborted();
    const headers: Record<string, string> = {
      ...auth.headers,
      'User-Agent': this.#userAgent,
      Accept: req.accept ?? 'application/json',
    };
    if (req.body !== undefined) {
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(req.body));
    }
    const started = performance.now();
    const transport = conn.secure ? https : http;
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      let answered = false;
      const request = transport.request(
        {
          protocol: conn.url.protocol,
          hostname: conn.url.hostname,
          port: conn.url.port,
          path: `${conn.basePath}${path}${encodeQuery(req.query)}`,
          method,
          headers,
          agent: watch ? conn.watchAgent : conn.agent,
        },
        (res) => {
          answered = true;
          this.#metrics?.restRequest({
            method,
            code: res.statusCode ?? 0,
            host: this.host,
            seconds: (performance.now() - started) / 1000,
          });
          resolve(res);
        },
      );
      if (opts.signal !== undefined) this.#inFlight.track(opts.signal, request);
      if (timeoutMs > 0) {
        request.setTimeout(timeoutMs, () =>
          request.destroy(new Error(`${method} ${path}: no answer from the API server for ${timeoutMs / 1000}s`)),
        );
      }
      request.on('error', (error: Error & { code?: string }) => {
        if (!answered) this.#metrics?.restRequest({ method, code: '<error>', host: this.host });
        const aborted = opts.signal?.aborted === true;
        const wrapped = aborted
          ? opts.signal?.reason
          : new Error(`${method} ${this.server}${path}: ${error.message}`, { cause: error });
        if (!aborted && request.reusedSocket && error.code === 'ECONNRESET')
          (wrapped as { reusedSocketReset?: boolean }).reusedSocketReset = true;
        reject(wrapped);
      });
      request.end(req.body);
    });
  }

  async #connection(): Promise<Connection> {
    if (this.#conn !== undefined) return this.#conn;
    this.#connPending ??= this.#connect();
    try {
      this.#conn = await this.#connPending;
      return this.#conn;
    } finally {
      this.#connPending = undefined;
    }
  }

  async #connect(): Promise<Connection> {
    const cluster = this.#kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server);
    const secure = url.protocol === 'https:';
    // TLS material exactly as client-node resolves it (CA/cert/key files or
    // data, skipTLSVerify, tlsServerName), read once here.
    const resolved: https.RequestOptions = { headers: {} };
    await this.#kc.applyToHTTPSOptions(resolved);
    const tls: https.AgentOptions = {};
    for (const k of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const) {
      if (resolved[k] !== undefined) (tls as Record<string, unknown>)[k] = resolved[k];
    }
    const common = { keepAlive: true, keepAliveMsecs: 30_000, scheduling: 'lifo' as const };
    let agent: http.Agent;
    let watchAgent: http.Agent;
    let proxyAgent: http.Agent | undefined;
    if (cluster.proxyUrl !== undefined && cluster.proxyUrl !== '' && resolved.agent instanceof http.Agent) {
      // Through a proxy: client-node's own proxy agent (no pool sizing, but correct).
      agent = resolved.agent;
      watchAgent = resolved.agent;
      proxyAgent = resolved.agent;
    } else if (secure) {
      agent = new https.Agent({ ...common, ...tls, maxSockets: this.#maxSockets });
      watchAgent = new https.Agent({ ...common, ...tls });
    } else {
      agent = new http.Agent({ ...common, maxSockets: this.#maxSockets });
      watchAgent = new http.Agent(common);
    }
    return {
      url,
      basePath: url.pathname.replace(/\/$/, ''),
      agent,
      watchAgent,
      secure,
      tls,
      ...(proxyAgent === undefined ? {} : { proxyAgent }),
    };
  }

  async #authHeaders(): Promise<Auth> {
    const now = this.#clock.now();
    if (this.#auth !== undefined && now - this.#auth.at < this.#authRefreshMs) return this.#auth;
    if (this.#authPending !== undefined) return this.#authPending;
    this.#authPending = (async () => {
      const opts: https.RequestOptions = { headers: {} };
      await this.#kc.applyToHTTPSOptions(opts);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
      if (typeof opts.auth === 'string' && opts.auth !== '')
        headers['Authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
      return { headers, at: this.#clock.now() };
    })();
    try {
      this.#auth = await this.#authPending;
      return this.#auth;
    } finally {
      this.#authPending = undefined;
    }
  }
}

function isReusedSocketReset(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { reusedSocketReset?: boolean }).reusedSocketReset === true
  );
}

async function readBytes(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The whole body as text. Read with 'data' events: a stream's async iterator cost more per answer. */
function readText(res: http.IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  return new Promise<string>((resolve, reject) => {
    let text = '';
    let ended = false;
    res.on('data', (chunk: string) => (text += chunk));
    res.once('end', () => {
      ended = true;
      resolve(text);
    });
    res.once('error', reject);
    res.once('close', () => {
      if (!ended) reject(new Error('the connection closed before the whole answer arrived'));
    });
  });
}
