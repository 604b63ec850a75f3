// The dashboard's HTTP server: the page's files, server-sent-event streams
// of what the cluster holds, and the one write (Stop). Every cluster call is
// made with the user's own client, so the API server's RBAC decides, and its
// refusals reach the page with their status and message.
//
// Routes
//   GET  /                                           the page (with this session's token)
//   GET  /style.css, /src/**.ts, /vendor/*.js        the page's files (assets.ts)
//   GET  /api/config                                 { namespace, server, user }
//   GET  /api/list?namespace=NS                      SSE: tracejobs, tracetriggers, problem
//   GET  /api/tracejobs/NS/NAME/stream               SSE: object, events, problem
//   GET  /api/tracejobs/NS/NAME/log?traceId=ID       SSE: log, log-end, problem (the trace pod's log, followed)
//   GET  /api/tracetriggers/NS/NAME/stream           SSE: object, events, problem
//   GET  /api/tracejobs/NS/NAME                      the TraceJob (JSON)
//   GET  /api/tracejobs/NS/NAME/output               the kept text output (from its ConfigMap)
//   POST /api/tracejobs/NS/NAME/stop                 spec.stop = true (Origin + token checked)
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { KubeClient } from '../runtime/kube-client.ts';
import { resourcePath } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/logger.ts';
import { nopLogger } from '../runtime/logger.ts';
import { API_GROUP, API_VERSION, PLURAL } from '../tracejob/constants.ts';
import { Assets } from './assets.ts';
import { followTraceLog, listFeed, objectFeed, type Kind, type Send } from './feeds.ts';
import { RequestGuard, TOKEN_HEADER } from './request-guard.ts';

export interface DashboardOptions {
  client: KubeClient;
  /** Namespace the page starts with; undefined = all namespaces. */
  namespace?: string;
  /** Who the kubeconfig says the user is (shown on the page). */
  user?: string;
  address: string;
  port: number;
  logger?: Logger;
  /** Fixed token (tests); a random one per process otherwise. */
  token?: string;
}

export interface RunningDashboard {
  url: string;
  token: string;
  close(): Promise<void>;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const SECURITY_HEADERS: Record<string, string> = {
  // Nothing from outside this server; Plot puts <style> elements in its SVG.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(text);
}

interface ErrorLike {
  status?: number;
  reason?: string;
  message?: string;
}

/** An API server error as the page shows it: its status, reason and message. */
function apiFailure(res: http.ServerResponse, error: unknown): void {
  const e = error as ErrorLike;
  const status = typeof e.status === 'number' && e.status >= 400 && e.status < 600 ? e.status : 502;
  json(res, status, {
    reason: e.reason ?? 'Unavailable',
    message: e.message ?? String(error),
    fromApiServer: typeof e.status === 'number',
  });
}

function sse(req: http.IncomingMessage, res: http.ServerResponse): { send: Send; signal: AbortSignal } {
  const controller = new AbortController();
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write('retry: 2000\n\n');
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  const end = (): void => {
    clearInterval(keepAlive);
    controller.abort();
  };
  req.on('close', end);
  res.on('close', end);
  const send: Send = (event, data) => {
    if (controller.signal.aborted) return;
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  return { send, signal: controller.signal };
}

async function readBody(req: http.IncomingMessage, limit = 16_384): Promise<string> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > limit) throw new Error('request body too large');
  }
  return text;
}

/** Starts the dashboard; resolves once it listens. */
export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const { client } = options;
  const log = options.logger ?? nopLogger;
  const token = options.token ?? randomBytes(24).toString('base64url');
  const assets = new Assets();
  const objectPath = (kind: Kind, namespace: string, name: string, subresource?: string): string =>
    resourcePath({
      group: API_GROUP,
      version: API_VERSION,
      plural: kind === 'tracejobs' ? PLURAL : 'tracetriggers',
      namespace,
      name,
      ...(subresource === undefined ? {} : { subresource }),
    });
  let guard: RequestGuard | undefined;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    if (guard === undefined) {
      json(res, 503, { reason: 'ServiceUnavailable', message: 'the dashboard is starting' });
      return;
    }
    const host = guard.checkHost(req.headers.host);
    if (!host.ok) {
      json(res, host.status, { reason: 'MisdirectedRequest', message: host.reason });
      return;
    }
    const parts = url.pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    if (parts[0] !== 'api') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        json(res, 405, { reason: 'MethodNotAllowed', message: `${req.method ?? ''} is not served here` });
        return;
      }
      const asset = await assets.get(url.pathname);
      if (asset === undefined) {
        json(res, 404, { reason: 'NotFound', message: `no such file: ${url.pathname}` });
        return;
      }
      const body =
        url.pathname === '/' ? Buffer.from(asset.body.toString('utf8').replace('%%TOKEN%%', token)) : asset.body;
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': asset.contentType,
        'cache-control': url.pathname === '/' ? 'no-store' : 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const [, what, namespace, name, action] = parts;
    if (req.method === 'POST') {
      const verdict = guard.checkWrite({
        origin: req.headers.origin,
        host: req.headers.host,
        token: req.headers[TOKEN_HEADER] as string | undefined,
      });
      if (!verdict.ok) {
        log.warn('write refused', { path: url.pathname, origin: req.headers.origin, reason: verdict.reason });
        json(res, verdict.status, { reason: 'Forbidden', message: verdict.reason, fromApiServer: false });
        return;
      }
      if (
        what === 'tracejobs' &&
        namespace !== undefined &&
        name !== undefined &&
        action === 'stop' &&
        parts.length === 5
      ) {
        if (!NAME.test(namespace) || !NAME.test(name)) {
          json(res, 400, { reason: 'BadRequest', message: 'namespace and name must be DNS names' });
          return;
        }
        await readBody(req);
        try {
          const patched = await client.patch<{ spec?: { stop?: boolean } }>(
            objectPath('tracejobs', namespace, name),
            { spec: { stop: true } },
            'merge',
            { fieldManager: 'trace-operator-dashboard' },
          );
          log.info('stop requested', { namespace, name });
          json(res, 200, { stop: patched.spec?.stop === true });
        } catch (error) {
          apiFailure(res, error);
        }
        return;
      }
      json(res, 404, { reason: 'NotFound', message: `no such action: POST ${url.pathname}` });
      return;
    }
    if (req.method !== 'GET') {
      json(res, 405, { reason: 'MethodNotAllowed', message: `${req.method ?? ''} is not served here` });
      return;
    }
    if (what === 'config' && parts.length === 2) {
      json(res, 200, { namespace: options.namespace ?? null, server: client.server, user: options.user ?? null });
      return;
    }
    if (what === 'list' && parts.length === 2) {
      const ns = url.searchParams.get('namespace') ?? '';
      if (ns !== '' && !NAME.test(ns)) {
        json(res, 400, { reason: 'BadRequest', message: `'${ns}' is not a namespace name` });
        return;
      }
      const { send, signal } = sse(req, res);
      listFeed(client, ns === '' ? undefined : ns, send, signal);
      return;
    }
    if ((what === 'tracejobs' || what === 'tracetriggers') && namespace !== undefined && name !== undefined) {
      if (!NAME.test(namespace) || !NAME.test(name)) {
        json(res, 400, { reason: 'BadRequest', message: 'namespace and name must be DNS names' });
        return;
      }
      if (action === 'stream' && parts.length === 5) {
        const { send, signal } = sse(req, res);
        objectFeed(client, what, namespace, name, send, signal);
        return;
      }
      if (what === 'tracejobs' && action === 'log' && parts.length === 5) {
        const id = url.searchParams.get('traceId') ?? '';
        if (!/^[0-9a-f-]{36}$/.test(id)) {
          json(res, 400, { reason: 'BadRequest', message: 'traceId must be the TraceJob status.id (a UUID)' });
          return;
        }
        const { send, signal } = sse(req, res);
        void followTraceLog(client, namespace, id, send, signal, log);
        return;
      }
      if (action === undefined && parts.length === 4) {
        try {
          json(res, 200, await client.get(objectPath(what, namespace, name)));
        } catch (error) {
          apiFailure(res, error);
        }
        return;
      }
      if (what === 'tracejobs' && action === 'output' && parts.length === 5) {
        try {
          const tj = await client.get<{ status?: { output?: { configMapName?: string; key?: string } } }>(
            objectPath('tracejobs', namespace, name),
          );
          const ref = tj.status?.output;
          if (ref?.configMapName === undefined) {
            json(res, 404, { reason: 'NotFound', message: 'this trace has no kept output yet' });
            return;
          }
          const cm = await client.get<{ data?: Record<string, string> }>(
            resourcePath({ version: 'v1', plural: 'configmaps', namespace, name: ref.configMapName }),
          );
          json(res, 200, { text: cm.data?.[ref.key ?? 'output.txt'] ?? '' });
        } catch (error) {
          apiFailure(res, error);
        }
        return;
      }
    }
    json(res, 404, { reason: 'NotFound', message: `no such API: ${url.pathname}` });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log.error('request failed', { path: req.url, err: error });
      if (!res.headersSent) json(res, 500, { reason: 'InternalError', message: String(error) });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.address, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostPart = options.address.includes(':') ? `[${options.address}]` : options.address;
  const hosts = [`${hostPart}:${port}`];
  if (options.address === '127.0.0.1' || options.address === '::1') hosts.push(`localhost:${port}`);
  guard = new RequestGuard(hosts, token);
  return {
    url: `http://${hostPart}:${port}/`,
    token,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
