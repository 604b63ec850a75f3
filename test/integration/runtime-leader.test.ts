// Leader election against the real coordination.k8s.io/v1 Lease API, with
// short timings (lease 3 s, renew deadline 2 s, retry 0.5 s) so hand-overs
// happen in test time. A network partition of the leader is a real one: its
// traffic goes through a TCP proxy this test takes down.
import test from 'ava';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, loadKubeConfig } from '../../src/runtime/kube-client.ts';
import { LeaderElector, type Lease, type LeaderRunResult } from '../../src/runtime/leader.ts';
import { clusterAvailable, createTestNamespace, kubeconfigPath } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

test.before(() => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
});

const TIMINGS = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

interface Term {
  identity: string;
  from: number;
  to?: number;
}

function candidate(client: KubeClient, namespace: string, identity: string, terms: Term[], releaseOnCancel = false) {
  const elector = new LeaderElector({
    client,
    namespace,
    name: 'trace-operator-test',
    identity,
    releaseOnCancel,
    ...TIMINGS,
    onStartedLeading: async (signal) => {
      const term: Term = { identity, from: Date.now() };
      terms.push(term);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      term.to = Date.now();
    },
  });
  const stop = new AbortController();
  let result: LeaderRunResult | undefined;
  const running = elector.run(stop.signal).then((r) => (result = r));
  return {
    elector,
    stop: async () => {
      stop.abort();
      await running;
    },
    running,
    result: () => result,
  };
}

function noOverlap(terms: Term[]): boolean {
  const sorted = [...terms].sort((a, b) => a.from - b.from);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (prev === undefined || cur === undefined) continue;
    if (prev.to === undefined || prev.to > cur.from) return false;
  }
  return true;
}

function admin(): KubeClient {
  return new KubeClient({ kubeConfig: loadKubeConfig({ kubeconfig: kubeconfigPath }) });
}

test('only one of two candidates leads; the other takes over once the leader stops renewing', async (t) => {
  const ns = await createTestNamespace('rt-leader');
  t.teardown(ns.cleanup);
  const client = admin();
  t.teardown(() => client.close());
  const terms: Term[] = [];
  const a = candidate(client, ns.name, 'a', terms);
  await eventually('a leads', async () => (a.elector.isLeader() ? true : undefined), 10_000, 50);
  const b = candidate(client, ns.name, 'b', terms);
  t.teardown(() => b.stop());
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 500));
    t.true(a.elector.isLeader());
    t.false(b.elector.isLeader());
  }
  const lease = await client.get<Lease>(
    `/apis/coordination.k8s.io/v1/namespaces/${ns.name}/leases/trace-operator-test`,
  );
  t.is(lease.spec?.holderIdentity, 'a');
  t.is(lease.spec?.leaseDurationSeconds, 3);
  t.regex(lease.spec?.renewTime ?? '', /\.\d{6}Z$/);

  // a's process "dies": it stops renewing without handing the lease back.
  const stoppedAt = Date.now();
  await a.stop();
  t.is(a.result(), 'cancelled');
  await eventually('b takes over', async () => (b.elector.isLeader() ? true : undefined), 15_000, 50);
  const waited = Date.now() - stoppedAt;
  t.true(waited >= 2000, `b took over after ${waited} ms, before the lease could expire`);
  const after = await client.get<Lease>(
    `/apis/coordination.k8s.io/v1/namespaces/${ns.name}/leases/trace-operator-test`,
  );
  t.is(after.spec?.holderIdentity, 'b');
  t.is(after.spec?.leaseTransitions, (lease.spec?.leaseTransitions ?? 0) + 1);
  t.true(noOverlap(terms), JSON.stringify(terms));
});

test('releaseOnCancel hands over at once', async (t) => {
  const ns = await createTestNamespace('rt-release');
  t.teardown(ns.cleanup);
  const client = admin();
  t.teardown(() => client.close());
  const terms: Term[] = [];
  const a = candidate(client, ns.name, 'a', terms, true);
  await eventually('a leads', async () => (a.elector.isLeader() ? true : undefined), 10_000, 50);
  const b = candidate(client, ns.name, 'b', terms);
  t.teardown(() => b.stop());
  await new Promise((r) => setTimeout(r, 1000));
  const stoppedAt = Date.now();
  await a.stop();
  await eventually('b takes over', async () => (b.elector.isLeader() ? true : undefined), 10_000, 50);
  t.true(Date.now() - stoppedAt < 2500, `took ${Date.now() - stoppedAt} ms; a released lease needs no expiry`);
  t.true(noOverlap(terms));
});

test('a partitioned leader steps down (its signal aborts) before the other can take over', async (t) => {
  const ns = await createTestNamespace('rt-partition');
  t.teardown(ns.cleanup);
  const direct = admin();
  t.teardown(() => direct.close());
  const server = new URL(direct.server);
  const proxy = new TcpProxy({ host: server.hostname, port: Number(server.port) });
  await proxy.start();
  t.teardown(() => proxy.stop());
  // client-node's KubeConfig, to rewrite the server (a ClusterConnection is opaque); RestTransport takes either.
  const base = new KubeConfig();
  base.loadFromFile(kubeconfigPath);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: base.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${proxy.port}` })),
    users: base.users,
    contexts: base.contexts,
    currentContext: base.currentContext,
  });
  const partitionable = new KubeClient({ kubeConfig: kc, requestTimeoutMs: 1000 });
  t.teardown(() => partitionable.close());

  const terms: Term[] = [];
  const a = candidate(partitionable, ns.name, 'a', terms);
  await eventually('a leads', async () => (a.elector.isLeader() ? true : undefined), 10_000, 50);
  const b = candidate(direct, ns.name, 'b', terms);
  t.teardown(() => b.stop());
  await new Promise((r) => setTimeout(r, 1000));

  await proxy.stop();
  await a.running;
  t.is(a.result(), 'lost');
  const aTerm = terms.find((x) => x.identity === 'a');
  t.truthy(aTerm?.to, 'a was told to stop');
  await eventually('b takes over', async () => (b.elector.isLeader() ? true : undefined), 15_000, 50);
  const bTerm = terms.find((x) => x.identity === 'b');
  t.true((bTerm?.from ?? 0) >= (aTerm?.to ?? Infinity), `a stopped at ${aTerm?.to}, b started at ${bTerm?.from}`);
  t.true(noOverlap(terms));
});
