// The Alertmanager webhook under load, against the plain TraceJob create path
// in the same run and on the same manager: N notifications (one distinct
// alert each, posted C at a time with a ServiceAccount token, so every one
// pays TokenReview-cache lookups, the firing lock and a create) against N
// TraceJob creates by a client; for each, the time until the TraceJob's Job
// exists (seen on a watch). Figures are ratios webhook / plain; nothing fails
// on a number.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeClient } from '../../src/runtime/kube-client.ts';
import { resourcePath } from '../../src/runtime/kube-client.ts';
import { paths } from './kube.ts';
import { formatMs, formatNumber, formatRatio, ratio, renderTable, summarize, type Summary } from './stats.ts';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.ts');
const GROUP = 'observe.alexeldeib.xyz';
const TRACEJOB_ANNOTATION = `${GROUP}/tracejob`;

export interface WebhookBenchResult {
  n: number;
  concurrency: number;
  webhook: { perSecond: number; toJob: Summary };
  plain: { perSecond: number; toJob: Summary };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++];
        if (item !== undefined) await work(item);
      }
    }),
  );
}

/** Watches Jobs in `namespace` and records when each TraceJob's Job first appears. */
function watchJobs(client: KubeClient, namespace: string, signal: AbortSignal): Map<string, number> {
  const seen = new Map<string, number>();
  void (async () => {
    try {
      for await (const event of client.watch(
        resourcePath({ group: 'batch', version: 'v1', plural: 'jobs', namespace }),
        { resourceVersion: '', allowWatchBookmarks: false, timeoutSeconds: 3600 },
        signal,
      )) {
        const meta = (event.object as { metadata?: { annotations?: Record<string, string> } }).metadata;
        const owner = meta?.annotations?.[TRACEJOB_ANNOTATION];
        if (owner !== undefined && !seen.has(owner)) seen.set(owner, performance.now());
      }
    } catch {
      // aborted
    }
  })();
  return seen;
}

async function until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`webhook bench: timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runWebhookBench(
  client: KubeClient,
  options: { n: number; concurrency: number; log: (line: string) => void },
): Promise<WebhookBenchResult> {
  const { n, concurrency, log } = options;
  const ns = `bench-webhook-${randomBytes(3).toString('hex')}`;
  const core = (plural: string, name?: string) =>
    resourcePath({ version: 'v1', plural, namespace: ns, ...(name === undefined ? {} : { name }) });
  await client.create(resourcePath({ version: 'v1', plural: 'namespaces' }), { metadata: { name: ns } });
  const stop = new AbortController();
  let manager: ReturnType<typeof execa> | undefined;
  try {
    await client.create(core('serviceaccounts'), { metadata: { name: 'alertmanager' } });
    await client.create(
      resourcePath({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespace: ns }),
      {
        metadata: { name: 'fire' },
        rules: [{ apiGroups: [GROUP], resources: ['tracetriggers/alerts'], verbs: ['create'] }],
      },
    );
    await client.create(
      resourcePath({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespace: ns }),
      {
        metadata: { name: 'fire' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'fire' },
        subjects: [{ kind: 'ServiceAccount', name: 'alertmanager', namespace: ns }],
      },
    );
    const tokenResponse = await client.create<{ status?: { token?: string } }>(
      `${core('serviceaccounts', 'alertmanager')}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } } as object,
    );
    const token = tokenResponse.status?.token ?? '';
    const template = { spec: { program: 'BEGIN { exit(); }', deadline: 60 } };
    await client.create(resourcePath({ group: GROUP, version: 'v1alpha1', plural: 'tracetriggers', namespace: ns }), {
      apiVersion: `${GROUP}/v1alpha1`,
      kind: 'TraceTrigger',
      metadata: { name: 'bench' },
      spec: { alert: { matchers: ['alertname="Bench"'] }, cooldownSeconds: 0, maxActive: 1000, template },
    });
    const port = await freePort();
    manager = execa(
      process.execPath,
      [
        CLI,
        'manager',
        `--kubeconfig=${paths.kubeconfig}`,
        `--watch-namespaces=${ns}`,
        `--leader-election-namespace=${ns}`,
        '--metrics-bind-address=127.0.0.1:0',
        '--health-probe-bind-address=127.0.0.1:0',
        `--webhook-bind-address=127.0.0.1:${port}`,
        '--webhook-insecure=true',
        '--max-triggered-per-minute=100000',
        '--log-level=warn',
      ],
      { reject: false },
    );
    const url = `http://127.0.0.1:${port}/alertmanager/namespaces/${ns}/tracetriggers/bench`;
    const post = async (body: object): Promise<Response> =>
      fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const warm = { version: '4', status: 'firing', alerts: [] };
    const deadline = Date.now() + 60_000;
    while (
      (await post(warm)
        .then((r) => r.status)
        .catch(() => 0)) !== 200
    ) {
      if (Date.now() > deadline) throw new Error('webhook bench: the manager never answered 200');
      await new Promise((r) => setTimeout(r, 250));
    }
    const seen = watchJobs(client, ns, stop.signal);
    await new Promise((r) => setTimeout(r, 500));

    log(`webhook bench: ${n} notifications, ${concurrency} in flight`);
    const sentAt = new Map<string, number>();
    const indexes = Array.from({ length: n }, (_, i) => i);
    let start = performance.now();
    await pool(indexes, concurrency, async (i) => {
      const t0 = performance.now();
      const res = await post({
        version: '4',
        status: 'firing',
        alerts: [
          {
            status: 'firing',
            labels: { alertname: 'Bench', node: `kwok-node-${i % 2}`, disk: `d${i}` },
            startsAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
            fingerprint: `f${i}`,
          },
        ],
      });
      const summary = (await res.json()) as { created?: { name: string }[] };
      for (const c of summary.created ?? []) sentAt.set(c.name, t0);
    });
    const webhookSeconds = (performance.now() - start) / 1000;
    await until(`${sentAt.size} triggered Jobs exist`, () => [...sentAt.keys()].every((k) => seen.has(k)), 300_000);

    log(`webhook bench: ${n} plain TraceJob creates, ${concurrency} in flight`);
    const createdAt = new Map<string, number>();
    start = performance.now();
    await pool(indexes, concurrency, async (i) => {
      const name = `plain-${i}`;
      createdAt.set(name, performance.now());
      await client.create(resourcePath({ group: GROUP, version: 'v1alpha1', plural: 'tracejobs', namespace: ns }), {
        apiVersion: `${GROUP}/v1alpha1`,
        kind: 'TraceJob',
        metadata: { name },
        spec: { ...template.spec, hostname: `kwok-node-${i % 2}` },
      });
    });
    const plainSeconds = (performance.now() - start) / 1000;
    await until(`${n} plain Jobs exist`, () => [...createdAt.keys()].every((k) => seen.has(k)), 300_000);
    const lat = (from: Map<string, number>) => [...from].map(([k, t0]) => (seen.get(k) ?? t0) - t0);
    return {
      n,
      concurrency,
      webhook: { perSecond: n / webhookSeconds, toJob: summarize(lat(sentAt)) },
      plain: { perSecond: n / plainSeconds, toJob: summarize(lat(createdAt)) },
    };
  } finally {
    stop.abort();
    manager?.kill('SIGTERM');
    await manager;
    await client.delete(resourcePath({ version: 'v1', plural: 'namespaces', name: ns })).catch(() => undefined);
  }
}

export function webhookReport(r: WebhookBenchResult): string {
  return renderTable([
    ['', 'per second', 'to Job p50', 'to Job p99'],
    [
      `webhook (${r.n} notifications)`,
      formatNumber(r.webhook.perSecond),
      formatMs(r.webhook.toJob.p50),
      formatMs(r.webhook.toJob.p99),
    ],
    [
      `plain TraceJob creates (${r.n})`,
      formatNumber(r.plain.perSecond),
      formatMs(r.plain.toJob.p50),
      formatMs(r.plain.toJob.p99),
    ],
    [
      'ratio webhook / plain',
      formatRatio(ratio(r.webhook.perSecond, r.plain.perSecond)),
      formatRatio(ratio(r.webhook.toJob.p50, r.plain.toJob.p50)),
      formatRatio(ratio(r.webhook.toJob.p99, r.plain.toJob.p99)),
    ],
  ]);
}
