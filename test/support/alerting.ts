// The real alerting pipeline for trigger tests: Debian's prometheus and
// prometheus-alertmanager started on loopback with temporary config and data
// directories, a /metrics target whose values the test sets, a self-signed
// serving certificate for the manager's webhook, and ServiceAccount tokens
// for Alertmanager's credentials_file.
import { execa, type ResultPromise } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { scratchDir } from './scratch-dir.ts';
import { stringify } from 'yaml';
import { freePort } from '../cluster/processes.ts';
import { kubectl } from './cluster.ts';
import { eventually } from './eventually.ts';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';
export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager';

export interface Proc {
  url: string;
  logs(): string;
  stop(): Promise<void>;
}

function spawn(bin: string, args: string[]): { child: ResultPromise; logs: () => string } {
  let output = '';
  const child = execa(bin, args, { reject: false, all: true });
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { child, logs: () => output };
}

async function waitReady(url: string, what: string, logs: () => string): Promise<void> {
  try {
    await eventually(`${what} is ready`, async () => ((await fetch(url)).ok ? true : undefined), 30_000, 200);
  } catch (error) {
    throw new Error(`${what} did not become ready: ${logs().slice(-2000)}`, { cause: error });
  }
}

/** A /metrics endpoint serving whatever series the test sets. */
export async function startMetricsTarget(): Promise<{
  address: string;
  set(series: Record<string, number>): void;
  stop(): Promise<void>;
}> {
  let series: Record<string, number> = {};
  const server = http.createServer((_req, res) => {
    const body = Object.entries(series)
      .map(([name, value]) => `${name} ${value}`)
      .join('\n');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(`${body}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('metrics target has no address');
  return {
    address: `127.0.0.1:${address.port}`,
    set: (next) => {
      series = { ...next };
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface PrometheusOptions {
  target: string;
  alertmanagers: string[];
  rules: object[];
}

export async function startPrometheus(options: PrometheusOptions): Promise<Proc> {
  const dir = await scratchDir('prometheus');
  const port = await freePort();
  await writeFile(
    path.join(dir, 'rules.yml'),
    stringify({ groups: [{ name: 'test', interval: '1s', rules: options.rules }] }),
  );
  await writeFile(
    path.join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [path.join(dir, 'rules.yml')],
      alerting: { alertmanagers: [{ static_configs: [{ targets: options.alertmanagers }] }] },
      scrape_configs: [{ job_name: 'disk', static_configs: [{ targets: [options.target] }] }],
    }),
  );
  const { child, logs } = spawn(PROMETHEUS_BIN, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--rules.alert.resend-delay=1s',
    '--log.level=warn',
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/-/ready`, 'prometheus', logs);
  return {
    url,
    logs,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

export interface WebhookReceiver {
  url: string;
  tokenFile: string;
  caFile?: string;
}

export interface AlertmanagerOptions {
  receiver: WebhookReceiver;
  groupBy?: string[];
  groupInterval?: string;
  repeatInterval?: string;
  /** HA: this replica's cluster port and its peers' ("127.0.0.1:port"). */
  cluster?: { port: number; peers: string[] };
  port?: number;
}

export async function startAlertmanager(options: AlertmanagerOptions): Promise<Proc & { port: number }> {
  const dir = await scratchDir('alertmanager');
  const port = options.port ?? (await freePort());
  await writeFile(
    path.join(dir, 'alertmanager.yml'),
    stringify({
      route: {
        receiver: 'trace',
        group_by: options.groupBy ?? ['alertname', 'node'],
        group_wait: '1s',
        group_interval: options.groupInterval ?? '1s',
        repeat_interval: options.repeatInterval ?? '2s',
      },
      receivers: [
        {
          name: 'trace',
          webhook_configs: [
            {
              url: options.receiver.url,
              send_resolved: true,
              http_config: {
                authorization: { type: 'Bearer', credentials_file: options.receiver.tokenFile },
                ...(options.receiver.caFile === undefined ? {} : { tls_config: { ca_file: options.receiver.caFile } }),
              },
            },
          ],
        },
      ],
    }),
  );
  const cluster =
    options.cluster === undefined
      ? ['--cluster.listen-address=']
      : [
          `--cluster.listen-address=127.0.0.1:${options.cluster.port}`,
          `--cluster.advertise-address=127.0.0.1:${options.cluster.port}`,
          ...options.cluster.peers.map((p) => `--cluster.peer=${p}`),
          '--cluster.gossip-interval=100ms',
          '--cluster.pushpull-interval=1s',
          '--cluster.settle-timeout=2s',
          // Each replica waits position x peer-timeout before sending, to let the first one's
          // notification log gossip over; a short one makes both replicas deliver, as in a slow network.
          '--cluster.peer-timeout=50ms',
        ];
  const { child, logs } = spawn(ALERTMANAGER_BIN, [
    `--config.file=${path.join(dir, 'alertmanager.yml')}`,
    `--storage.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=debug',
    ...cluster,
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/-/ready`, 'alertmanager', logs);
  return {
    url,
    port,
    logs,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

/**
 * Writes a self-signed certificate for `cn` to `dir`/tls.crt and `dir`/tls.key,
 * as the webhook reads them; with `ip`, that address is its subjectAltName.
 */
export async function writeSelfSignedCert(dir: string, cn: string, ip?: string): Promise<void> {
  const made = await execa(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      ...(ip === undefined ? [] : ['-addext', `subjectAltName=IP:${ip}`]),
      '-keyout',
      path.join(dir, 'tls.key'),
      '-out',
      path.join(dir, 'tls.crt'),
    ],
    { reject: false },
  );
  if (made.exitCode !== 0) throw new Error(`openssl could not make a certificate: ${String(made.stderr)}`);
}

/** A self-signed certificate for 127.0.0.1 in a new directory as the webhook reads it (tls.crt, tls.key). */
export async function selfSignedCert(): Promise<{ dir: string; caFile: string }> {
  const dir = await scratchDir('webhook-cert');
  await writeSelfSignedCert(dir, '127.0.0.1', '127.0.0.1');
  return { dir, caFile: path.join(dir, 'tls.crt') };
}

/** Creates a ServiceAccount and writes a token of it to a file (for credentials_file). */
export async function serviceAccountToken(namespace: string, name: string): Promise<{ token: string; file: string }> {
  const created = await kubectl(['create', 'serviceaccount', name], { namespace });
  if (created.exitCode !== 0 && !created.stderr.includes('AlreadyExists'))
    throw new Error(`could not create ServiceAccount ${namespace}/${name}: ${created.stderr}`);
  const token = await kubectl(['create', 'token', name, '--duration=2h'], { namespace });
  if (token.exitCode !== 0) throw new Error(`could not get a token for ${namespace}/${name}: ${token.stderr}`);
  const dir = await scratchDir('token');
  const file = path.join(dir, 'token');
  await writeFile(file, token.stdout.trim(), { mode: 0o600 });
  return { token: token.stdout.trim(), file };
}

/**
 * Installs config/rbac's tracetrigger-alerts ClusterRole under a name of the
 * test's own and binds it to a ServiceAccount in `namespace`.
 */
export async function allowToFire(namespace: string, serviceAccount: string): Promise<() => Promise<void>> {
  const roleFile = path.resolve(import.meta.dirname, '..', '..', 'config', 'rbac', 'tracetrigger_alerts_role.yaml');
  const role = (await readFile(roleFile, 'utf8')).replace(
    /name: tracetrigger-alerts/,
    `name: tracetrigger-alerts-${namespace}`,
  );
  const applied = await kubectl(['apply', '-f', '-'], { input: role });
  if (applied.exitCode !== 0)
    throw new Error(`could not install the tracetrigger-alerts ClusterRole: ${applied.stderr}`);
  const bound = await kubectl(
    [
      'create',
      'rolebinding',
      'alertmanager-fires-traces',
      `--clusterrole=tracetrigger-alerts-${namespace}`,
      `--serviceaccount=${namespace}:${serviceAccount}`,
    ],
    { namespace },
  );
  if (bound.exitCode !== 0) throw new Error(`could not bind tracetrigger-alerts: ${bound.stderr}`);
  return async () => {
    await kubectl(['delete', 'clusterrole', `tracetrigger-alerts-${namespace}`, '--ignore-not-found', '--wait=false']);
  };
}

/** The webhook address the manager logged ("webhook listening"). */
export function webhookAddressOf(logs: string): string {
  const line = logs.split('\n').find((l) => l.includes('"webhook listening"'));
  if (line === undefined) throw new Error(`the manager did not log a webhook address:\n${logs.slice(-2000)}`);
  return (JSON.parse(line) as { address: string }).address;
}

/** An Alertmanager webhook payload (version 4) for direct posts. */
export function payload(
  alerts: {
    labels: Record<string, string>;
    status?: 'firing' | 'resolved';
    startsAt?: string;
    fingerprint: string;
    annotations?: Record<string, string>;
  }[],
): object {
  return {
    version: '4',
    groupKey: '{}:{alertname="x"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'trace',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts: alerts.map((a) => ({
      status: a.status ?? 'firing',
      labels: a.labels,
      annotations: a.annotations ?? {},
      startsAt: a.startsAt ?? '2026-12-01T10:00:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=x',
      fingerprint: a.fingerprint,
    })),
  };
}
