// Alert-triggered tracing end to end with the real programs: Debian's
// prometheus scrapes a target this test serves, an alerting rule fires,
// prometheus-alertmanager posts to the manager's webhook over TLS with a
// ServiceAccount token (credentials_file), and a TraceJob appears for the
// node the alert names, runs (kwok plays the node) and keeps its result.
// Then an HA pair of Alertmanagers with short intervals delivers the same
// alert many times, and exactly one TraceJob exists.
import test from 'ava';
import type { TraceJob } from '../../src/tracejob/index.ts';
import type { TraceTrigger } from '../../src/tracetrigger/index.ts';
import { freePort } from '../cluster/processes.ts';
import {
  allowToFire,
  selfSignedCert,
  serviceAccountToken,
  startAlertmanager,
  startMetricsTarget,
  startPrometheus,
  type Proc,
} from '../support/alerting.ts';
import { clusterAvailable, createTestNamespace } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, metricValue, startManager, type RunningManager } from '../support/manager.ts';
import { finishTracePod, histogramResult } from '../support/trace-pod.ts';
import { apply, getJson, listJson, waitForPhase, waitForTracePod } from '../support/tracejobs.ts';

let ns = '';
let manager: RunningManager;
let webhook = '';
let tokenFile = '';
let caFile = '';
const cleanups: (() => Promise<void>)[] = [];

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  const namespace = await createTestNamespace('ttr-am');
  ns = namespace.name;
  cleanups.push(namespace.cleanup);
  const token = await serviceAccountToken(ns, 'alertmanager');
  tokenFile = token.file;
  cleanups.push(await allowToFire(ns, 'alertmanager'));
  const cert = await selfSignedCert();
  caFile = cert.caFile;
  const port = await freePort();
  manager = await startManager({
    namespaces: [ns],
    args: [`--webhook-bind-address=127.0.0.1:${port}`, `--webhook-cert-dir=${cert.dir}`],
  });
  webhook = `https://127.0.0.1:${port}`;
});

test.after.always(async () => {
  await manager?.stop();
  for (const c of cleanups) await c();
});

function trigger(name: string, alertname: string, spec: Record<string, unknown> = {}): TraceTrigger {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name, namespace: ns },
    spec: {
      alert: { matchers: [`alertname="${alertname}"`, 'severity=~"warning|critical"'] },
      cooldownSeconds: 20,
      template: {
        metadata: { labels: { team: 'storage' } },
        spec: {
          program: 'tracepoint:block:block_rq_issue { @start[args.dev] = nsecs; } END { clear(@start); }',
          deadline: 600,
        },
      },
      ...spec,
    },
  } as TraceTrigger;
}

const triggeredJobs = (name: string): Promise<TraceJob[]> =>
  listJson<TraceJob>(ns, 'tracejobs', `observe.alexeldeib.xyz/tracetrigger=${name}`);
const getTrigger = (name: string): Promise<TraceTrigger | undefined> => getJson<TraceTrigger>(ns, 'tracetrigger', name);

async function waitReady(name: string): Promise<TraceTrigger> {
  return eventually(`TraceTrigger ${name} is Ready`, async () => {
    const tt = await getTrigger(name);
    return tt?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True') === undefined
      ? undefined
      : tt;
  });
}

async function alertingPipeline(
  rule: { alert: string; metric: string },
  alertmanagers: { count: 1 | 2 },
): Promise<{
  target: Awaited<ReturnType<typeof startMetricsTarget>>;
  ams: (Proc & { port: number })[];
  stop: () => Promise<void>;
}> {
  const target = await startMetricsTarget();
  const receiver = {
    url: `${webhook}/alertmanager/namespaces/${ns}/tracetriggers/${rule.alert.toLowerCase()}`,
    tokenFile,
    caFile,
  };
  const ams: (Proc & { port: number })[] = [];
  if (alertmanagers.count === 1) ams.push(await startAlertmanager({ receiver }));
  else {
    const [c1, c2] = [await freePort(), await freePort()];
    ams.push(await startAlertmanager({ receiver, cluster: { port: c1, peers: [`127.0.0.1:${c2}`] } }));
    ams.push(await startAlertmanager({ receiver, cluster: { port: c2, peers: [`127.0.0.1:${c1}`] } }));
  }
  const prometheus = await startPrometheus({
    target: target.address,
    alertmanagers: ams.map((am) => `127.0.0.1:${am.port}`),
    rules: [
      {
        alert: rule.alert,
        expr: `${rule.metric} > 0.5`,
        labels: { severity: 'warning' },
        annotations: { summary: `disk latency on {{ $labels.node }} is {{ $value }}s` },
      },
    ],
  });
  return {
    target,
    ams,
    stop: async () => {
      await prometheus.stop();
      for (const am of ams) await am.stop();
      await target.stop();
    },
  };
}

async function webhookDeliveries(am: Proc): Promise<number> {
  const text = await (await fetch(`${am.url}/metrics`)).text();
  return metricValue(text, 'alertmanager_notifications_total', { integration: 'webhook' });
}

test.serial(
  'a firing alert becomes one TraceJob on the node it names, which runs and keeps its result; a later firing after the cooldown makes a second',
  async (t) => {
    await apply(ns, trigger('nodedisklatencyhigh', 'NodeDiskLatencyHigh'));
    const ready = await waitReady('nodedisklatencyhigh');
    t.is(ready.status?.webhookPath, `/alertmanager/namespaces/${ns}/tracetriggers/nodedisklatencyhigh`);
    const pipeline = await alertingPipeline(
      { alert: 'NodeDiskLatencyHigh', metric: 'disk_latency_seconds' },
      { count: 1 },
    );
    t.teardown(pipeline.stop);
    // The hostname label of kwok-node-1, as node-exporter on that host would report it.
    pipeline.target.set({ 'disk_latency_seconds{node="kwok-host-1.internal"}': 0.9 });

    const [first] = await eventually('the alert creates a TraceJob', async () => {
      const jobs = await triggeredJobs('nodedisklatencyhigh');
      return jobs.length > 0 ? jobs : undefined;
    });
    if (first === undefined) throw new Error('unreachable');
    t.is(first.spec.hostname, 'kwok-node-1', 'the hostname label resolved to the Node name');
    t.is(first.metadata.labels?.['observe.alexeldeib.xyz/alertname'], 'NodeDiskLatencyHigh');
    t.is(first.metadata.labels?.['team'], 'storage');
    t.regex(
      first.metadata.annotations?.['observe.alexeldeib.xyz/alert-summary'] ?? '',
      /disk latency on kwok-host-1.internal is 0.9s/,
    );
    t.regex(first.metadata.annotations?.['observe.alexeldeib.xyz/alert-fingerprint'] ?? '', /^[0-9a-f]{16}$/);
    t.regex(first.metadata.annotations?.['observe.alexeldeib.xyz/alert-generator-url'] ?? '', /^http:\/\/.*graph/);
    const owner = (first.metadata as { ownerReferences?: { kind: string; name: string; controller?: boolean }[] })
      .ownerReferences?.[0];
    t.like(owner, { kind: 'TraceTrigger', name: 'nodedisklatencyhigh', controller: true });

    // It runs and keeps its result, like any TraceJob.
    const running = await waitForPhase(ns, first.metadata.name, 'Running');
    const id = running.status?.id ?? '';
    const pod = await waitForTracePod(ns, id);
    await finishTracePod(
      ns,
      { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
      {
        exitCode: 0,
        text: '@usecs:\n[256, 512) 3 |@@@@|\n[512, 1K) 1 |@|',
        result: histogramResult,
      },
    );
    const done = await waitForPhase(ns, first.metadata.name, 'Succeeded');
    t.is(done.status?.result?.maps[0]?.histograms?.[0]?.total, 4);

    // Alertmanager re-sends the group every repeat_interval (2s): still one TraceJob.
    await eventually('several deliveries were deduplicated', async () => {
      const tt = await getTrigger('nodedisklatencyhigh');
      return (tt?.status?.counts?.deduplicated ?? 0) >= 2 ? tt : undefined;
    });
    t.is((await triggeredJobs('nodedisklatencyhigh')).length, 1);

    // Resolve, then fire again inside the cooldown: suppressed, counted.
    pipeline.target.set({ 'disk_latency_seconds{node="kwok-host-1.internal"}': 0.1 });
    await eventually('the resolved notification arrives', async () => {
      const text = await (await fetch(`${pipeline.ams[0]?.url ?? ''}/api/v2/alerts?active=true`)).text();
      return text.trim() === '[]' ? true : undefined;
    });
    pipeline.target.set({ 'disk_latency_seconds{node="kwok-host-1.internal"}': 0.8 });
    const created = Date.parse(first.metadata.creationTimestamp ?? '');
    const suppressed = await eventually('the new firing is held back by the cooldown or traced after it', async () => {
      const tt = await getTrigger('nodedisklatencyhigh');
      const jobs = await triggeredJobs('nodedisklatencyhigh');
      return (tt?.status?.counts?.cooldown ?? 0) >= 1 || jobs.length > 1 ? tt : undefined;
    });
    if (Date.now() - created < 18_000)
      t.true((suppressed.status?.counts?.cooldown ?? 0) >= 1, 'suppressed inside the cooldown');
    // After the cooldown the next delivery of the new firing creates the second TraceJob.
    const both = await eventually(
      'a second TraceJob after the cooldown',
      async () => {
        const jobs = await triggeredJobs('nodedisklatencyhigh');
        return jobs.length >= 2 ? jobs : undefined;
      },
      60_000,
    );
    t.is(both.length, 2);
    const second = both.find((j) => j.metadata.name !== first.metadata.name);
    t.true(Date.parse(second?.metadata.creationTimestamp ?? '') - created >= 19_000, 'not inside the 20 s cooldown');
    t.is(second?.spec.hostname, 'kwok-node-1');
    t.true(metricValue(await manager.metrics(), 'trace_operator_triggered_tracejobs_total', { source: 'alert' }) >= 2);
  },
);

test.serial(
  'an HA pair of Alertmanagers with short intervals delivers one alert many times: exactly one TraceJob',
  async (t) => {
    await apply(ns, trigger('hadisklatency', 'HADiskLatency', { cooldownSeconds: 0 }));
    await waitReady('hadisklatency');
    const pipeline = await alertingPipeline(
      { alert: 'HADiskLatency', metric: 'ha_disk_latency_seconds' },
      { count: 2 },
    );
    t.teardown(pipeline.stop);
    pipeline.target.set({ 'ha_disk_latency_seconds{node="kwok-node-0"}': 2 });
    const tt = await eventually(
      'many deliveries reached the trigger',
      async () => {
        const current = await getTrigger('hadisklatency');
        return (current?.status?.counts?.notifications ?? 0) >= 8 ? current : undefined;
      },
      90_000,
    );
    const jobs = await triggeredJobs('hadisklatency');
    t.is(jobs.length, 1, 'one firing of one alert on one node is one TraceJob, however often it is delivered');
    t.is(jobs[0]?.spec.hostname, 'kwok-node-0');
    t.is(tt.status?.counts?.fired, 1);
    t.true((tt.status?.counts?.deduplicated ?? 0) >= 7);
    const perReplica = await Promise.all(pipeline.ams.map(webhookDeliveries));
    t.log(`webhook deliveries per Alertmanager replica: ${perReplica.join(', ')}`);
    t.true(
      perReplica.every((n) => n > 0),
      'both replicas delivered',
    );
  },
);
