// 503s, so Alertmanager retries: on a replica that does not lead, and while
// the API server cannot be reached (a TCP proxy in front of it is stopped;
// the API server itself stays up for the other tests). After the API server
// is back, the retried delivery creates the TraceJob exactly once.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { readFile } from 'node:fs/promises';
import { scratchDir } from '../support/scratch-dir.ts';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { freePort } from '../cluster/processes.ts';
import { allowToFire, payload, serviceAccountToken } from '../support/alerting.ts';
import { clusterAvailable, createTestNamespace, kubeconfigPath } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, metricValue, startManager, type RunningManager } from '../support/manager.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { apply, getJson, listJson } from '../support/tracejobs.ts';

let ns = '';
let token = '';
const cleanups: (() => Promise<void>)[] = [];

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  const namespace = await createTestNamespace('ttr-503');
  ns = namespace.name;
  cleanups.push(namespace.cleanup);
  token = (await serviceAccountToken(ns, 'alertmanager')).token;
  cleanups.push(await allowToFire(ns, 'alertmanager'));
  await apply(ns, {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name: 'disk', namespace: ns },
    spec: {
      alert: { matchers: ['alertname="DiskSlow"'] },
      template: { spec: { program: 'BEGIN { exit(); }', deadline: 60 } },
    },
  });
});

test.after.always(async () => {
  for (const c of cleanups) await c();
});

const body = payload([{ fingerprint: 'u1', labels: { alertname: 'DiskSlow', node: 'kwok-node-0' } }]);
async function post(port: number): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/alertmanager/namespaces/${ns}/tracetriggers/disk`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
const webhookArgs = (port: number): string[] => [`--webhook-bind-address=127.0.0.1:${port}`, '--webhook-insecure=true'];

test.serial('a replica that does not lead answers 503; the leader handles the notification', async (t) => {
  const [leaderPort, standbyPort] = [await freePort(), await freePort()];
  const leader = await startManager({ namespaces: [ns], args: webhookArgs(leaderPort) });
  t.teardown(() => leader.stop());
  await eventually('the first manager leads', async () =>
    metricValue(await leader.metrics(), 'leader_election_master_status') === 1 ? true : undefined,
  );
  const standby: RunningManager = await startManager({ namespaces: [ns], args: webhookArgs(standbyPort) });
  t.teardown(() => standby.stop());
  const refused = await post(standbyPort);
  t.is(refused.status, 503);
  t.regex(String(refused.json['message']), /not the leader/);
  t.is(metricValue(await standby.metrics(), 'trace_operator_alert_notifications_total', { result: 'unavailable' }), 1);
  t.is((await listJson<TraceJob>(ns, 'tracejobs')).length, 0, 'the standby wrote nothing');
  const accepted = await post(leaderPort);
  t.is(accepted.status, 200);
  t.is((accepted.json['created'] as unknown[]).length, 1);
  await leader.stop();
  await standby.stop();
});

test.serial(
  'while the API server is unreachable the webhook answers 503; the retry afterwards creates once',
  async (t) => {
    await apply(ns, {
      apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
      kind: 'TraceTrigger',
      metadata: { name: 'disk', namespace: ns },
      spec: {
        alert: { matchers: ['alertname="DiskSlow"'] },
        cooldownSeconds: 0,
        template: { spec: { program: 'BEGIN { exit(); }', deadline: 60 } },
      },
    });
    const admin = parse(await readFile(kubeconfigPath, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    const server = new URL(admin.clusters[0]?.cluster.server ?? '');
    const proxy = new TcpProxy({ host: server.hostname, port: Number(server.port) });
    await proxy.start();
    t.teardown(() => proxy.stop());
    for (const c of admin.clusters) c.cluster.server = `https://127.0.0.1:${proxy.port}`;
    const dir = await scratchDir('proxied-kubeconfig');
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfig, stringify(admin), { mode: 0o600 });
    const port = await freePort();
    const manager = await startManager({
      namespaces: [ns],
      kubeconfig,
      args: [...webhookArgs(port), '--leader-elect=false'],
    });
    t.teardown(() => manager.stop());
    const another = payload([{ fingerprint: 'u2', labels: { alertname: 'DiskSlow', node: 'kwok-node-1' } }]);
    const send = async (): Promise<number> =>
      (
        await fetch(`http://127.0.0.1:${port}/alertmanager/namespaces/${ns}/tracetriggers/disk`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(another),
        })
      ).status;
    await proxy.stop();
    t.is(await send(), 503);
    await proxy.start();
    const status = await eventually('the API server is reachable again', async () => {
      const s = await send();
      return s === 200 ? s : undefined;
    });
    t.is(status, 200);
    t.is(await send(), 200);
    const jobs = (await listJson<TraceJob>(ns, 'tracejobs')).filter((j) => j.spec.hostname === 'kwok-node-1');
    t.is(jobs.length, 1, 'the retried delivery made exactly one TraceJob');
    t.true(
      metricValue(await manager.metrics(), 'trace_operator_alert_notifications_total', { result: 'unavailable' }) >= 1,
    );
    t.truthy(await getJson(ns, 'tracetrigger', 'disk'));
  },
);
