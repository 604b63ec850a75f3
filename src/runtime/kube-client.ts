// A small typed Kubernetes REST client for what a controller needs: CRUD,
// patches, status, pod logs and streaming watches on paths. The HTTP work
// (connection pool, credentials, retries, request metrics) is
// RestTransport's; see rest-transport.ts for why it is not client-node's
// generated API and for the throughput measurements. Watches are streamed
// here too rather than through client-node's `Watch`, which also builds a
// dispatcher per call, aborts any watch quiet for 30 s and drops lines it
// cannot parse; the liveness of a watch is the Watcher's watchdog's job, and
// a bad line is an error.
//
// API
//   function loadKubeConfig({ kubeconfig?, context?, inCluster? }): ClusterConnection   (kube-config.ts; loads
//            client-node only for exec/auth-provider plugins, proxies and merged files)
//   function resourcePath({ group?, version, plural, namespace?, name?, subresource? }): string
//            "/api/v1/namespaces/ns/configmaps/x", "/apis/batch/v1/jobs", ...
//   type PatchType = 'merge' | 'strategic' | 'json' | 'apply'
//   interface RequestOptions { signal?: AbortSignal; timeoutMs?: number }
//   interface WriteOptions extends RequestOptions { dryRun?: boolean; fieldManager?: string }
//   class KubeClient implements WatchTransport
//     new KubeClient({ kubeConfig, metrics?, maxSockets = 32, requestTimeoutMs = 60_000, userAgent?,
//                      fieldManager = 'trace-operator', authRefreshMs = 30_000, maxRetries = 5, clock?, logger? })
//     get<T>(path, opts?): Promise<T>
//     list<T>(path, params?, opts?): Promise<ObjectList<T>>
//     create<T>(collectionPath, body, opts?): Promise<T>
//     createUnparsed(collectionPath, body, opts?): Promise<void>   the answer's body is not parsed
//     replace<T>(path, body, opts?): Promise<T>            body.metadata.resourceVersion = optimistic lock
//     patch<T>(path, patch, type, opts?): Promise<T>        opts.force for 'apply'
//     delete<T = Status>(path, opts?): Promise<T>           opts.propagationPolicy / preconditions / gracePeriodSeconds
//     replaceStatus<T>(path, body, opts?) / patchStatus<T>(path, patch, type, opts?)
//     getLog(podPath, { container?, limitBytes?, tailLines?, previous? }, opts?): Promise<string>
//     followLog(podPath, { container?, limitBytes?, tailLines?, sinceSeconds? }, signal): AsyncIterable<string>
//     list(path, params, signal) and watch(path, params, signal, protobuf?): AsyncIterable<RawWatchEvent>   (WatchTransport)
//     exec(podPath, { container, command }, opts?): Promise<{ exitCode, stdout, stderr }>   pods/exec (pod-exec.ts)
//     request(method, path, { query?, body?, contentType?, accept? }, opts?): Promise<{ status, text }>
//     readonly server: string; readonly host: string
//     close(): void                                         destroys pooled connections
//
// Errors: responses >= 400 throw `ApiError` (status, reason from the
// server's Status, message); network failures throw an Error naming the
// request with the socket error as `cause`. Retries and request counting:
// see RestTransport.
import type { IncomingMessage } from 'node:http';
import { loadClusterConnection, type ClusterConnection } from './kube-config.ts';
import type { KubeObject, ObjectList, RawWatchEvent, Status } from './objects.ts';
import { execInPod, type ExecOptions, type ExecResult } from './pod-exec.ts';
import { RestTransport, type Query, type RequestOptions, type RestTransportOptions } from './rest-transport.ts';
import type { ListParams, WatchParams, WatchTransport } from './watcher.ts';
import {
  decodeWatchEvent,
  PROTOBUF_TYPE,
  PROTOBUF_WATCH_TYPE,
  protobufFrames,
  type ProtobufDecoder,
} from './watch-protobuf.ts';
import { errorMessage } from '../error-message.ts';

export type { Query, RequestOptions } from './rest-transport.ts';

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface WriteOptions extends RequestOptions {
  dryRun?: boolean;
  fieldManager?: string;
}

export interface PatchOptions extends WriteOptions {
  /** Server-side apply only: take ownership of conflicting fields. */
  force?: boolean;
}

export interface DeleteOptions extends RequestOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

export interface LogOptions {
  container?: string;
  limitBytes?: number;
  tailLines?: number;
  previous?: boolean;
}

export interface KubeClientOptions extends RestTransportOptions {
  /** fieldManager of every write unless the call names one (default 'trace-operator'). */
  fieldManager?: string;
}

export interface LoadKubeConfigOptions {
  /** Path of a kubeconfig file; otherwise $KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
}

/** Loads the API server connection from a kubeconfig or the in-cluster service account (see kube-config.ts). */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): ClusterConnection {
  const connection = loadClusterConnection(options);
  if (connection.getCurrentCluster() === null)
    throw new Error(
      'kubeconfig has no current cluster: pass --kubeconfig or set KUBECONFIG, or run in a pod with a service account',
    );
  return connection;
}

/** The REST path of a resource collection, object or subresource. */
export function resourcePath(r: {
  group?: string;
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}): string {
  const base = r.group === undefined || r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespace === undefined ? '' : `/namespaces/${encodeURIComponent(r.namespace)}`;
  const name = r.name === undefined ? '' : `/${encodeURIComponent(r.name)}`;
  const sub = r.subresource === undefined ? '' : `/${r.subresource}`;
  return `${base}${ns}/${r.plural}${name}${sub}`;
}

/** Typed REST client on a keep-alive connection pool. */
export class KubeClient implements WatchTransport {
  readonly #http: RestTransport;
  readonly #fieldManager: string;
  readonly server: string;
  readonly host: string;

  constructor(options: KubeClientOptions) {
    const { fieldManager, ...transport } = options;
    this.#http = new RestTransport(transport);
    this.#fieldManager = fieldManager ?? 'trace-operator';
    this.server = this.#http.server;
    this.host = this.#http.host;
  }
  async get<T>(path: string, opts: RequestOptions = {}): Promise<T> {
    return this.#json<T>('GET', path, {}, opts);
  }

  async list<T>(
    path: string,
    params: ListParams = {},
    optsOrSignal: RequestOptions | AbortSignal = {},
  ): Promise<ObjectList<T>> {
    const opts = optsOrSignal instanceof AbortSignal ? { signal: optsOrSignal } : optsOrSignal;
    return this.#json<ObjectList<T>>('GET', path, { query: { ...params } }, opts);
  }

  async create<T>(collectionPath: string, body: T, opts: WriteOptions = {}): Promise<T> {
    return this.#json<T>(
      'POST',
      collectionPath,
      { query: this.#writeQuery(opts), body: JSON.stringify(body), contentType: 'application/json' },
      opts,
    );
  }

  /**
   * POSTs an object for a caller that needs only to know it was created: the
   * answer (a Job's is several KB of JSON with managedFields) is not parsed.
   * Parsing the answers the manager never read was about 0.2 ms of CPU per
   * trace in a burst profile (bench/README.md, 2026-12-07, night).
   */
  async createUnparsed(collectionPath: string, body: unknown, opts: WriteOptions = {}): Promise<void> {
    await this.#http.send(
      {
        method: 'POST',
        path: collectionPath,
        query: this.#writeQuery(opts),
        body: JSON.stringify(body),
        contentType: 'application/json',
        accept: 'application/json',
      },
      opts,
    );
  }

  async replace<T>(path: string, body: T, opts: WriteOptions = {}): Promise<T> {
    return this.#json<T>(
      'PUT',
      path,
      { query: this.#writeQuery(opts), body: JSON.stringify(body), contentType: 'application/json' },
      opts,
    );
  }

  async patch<T>(path: string, patch: unknown, type: PatchType, opts: PatchOptions = {}): Promise<T> {
    const query: Query = this.#writeQuery(opts);
    if (type === 'apply' && opts.force === true) query['force'] = true;
    return this.#json<T>(
      'PATCH',
      path,
      { query, body: JSON.stringify(patch), contentType: PATCH_CONTENT_TYPES[type] },
      opts,
    );
  }

  async delete<T = Status | KubeObject>(path: string, opts: DeleteOptions = {}): Promise<T> {
    const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
    if (opts.propagationPolicy !== undefined) body['propagationPolicy'] = opts.propagationPolicy;
    if (opts.gracePeriodSeconds !== undefined) body['gracePeriodSeconds'] = opts.gracePeriodSeconds;
    if (opts.preconditions !== undefined) body['preconditions'] = opts.preconditions;
    if (opts.dryRun === true) body['dryRun'] = ['All'];
    return this.#json<T>('DELETE', path, { body: JSON.stringify(body), contentType: 'application/json' }, opts);
  }

  async replaceStatus<T>(path: string, body: T, opts: WriteOptions = {}): Promise<T> {
    return this.replace<T>(`${path}/status`, body, opts);
  }

  async patchStatus<T>(path: string, patch: unknown, type: PatchType, opts: PatchOptions = {}): Promise<T> {
    return this.patch<T>(`${path}/status`, patch, type, opts);
  }

  async getLog(podPath: string, logOptions: LogOptions = {}, opts: RequestOptions = {}): Promise<string> {
    const query: Query = {
      container: logOptions.container,
      limitBytes: logOptions.limitBytes,
      tailLines: logOptions.tailLines,
      previous: logOptions.previous === true ? true : undefined,
    };
    const res = await this.request('GET', `${podPath}/log`, { query, accept: 'text/plain, */*' }, opts);
    return res.text;
  }

  /** Follows a container's log (`follow=true`): text chunks as the kubelet sends them, until the container ends or the signal aborts. */
  async *followLog(
    podPath: string,
    logOptions: LogOptions & { sinceSeconds?: number },
    signal: AbortSignal,
  ): AsyncGenerator<string, void, undefined> {
    const query: Query = {
      follow: true,
      container: logOptions.container,
      limitBytes: logOptions.limitBytes,
      tailLines: logOptions.tailLines,
      sinceSeconds: logOptions.sinceSeconds,
    };
    const res = await this.#http.stream(
      { method: 'GET', path: `${podPath}/log`, query, accept: 'text/plain, */*' },
      signal,
    );
    res.setEncoding('utf8');
    try {
      for await (const chunk of res as AsyncIterable<string>) yield chunk;
    } catch (error: unknown) {
      if (signal.aborted) return;
      throw new Error(`following the log of ${podPath}: ${errorMessage(error)}`, {
        cause: error,
      });
    } finally {
      res.destroy();
    }
  }

  /**
   * Streams watch events until the server ends the watch, the signal aborts, or
   * the connection fails. With `protobuf` it asks for the protobuf stream and
   * reads each object with it; a JSON answer is read as JSON all the same.
   */
  async *watch(
    path: string,
    params: WatchParams,
    signal: AbortSignal,
    protobuf?: ProtobufDecoder,
  ): AsyncGenerator<RawWatchEvent, void, undefined> {
    const res = await this.#http.stream(
      {
        method: 'GET',
        path,
        query: { ...params, watch: true },
        accept: protobuf === undefined ? 'application/json' : `${PROTOBUF_WATCH_TYPE}, application/json;q=0.5`,
      },
      signal,
    );
    const inProtobuf = protobuf !== undefined && (res.headers['content-type'] ?? '').startsWith(PROTOBUF_TYPE);
    try {
      if (inProtobuf) {
        for await (const frame of protobufFrames(res as AsyncIterable<Buffer>)) yield decodeWatchEvent(frame, protobuf);
      } else {
        yield* jsonWatchEvents(res, path, signal);
      }
      if (signal.aborted) throw signal.reason;
    } catch (error: unknown) {
      if (signal.aborted) throw signal.reason;
      throw error instanceof Error && error.message.startsWith('watch ')
        ? error
        : new Error(`watch ${path}: the stream broke: ${errorMessage(error)}`, {
            cause: error,
          });
    } finally {
      res.destroy();
    }
  }

  /** Sends one request and returns the status and body text; throws ApiError for >= 400. */
  async request(
    method: string,
    path: string,
    req: { query?: Query; body?: string; contentType?: string; accept?: string },
    opts: RequestOptions = {},
  ): Promise<{ status: number; text: string }> {
    const res = await this.#http.send({ method, path, ...req }, opts);
    return { status: res.status, text: res.text };
  }

  /** Runs a command in a pod's container (pods/exec) and waits for its exit code; see pod-exec.ts. */
  exec(podPath: string, options: ExecOptions, opts: RequestOptions = {}): Promise<ExecResult> {
    return execInPod((...args) => this.#http.webSocket(...args), podPath, options, opts);
  }

  /** Destroys pooled connections (open watches end with an error). */
  close(): void {
    this.#http.close();
  }

  #writeQuery(opts: WriteOptions): Query {
    return { fieldManager: opts.fieldManager ?? this.#fieldManager, dryRun: opts.dryRun === true ? 'All' : undefined };
  }

  async #json<T>(
    method: string,
    path: string,
    req: { query?: Query; body?: string; contentType?: string },
    opts: RequestOptions,
  ): Promise<T> {
    const res = await this.#http.send({ method, path, ...req, accept: 'application/json' }, opts);
    try {
      return JSON.parse(res.text) as T;
    } catch (error: unknown) {
      throw new Error(`${method} ${path}: the API server answered ${res.status} with a body that is not JSON`, {
        cause: error,
      });
    }
  }
}

/** The events of a JSON watch stream: one object per line. */
async function* jsonWatchEvents(
  res: IncomingMessage,
  path: string,
  signal: AbortSignal,
): AsyncGenerator<RawWatchEvent, void, undefined> {
  res.setEncoding('utf8');
  let buffer = '';
  for await (const chunk of res as AsyncIterable<string>) {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line === '') continue;
      yield parseWatchLine(line, path);
    }
  }
  if (signal.aborted) throw signal.reason;
  const rest = buffer.trim();
  if (rest !== '') yield parseWatchLine(rest, path);
}

function parseWatchLine(line: string, path: string): RawWatchEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error: unknown) {
    throw new Error(`watch ${path}: a line of the stream is not JSON: ${line.slice(0, 200)}`, { cause: error });
  }
  const type = (parsed as { type?: unknown }).type;
  if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK' && type !== 'ERROR') {
    throw new Error(`watch ${path}: unknown event type ${JSON.stringify(type)}`);
  }
  return { type, object: (parsed as { object?: unknown }).object };
}
