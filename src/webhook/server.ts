// The webhook's HTTP(S) server: TLS from a certificate directory (reloaded on
// change) unless plain HTTP is asked for, a cap on the request body (413
// before reading a declared-too-large body, or as soon as a streamed one
// passes the cap), JSON answers, and a graceful close when the signal aborts.
// Routing and meaning are the handler's (alertmanager-receiver.ts).
import http from 'node:http';
import https from 'node:https';
import { parseAddress } from '../runtime/health.ts';
import { serveUntilAborted } from '../runtime/serve.ts';
import type { Logger } from '../runtime/logger.ts';
import { readKeyPair, watchKeyPair } from './tls.ts';

export interface WebhookRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Reads the body, at most maxBodyBytes; resolves undefined when it is larger. */
  body(): Promise<string | undefined>;
}

export interface WebhookResponse {
  status: number;
  body: object;
  headers?: Record<string, string>;
}

export type WebhookHandler = (request: WebhookRequest) => Promise<WebhookResponse>;

export interface WebhookServerOptions {
  address: string;
  /** Directory of tls.crt and tls.key; undefined serves plain HTTP (only with --webhook-insecure). */
  certDir?: string | undefined;
  maxBodyBytes: number;
  handler: WebhookHandler;
  logger: Logger;
}

export class WebhookServer {
  readonly #o: WebhookServerOptions;
  #closed: Promise<void> = Promise.resolve();

  constructor(options: WebhookServerOptions) {
    this.#o = options;
  }

  async listen(signal: AbortSignal): Promise<{ host: string; port: number; tls: boolean }> {
    const { host, port } = parseAddress(this.#o.address);
    const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.#serve(req, res);
    let server: http.Server | https.Server;
    if (this.#o.certDir !== undefined) {
      const dir = this.#o.certDir;
      const pair = await readKeyPair(dir);
      const secure = https.createServer({ ...pair, minVersion: 'TLSv1.2' }, listener);
      watchKeyPair(dir, (next) => secure.setSecureContext({ ...next, minVersion: 'TLSv1.2' }), {
        signal,
        logger: this.#o.logger,
      });
      server = secure;
    } else {
      server = http.createServer(listener);
    }
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    const serving = await serveUntilAborted(server, { host, port }, signal, 5000);
    this.#closed = serving.closed;
    const address = serving.address;
    return { host: address.address, port: address.port, tls: this.#o.certDir !== undefined };
  }

  closed(): Promise<void> {
    return this.#closed;
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const max = this.#o.maxBodyBytes;
    let tooLarge = false;
    const request: WebhookRequest = {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      headers: req.headers,
      body: () =>
        readBody(req, max).then((b) => {
          if (b === undefined) tooLarge = true;
          return b;
        }),
    };
    let response: WebhookResponse;
    try {
      response = await this.#o.handler(request);
    } catch (error) {
      this.#o.logger.error('webhook handler failed', { error: error instanceof Error ? error : String(error) });
      response = {
        status: 503,
        body: { status: 'error', reason: 'ServiceUnavailable', message: 'the request could not be handled; retry' },
      };
    }
    const text = `${JSON.stringify(response.body)}\n`;
    res.writeHead(response.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...(tooLarge ? { connection: 'close' } : {}),
      ...(response.headers ?? {}),
    });
    res.end(text);
  }
}

/** The body as text, or undefined when it exceeds `max` bytes (declared or streamed). */
function readBody(req: http.IncomingMessage, max: number): Promise<string | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (error) => {
      if (!over) reject(error);
    });
  });
}
