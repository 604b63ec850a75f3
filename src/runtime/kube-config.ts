// Where the API server is and how to authenticate to it, without loading
// @kubernetes/client-node unless a kubeconfig needs it. Hand-written because
// importing client-node (even only its KubeConfig) costs about 90 MB of RSS
// (design notes §8: Node idles at ~43 MB, ~130 MB with client-node), while
// what a manager needs in a cluster is two files: the ServiceAccount token
// and CA. So:
// - in-cluster (KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount files) and
//   kubeconfigs whose user has a client certificate, a token, a token file
//   or a username/password are read here;
// - a kubeconfig whose user runs an exec or auth-provider plugin, whose
//   cluster needs a proxy, or a KUBECONFIG naming several files (which
//   client-node merges) is handed to client-node's KubeConfig, imported on
//   the first request only.
//
// API
//   interface ClusterConnection { getCurrentCluster(): { server, proxyUrl? } | null;
//                                 applyToHTTPSOptions(opts): Promise<void> }   what RestTransport needs
//                                 (client-node's KubeConfig satisfies it too)
//   function loadClusterConnection({ kubeconfig?, context?, inCluster?, env?, home? }): ClusterConnection
//
// Guarantees: credentials from files (token, tokenFile, the ServiceAccount
// token) are read again on every applyToHTTPSOptions, so rotated tokens are
// picked up (RestTransport calls it every authRefreshMs). Every error names
// the file or field that is wrong.
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { errorMessage } from '../error-message.ts';

/** The kubeconfig context's user and default namespace, for messages and defaults. */
export interface ContextInfo {
  user?: string | undefined;
  namespace?: string | undefined;
}

export interface ClusterConnection {
  getCurrentCluster(): { server: string; proxyUrl?: string | undefined } | null;
  /** What the kubeconfig context names (absent where nothing does, as in-cluster). */
  readonly context?: ContextInfo;
  /** Sets TLS material (ca, cert, key, rejectUnauthorized, servername) and auth headers on `opts`. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

export interface LoadClusterConnectionOptions {
  /** Path of a kubeconfig file (or several, joined by the path delimiter). */
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  env?: Readonly<Record<string, string | undefined>>;
  home?: string;
  /** Root of the ServiceAccount files (tests). */
  serviceAccountDir?: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Source = { kind: 'data'; value: Buffer } | { kind: 'file'; path: string };

interface Credentials {
  ca?: Source;
  cert?: Source;
  key?: Source;
  skipTLSVerify: boolean;
  tlsServerName?: string;
  token?: string;
  tokenFile?: string;
  basic?: { username: string; password: string };
}

function read(source: Source | undefined): Buffer | undefined {
  if (source === undefined) return undefined;
  if (source.kind === 'data') return source.value;
  try {
    return readFileSync(source.path);
  } catch (error) {
    throw new Error(`cannot read ${source.path}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/** Credentials read from files and fields; no plugin. */
class SimpleConnection implements ClusterConnection {
  readonly #server: string;
  readonly #creds: Credentials;
  readonly context: ContextInfo;

  constructor(server: string, creds: Credentials, context: ContextInfo = {}) {
    this.#server = server;
    this.#creds = creds;
    this.context = context;
  }

  getCurrentCluster(): { server: string } {
    return { server: this.#server };
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const c = this.#creds;
    const ca = read(c.ca);
    const cert = read(c.cert);
    const key = read(c.key);
    if (ca !== undefined) opts.ca = ca;
    if (cert !== undefined) opts.cert = cert;
    if (key !== undefined) opts.key = key;
    if (c.skipTLSVerify) opts.rejectUnauthorized = false;
    if (c.tlsServerName !== undefined) opts.servername = c.tlsServerName;
    const headers = (opts.headers ??= {}) as Record<string, string>;
    const token = c.tokenFile === undefined ? c.token : read({ kind: 'file', path: c.tokenFile })?.toString('utf8');
    if (token !== undefined && token.trim() !== '') headers['Authorization'] = `Bearer ${token.trim()}`;
    else if (c.basic !== undefined) opts.auth = `${c.basic.username}:${c.basic.password}`;
  }
}

/** A kubeconfig only client-node can serve (plugins, proxies, merged files): loaded on first use. */
class ClientNodeConnection implements ClusterConnection {
  readonly #files: string[];
  readonly #context: string | undefined;
  readonly #cluster: { server: string; proxyUrl?: string | undefined };
  #loaded: Promise<ClusterConnection> | undefined;
  readonly context: ContextInfo;

  constructor(
    files: string[],
    context: string | undefined,
    cluster: { server: string; proxyUrl?: string },
    info: ContextInfo = {},
  ) {
    this.#files = files;
    this.#context = context;
    this.#cluster = cluster;
    this.context = info;
  }

  getCurrentCluster(): { server: string; proxyUrl?: string | undefined } {
    return this.#cluster;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    this.#loaded ??= (async () => {
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      if (this.#files.length === 1) kc.loadFromFile(this.#files[0] ?? '');
      else if (process.env['KUBECONFIG'] === this.#files.join(path.delimiter)) kc.loadFromDefault();
      else throw new Error('several kubeconfig files are merged only from $KUBECONFIG; pass one file to --kubeconfig');
      if (this.#context !== undefined) kc.setCurrentContext(this.#context);
      return kc;
    })();
    await (await this.#loaded).applyToHTTPSOptions(opts);
  }
}

type Yaml = Record<string, unknown>;

function record(value: unknown): Yaml {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Yaml) : {};
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function named(list: unknown, name: string, what: string, file: string): Yaml {
  const entry = (Array.isArray(list) ? list : []).map(record).find((e) => e['name'] === name);
  if (entry === undefined) throw new Error(`kubeconfig ${file}: no ${what} named '${name}'`);
  return record(entry[what]);
}

function source(data: unknown, file: unknown, dir: string, field: string, kubeconfig: string): Source | undefined {
  const inline = str(data);
  if (inline !== undefined) {
    const value = Buffer.from(inline, 'base64');
    if (value.length === 0) throw new Error(`kubeconfig ${kubeconfig}: ${field}-data is not base64`);
    return { kind: 'data', value };
  }
  const p = str(file);
  return p === undefined ? undefined : { kind: 'file', path: path.resolve(dir, p) };
}

function fromKubeconfig(file: string, contextName: string | undefined): ClusterConnection {
  let doc: Yaml;
  try {
    doc = record(parseYaml(readFileSync(file, 'utf8')));
  } catch (error) {
    throw new Error(`cannot load kubeconfig ${file}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const contexts = (Array.isArray(doc['contexts']) ? doc['contexts'] : []).map(record);
  const name = contextName ?? str(doc['current-context']);
  if (name === undefined)
    throw new Error(
      `kubeconfig ${file} has no current-context: pass --kubeconfig with one, or set current-context (kubectl config use-context)`,
    );
  const entry = contexts.find((c) => c['name'] === name);
  if (entry === undefined)
    throw new Error(
      `kubeconfig ${file} has no context '${name}' (known: ${contexts.map((c) => String(c['name'])).join(', ')})`,
    );
  const context = record(entry['context']);
  const cluster = named(doc['clusters'], str(context['cluster']) ?? '', 'cluster', file);
  const server = str(cluster['server']);
  if (server === undefined)
    throw new Error(`kubeconfig ${file}: cluster '${String(context['cluster'])}' has no server`);
  const userName = str(context['user']);
  const user = userName === undefined ? {} : named(doc['users'], userName, 'user', file);
  const info: ContextInfo = { user: userName, namespace: str(context['namespace']) };
  const proxyUrl = str(cluster['proxy-url']);
  if (user['exec'] !== undefined || user['auth-provider'] !== undefined || proxyUrl !== undefined)
    return new ClientNodeConnection([file], name, { server, ...(proxyUrl === undefined ? {} : { proxyUrl }) }, info);

  const dir = path.dirname(file);
  const ca = source(
    cluster['certificate-authority-data'],
    cluster['certificate-authority'],
    dir,
    'certificate-authority',
    file,
  );
  const cert = source(user['client-certificate-data'], user['client-certificate'], dir, 'client-certificate', file);
  const key = source(user['client-key-data'], user['client-key'], dir, 'client-key', file);
  const token = str(user['token']);
  const tokenFile = str(user['tokenFile']);
  const username = str(user['username']);
  const password = str(user['password']);
  const tlsServerName = str(cluster['tls-server-name']);
  return new SimpleConnection(
    server,
    {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      skipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
      ...(tlsServerName === undefined ? {} : { tlsServerName }),
      ...(token === undefined ? {} : { token }),
      ...(tokenFile === undefined ? {} : { tokenFile: path.resolve(dir, tokenFile) }),
      ...(username === undefined || password === undefined ? {} : { basic: { username, password } }),
    },
    info,
  );
}

function inCluster(env: Readonly<Record<string, string | undefined>>, dir: string): ClusterConnection {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (host === undefined || host === '' || port === undefined || port === '')
    throw new Error(
      'no kubeconfig and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset): pass --kubeconfig or set KUBECONFIG',
    );
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return new SimpleConnection(server, {
    ca: { kind: 'file', path: path.join(dir, 'ca.crt') },
    skipTLSVerify: false,
    tokenFile: path.join(dir, 'token'),
  });
}

/**
 * The API server connection from, in order: `kubeconfig` (or $KUBECONFIG),
 * ~/.kube/config, the in-cluster ServiceAccount (the order of kubectl and
 * client-node's loadFromDefault). `inCluster` skips the kubeconfig search.
 */
export function loadClusterConnection(options: LoadClusterConnectionOptions = {}): ClusterConnection {
  const env = options.env ?? process.env;
  const saDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (options.inCluster === true) return inCluster(env, saDir);
  const configured = options.kubeconfig ?? env['KUBECONFIG'];
  const files = (configured ?? '').split(path.delimiter).filter((f) => f !== '');
  if (files.length > 1) {
    // Several files are merged by client-node; the server is known only once it has loaded them.
    const first = fromKubeconfig(files.find((f) => existsSync(f)) ?? files[0] ?? '', options.context);
    const cluster = first.getCurrentCluster();
    return new ClientNodeConnection(files, options.context, cluster ?? { server: '' }, first.context);
  }
  if (files.length === 1) return fromKubeconfig(files[0] ?? '', options.context);
  const home = path.join(options.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfig(home, options.context);
  return inCluster(env, saDir);
}
