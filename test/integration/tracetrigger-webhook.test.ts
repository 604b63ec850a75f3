// The webhook's answers and limits, posting Alertmanager payloads (version
// 4) directly, as Alertmanager would, to a real manager on the real control
// plane: the status code of every kind of bad request (each counted, none
// creating a TraceJob), a storm of 200 distinct alerts against maxActive and
// the operator-wide rate cap, and a manager SIGKILLed between deliveries.
import test from 'ava';
import type { TraceJob } from '../../src/tracejob/index.ts';
import type { TraceTrigger } from '../../src/tracetrigger/index.ts';
import { freePort } from '../cluster/processes.ts';
import { allowToFire, payload, serviceAccountToken } from '../support/alerting.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, metricValue, startManager, type RunningManager } from '../support/manager.ts';
import { apply, getJson, listJson } from '../support/tracejobs.ts';

let ns = '';
let port = 0;
let manager: RunningManager;
let token = '';
let unboundToken = '';
const cleanups: (() => Promise<void>)[] = [];
const RATE_CAP = 10;
const managerArgs = (): string[] => [
  `--webhook-bind-address=127.0.0.1:${port}`,
  '--webhook-insecure=true',
  '--webhook-max-body-bytes=262144',
  `--max-triggered-per-minute=${RATE_CAP}`,
  // Restarted in a test; without election the new process need not wait out the killed one's Lease.
  '--leader-elect=false',
];

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  const namespace = await createTestNamespace('ttr-hook');
  ns = namespace.name;
  cleanups.push(namespace.cleanup);
  token = (await serviceAccountToken(ns, 'alertmanager')).token;
  unboundToken = (await serviceAccountToken(ns, 'someone-else')).token;
  cleanups.push(await allowToFire(ns, 'alertmanager'));
  port = await freePort();
  manager = await startManager({ namespaces: [ns], args: managerArgs() });
});

test.after.always(async () => {
  await manager?.stop();
  for (const c of cleanups) await c();
});

function trigger(name: string, spec: Record<string, unknown> = {}): TraceTrigger {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name, namespace: ns },
    spec: {
      alert: { matchers: ['alertname="DiskSlow"'] },
      template: { spec: { program: 'BEGIN { printf("hi\\n"); }', deadline: 600 } },
      ...spec,
    },
  } as TraceTrigger;
}

async function readyTrigger(name: string, spec: Record<string, unknown> = {}): Promise<void> {
  await apply(ns, trigger(name, spec));
  await eventually(`TraceTrigger ${name} is Ready`, async () => {
    const tt = await getJson<TraceTrigger>(ns, 'tracetrigger', name);
    return tt?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true ? true : undefined;
  });
}

async function post(
  name: string,
  body: string | object,
  options: { token?: string | undefined; method?: string; path?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const bearer = 'token' in options ? options.token : token;
  if (bearer !== undefined) headers['authorization'] = `Bearer ${bearer}`;
  const res = await fetch(
    `http://127.0.0.1:${port}${options.path ?? `/alertmanager/namespaces/${ns}/tracetriggers/${name}`}`,
    {
      method: options.method ?? 'POST',
      headers,
      ...(options.method === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    },
  );
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const jobsOf = (name: string): Promise<TraceJob[]> =>
  listJson<TraceJob>(ns, 'tracejobs', `observe.alexeldeib.xyz/tracetrigger=${name}`);
const alert = (fingerprint: string, labels: Record<string, string>, startsAt?: string) => ({
  fingerprint,
  labels: { alertname: 'DiskSlow', ...labels },
  ...(startsAt === undefined ? {} : { startsAt }),
});
const results = async (): Promise<Record<string, number>> => {
  const text = await manager.metrics();
  return Object.fromEntries(
    ['accepted', 'malformed', 'unauthenticated', 'forbidden', 'not_found', 'too_large', 'method_not_allowed'].map(
      (r) => [r, metricValue(text, 'trace_operator_alert_notifications_total', { result: r })],
    ),
  );
};

test.serial('every bad request gets its status code, is counted, and creates no TraceJob', async (t) => {
  await readyTrigger('faults');
  const good = payload([alert('f0', { node: 'kwok-node-0' })]);
  const before = await results();

  const noToken = await post('faults', good, { token: undefined });
  t.is(noToken.status, 401);
  t.regex(String(noToken.json['message']), /credentials_file/);
  t.is((await post('faults', good, { token: 'not-a-token' })).status, 401);
  const unbound = await post('faults', good, { token: unboundToken });
  t.is(unbound.status, 403);
  t.regex(String(unbound.json['message']), /someone-else may not create tracetriggers\/alerts.*tracetrigger-alerts/);
  t.is((await post('faults', '{"version": "4", "alerts": "nope"')).status, 400);
  const wrongShape = await post('faults', { version: '4', status: 'firing', alerts: [{ labels: {} }] });
  t.is(wrongShape.status, 400);
  t.regex(String(wrongShape.json['message']), /alerts\/0/);
  t.is((await post('faults', { ...good, version: '3' })).status, 400);
  const big = payload(
    Array.from({ length: 1500 }, (_, i) => alert(`big${i}`, { node: 'kwok-node-0', pad: 'x'.repeat(200) })),
  );
  t.is((await post('faults', big)).status, 413);
  const unknown = await post('no-such-trigger', good);
  t.is(unknown.status, 404);
  t.regex(String(unknown.json['message']), /no TraceTrigger no-such-trigger/);
  t.is((await post('faults', good, { path: '/alertmanager/elsewhere' })).status, 404);
  t.is((await post('faults', good, { method: 'GET' })).status, 405);

  // A label value that is no node name: a well-formed notification (200), nothing created, counted and shown.
  const invalid = await post('faults', payload([alert('f1', { node: 'Not_A/Node' })]));
  t.is(invalid.status, 200);
  t.like((invalid.json['suppressed'] as object[])[0], { reason: 'unresolved' });
  const tt = await eventually('the trigger shows the unresolved alert', async () => {
    const current = await getJson<TraceTrigger>(ns, 'tracetrigger', 'faults');
    return current?.status?.counts?.unresolved === 1 ? current : undefined;
  });
  const unresolved = tt.status?.conditions?.find((c) => c.type === 'Unresolved');
  t.is(unresolved?.status, 'True');
  t.regex(unresolved?.message ?? '', /node="Not_A\/Node".*not a valid node name/);
  const events = await eventually('an Unresolved event', async () => {
    const r = await kubectl(
      ['get', 'events', '-o', 'json', '--field-selector', 'involvedObject.name=faults,reason=Unresolved'],
      {
        namespace: ns,
      },
    );
    const items = (JSON.parse(r.stdout) as { items: { message: string }[] }).items;
    return items.length > 0 ? items : undefined;
  });
  t.regex(events[0]?.message ?? '', /Not_A\/Node/);

  const after = await results();
  const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
  t.deepEqual(
    {
      unauthenticated: delta('unauthenticated'),
      forbidden: delta('forbidden'),
      malformed: delta('malformed'),
      too_large: delta('too_large'),
      not_found: delta('not_found'),
      method_not_allowed: delta('method_not_allowed'),
      accepted: delta('accepted'),
    },
    { unauthenticated: 2, forbidden: 1, malformed: 3, too_large: 1, not_found: 2, method_not_allowed: 1, accepted: 1 },
  );
  t.is(metricValue(await manager.metrics(), 'trace_operator_trigger_suppressions_total', { reason: 'unresolved' }), 1);
  t.is((await jobsOf('faults')).length, 0);
});

test.serial(
  'a manager SIGKILLed and restarted between deliveries creates no duplicate and keeps the cooldown',
  async (t) => {
    await readyTrigger('restart', { cooldownSeconds: 600 });
    const firing = payload([alert('r1', { node: 'kwok-node-0' }, '2026-12-01T11:00:00Z')]);
    const first = await post('restart', firing);
    t.is((first.json['created'] as unknown[]).length, 1);

    await manager.kill('SIGKILL');
    manager = await startManager({ namespaces: [ns], args: managerArgs() });

    const again = await eventually('the restarted manager answers', async () => {
      const r = await post('restart', firing);
      return r.status === 200 ? r : undefined;
    });
    t.is((again.json['created'] as unknown[]).length, 0);
    t.is((again.json['deduplicated'] as unknown[]).length, 1, 'the same firing is recognised from the cluster');
    const otherFiring = await post(
      'restart',
      payload([alert('r2', { instance: 'kwok-node-0:9100' }, '2026-12-01T11:05:00Z')]),
    );
    t.like((otherFiring.json['suppressed'] as object[])[0], { reason: 'cooldown', target: 'node/kwok-node-0' });
    const otherNode = await post('restart', payload([alert('r3', { node: 'kwok-node-1' }, '2026-12-01T11:05:00Z')]));
    t.is((otherNode.json['created'] as unknown[]).length, 1);
    t.is((await jobsOf('restart')).length, 2);
    const tt = await getJson<TraceTrigger>(ns, 'tracetrigger', 'restart');
    t.like(tt?.status?.counts, { notifications: 4, fired: 2, deduplicated: 1, cooldown: 1 });
  },
);

test.serial('a storm of 200 distinct alerts: maxActive holds, then the operator-wide rate cap', async (t) => {
  await readyTrigger('storm-a', { maxActive: 4, cooldownSeconds: 0 });
  await readyTrigger('storm-b', { maxActive: 100, cooldownSeconds: 0 });
  const storm = (prefix: string) =>
    payload(
      Array.from({ length: 200 }, (_, i) => alert(`${prefix}${i}`, { node: `kwok-node-${i % 2}`, disk: `sd${i}` })),
    );
  const a = await post('storm-a', storm('a'));
  t.is(a.status, 200);
  t.is((a.json['created'] as unknown[]).length, 4);
  t.is((await jobsOf('storm-a')).length, 4, 'maxActive unfinished TraceJobs');
  // The cap counts every triggered TraceJob of the last minute (the earlier tests' too).
  const minuteAgo = Date.now() - 55_000;
  const earlier = (await listJson<TraceJob>(ns, 'tracejobs', 'observe.alexeldeib.xyz/tracetrigger')).filter(
    (j) => Date.parse(j.metadata.creationTimestamp ?? '') > minuteAgo,
  ).length;
  t.true(earlier < RATE_CAP, `the earlier tests left room under the cap (${earlier})`);
  const b = await post('storm-b', storm('b'));
  t.is(b.status, 200);
  t.is((await jobsOf('storm-b')).length, RATE_CAP - earlier, 'the rest of the per-minute cap');
  const reasons = (b.json['suppressed'] as { reason: string }[]).map((s) => s.reason);
  t.is(reasons.filter((r) => r === 'rateLimited').length, 200 - (RATE_CAP - earlier));
  // Delivered again (as Alertmanager does): nothing new, all known or still limited.
  const again = await post('storm-a', storm('a'));
  t.is((again.json['deduplicated'] as unknown[]).length, 4);
  t.is((await jobsOf('storm-a')).length, 4);
  const tt = await getJson<TraceTrigger>(ns, 'tracetrigger', 'storm-a');
  t.is(tt?.status?.counts?.fired, 4);
  t.true((tt?.status?.counts?.maxActive ?? 0) >= 196);
});
