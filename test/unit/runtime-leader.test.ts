// Leader election logic on fake time against an in-memory Lease API with
// the API server's optimistic concurrency (resourceVersion → 409 Conflict).
// The in-memory API stands in only so that time can be faked and a network
// partition of one candidate can be simulated; the same elector runs against
// the real Lease API in test/integration/runtime-leader.test.ts.
import test from 'ava';
import { ApiError } from '../../src/runtime/api-error.ts';
import { FakeClock } from '../support/fake-clock.ts';
import {
  LeaderElector,
  microTime,
  type Lease,
  type LeaseClient,
  type LeaderRunResult,
} from '../../src/runtime/leader.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';

const PATH = '/apis/coordination.k8s.io/v1/namespaces/ns/leases/lock';

class FakeLeaseApi {
  lease: Lease | undefined;
  #rv = 0;
  writes = 0;

  client(): LeaseClient & { partitioned: boolean } {
    const api = this;
    const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
    const down = (c: { partitioned: boolean }, method: string): void => {
      if (c.partitioned) throw new Error(`${method} ${PATH}: connect ECONNREFUSED`);
    };
    const c = {
      partitioned: false,
      async get<T>(path: string): Promise<T> {
        down(c, 'GET');
        if (path !== PATH || api.lease === undefined)
          throw new ApiError({
            status: 404,
            reason: 'NotFound',
            message: 'leases "lock" not found',
            method: 'GET',
            path,
          });
        return copy(api.lease) as T;
      },
      async create<T>(path: string, body: T): Promise<T> {
        down(c, 'POST');
        if (api.lease !== undefined)
          throw new ApiError({ status: 409, reason: 'AlreadyExists', message: 'exists', method: 'POST', path });
        const lease = copy(body) as Lease;
        lease.metadata.resourceVersion = String(++api.#rv);
        api.lease = lease;
        api.writes++;
        return copy(lease) as T;
      },
      async replace<T>(path: string, body: T): Promise<T> {
        down(c, 'PUT');
        const lease = copy(body) as Lease;
        if (api.lease === undefined)
          throw new ApiError({ status: 404, reason: 'NotFound', message: 'gone', method: 'PUT', path });
        if (lease.metadata.resourceVersion !== api.lease.metadata.resourceVersion) {
          throw new ApiError({
            status: 409,
            reason: 'Conflict',
            message: 'the object has been modified; please apply your changes to the latest version and try again',
            method: 'PUT',
            path,
          });
        }
        lease.metadata.resourceVersion = String(++api.#rv);
        api.lease = lease;
        api.writes++;
        return copy(lease) as T;
      },
    };
    return c;
  }
}

function candidate(
  api: FakeLeaseApi,
  clock: FakeClock,
  identity: string,
  extra: { releaseOnCancel?: boolean; metrics?: RuntimeMetrics; work?: (signal: AbortSignal) => Promise<void> } = {},
) {
  const client = api.client();
  const state = {
    leading: false,
    leaderSignal: undefined as AbortSignal | undefined,
    newLeaders: [] as string[],
    stopped: 0,
  };
  const elector = new LeaderElector({
    client,
    namespace: 'ns',
    name: 'lock',
    identity,
    clock,
    random: () => 0,
    ...(extra.releaseOnCancel === undefined ? {} : { releaseOnCancel: extra.releaseOnCancel }),
    ...(extra.metrics === undefined ? {} : { metrics: extra.metrics }),
    onStartedLeading: async (signal) => {
      state.leading = true;
      state.leaderSignal = signal;
      if (extra.work !== undefined) return extra.work(signal);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
    onStoppedLeading: () => state.stopped++,
    onNewLeader: (id) => state.newLeaders.push(id),
  });
  const stop = new AbortController();
  let result: LeaderRunResult | undefined;
  const running = elector.run(stop.signal).then((r) => (result = r));
  return { client, elector, state, stop, running, result: () => result };
}

test('the first candidate creates the Lease and leads; the second waits', async (t) => {
  const clock = new FakeClock(Date.UTC(2024, 0, 1));
  const api = new FakeLeaseApi();
  const metrics = new RuntimeMetrics();
  const a = candidate(api, clock, 'a', { metrics });
  await clock.flush();
  const b = candidate(api, clock, 'b');
  await clock.advance(30_000);
  t.true(a.elector.isLeader());
  t.true(a.state.leading);
  t.false(b.elector.isLeader());
  t.false(b.state.leading);
  t.is(api.lease?.spec?.holderIdentity, 'a');
  t.is(api.lease?.spec?.leaseDurationSeconds, 15);
  t.is(api.lease?.spec?.leaseTransitions, 0);
  t.deepEqual(b.state.newLeaders, ['a']);
  t.regex(
    (await metrics.render()).split('\n').find((l) => l.startsWith('leader_election_master_status')) ?? '',
    /name="lock"\} 1/,
  );
  // a renews every 2 s: 15 renewals in 30 s plus the create
  t.true(api.writes >= 15);
  a.stop.abort();
  b.stop.abort();
  await Promise.all([a.running, b.running]);
});

test('when the leader stops renewing, it steps down after renewDeadline and the other takes over after leaseDuration', async (t) => {
  const clock = new FakeClock(Date.UTC(2024, 0, 1));
  const api = new FakeLeaseApi();
  const a = candidate(api, clock, 'a');
  await clock.flush();
  const b = candidate(api, clock, 'b');
  await clock.advance(4_000);
  t.true(a.elector.isLeader());
  const cutAt = clock.now();
  a.client.partitioned = true;
  await clock.advance(9_000);
  t.true(a.elector.isLeader(), 'still within renewDeadline (10 s)');
  t.false(a.state.leaderSignal?.aborted);
  await clock.advance(2_000);
  t.false(a.elector.isLeader());
  t.true(a.state.leaderSignal?.aborted, 'writers told to stop');
  await a.running;
  t.is(a.result(), 'lost');
  t.is(a.state.stopped, 1);
  t.false(b.elector.isLeader(), 'b must wait out the lease');
  await clock.advance(8_000);
  t.true(b.elector.isLeader());
  const tookOverAfter = clock.now() - cutAt;
  t.true(tookOverAfter >= 15_000 && tookOverAfter <= 19_000, `took over after ${tookOverAfter} ms`);
  t.is(api.lease?.spec?.holderIdentity, 'b');
  t.is(api.lease?.spec?.leaseTransitions, 1);
  b.stop.abort();
  await b.running;
  t.is(b.result(), 'cancelled');
});

test('a leader that sees another holder on the Lease steps down at once', async (t) => {
  const clock = new FakeClock(Date.UTC(2024, 0, 1));
  const api = new FakeLeaseApi();
  const a = candidate(api, clock, 'a');
  await clock.advance(1_000);
  t.true(a.elector.isLeader());
  // Someone (an admin, a buggy replica) writes a fresh record for another holder.
  if (api.lease?.spec !== undefined)
    api.lease.spec = { ...api.lease.spec, holderIdentity: 'intruder', renewTime: microTime(clock.now()) };
  if (api.lease !== undefined) api.lease.metadata.resourceVersion = '999';
  await clock.advance(2_000);
  await a.running;
  t.is(a.result(), 'lost');
  t.true(a.state.leaderSignal?.aborted);
});

test('releaseOnCancel hands the Lease back so a successor leads within a retry period', async (t) => {
  const clock = new FakeClock(Date.UTC(2024, 0, 1));
  const api = new FakeLeaseApi();
  const a = candidate(api, clock, 'a', { releaseOnCancel: true });
  await clock.flush();
  const b = candidate(api, clock, 'b');
  await clock.advance(3_000);
  t.true(a.elector.isLeader());
  a.stop.abort();
  await a.running;
  t.is(a.result(), 'cancelled');
  t.is(api.lease?.spec?.holderIdentity, '');
  t.is(api.lease?.spec?.leaseDurationSeconds, 1);
  const releasedAt = clock.now();
  while (!b.elector.isLeader()) await clock.advance(100);
  t.true(clock.now() - releasedAt <= 2_500, `b took ${clock.now() - releasedAt} ms`);
  b.stop.abort();
  await b.running;
});

test('without releaseOnCancel the Lease keeps its holder after stop', async (t) => {
  const clock = new FakeClock(Date.UTC(2024, 0, 1));
  const api = new FakeLeaseApi();
  const a = candidate(api, clock, 'a');
  await clock.advance(1_000);
  a.stop.abort();
  await a.running;
  t.is(api.lease?.spec?.holderIdentity, 'a');
  t.false(a.elector.isLeader());
});

test('two candidates racing for a free Lease: exactly one wins (409 for the other)', async (t) => {
  const clock = new FakeClock(Date.UTC(2024, 0, 1));
  const api = new FakeLeaseApi();
  api.lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'lock', namespace: 'ns', resourceVersion: '1' },
    spec: { holderIdentity: '', leaseTransitions: 3 },
  };
  const a = candidate(api, clock, 'a');
  const b = candidate(api, clock, 'b');
  await clock.advance(10_000);
  t.is([a, b].filter((c) => c.elector.isLeader()).length, 1);
  t.is(api.lease.spec?.leaseTransitions, 4);
  a.stop.abort();
  b.stop.abort();
  await Promise.all([a.running, b.running]);
});

test('when the leading work ends on its own the election ends; if it throws, run() rethrows', async (t) => {
  const clock = new FakeClock(Date.UTC(2024, 0, 1));
  const api = new FakeLeaseApi();
  const done = candidate(api, clock, 'a', { releaseOnCancel: true, work: async () => {} });
  await clock.advance(1_000);
  await done.running;
  t.is(done.result(), 'finished');
  t.is(api.lease?.spec?.holderIdentity, '');
  const failing = new LeaderElector({
    client: api.client(),
    namespace: 'ns',
    name: 'lock',
    identity: 'b',
    clock,
    onStartedLeading: async () => Promise.reject(new Error('manager crashed')),
  });
  const run = failing.run(new AbortController().signal);
  const asserted = t.throwsAsync(run, { message: 'manager crashed' });
  await clock.advance(5_000);
  await asserted;
});

test('invalid timings are refused; times are written with microseconds', (t) => {
  const client = new FakeLeaseApi().client();
  const base = { client, namespace: 'ns', name: 'lock', onStartedLeading: () => {} };
  t.throws(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }), {
    message: /leaseDuration must be greater than renewDeadline/,
  });
  t.throws(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), {
    message: /1.2 × retryPeriod/,
  });
  t.is(microTime(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), '2024-01-02T03:04:05.678000Z');
  t.regex(new LeaderElector(base).identity, /^.+_[0-9a-f-]{36}$/);
});
