// Traces that cannot start, against the real control plane: the Job exists
// but the API server refuses its pod (a missing service account, Pod
// Security admission refusing the privileged pod: both real here), a pod
// that is bound to a node whose kubelet never runs it (a Node kwok does not
// manage: no kubelet, so NotReady), and a TraceJob created already stopped.
// Each gets a condition that says what to do, an Event, and, where it cannot
// start, phase Failed with its Job suspended so that it never starts late.
import test from 'ava';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import { apply, condition, eventsFor, getJob, listJson, waitForTraceJob } from '../support/tracejobs.ts';

let ns = '';
let restrictedNs = '';
let manager: RunningManager;
const suffix = Math.random().toString(16).slice(2, 8);
/** A Node with no capacity: the scheduler cannot place the pod there. */
const fullNode = `no-room-${suffix}`;
/** A Node with capacity but no kubelet (kwok does not manage it): the pod is bound and never runs. */
const deadNode = `no-kubelet-${suffix}`;

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  ns = (await createTestNamespace('start-failures')).name;
  restrictedNs = (await createTestNamespace('restricted')).name;
  const labelled = await kubectl(['label', 'namespace', restrictedNs, 'pod-security.kubernetes.io/enforce=restricted']);
  if (labelled.exitCode !== 0) throw new Error(`could not label ${restrictedNs}: ${labelled.stderr}`);
  // No kwok.x-k8s.io/node annotation: kwok leaves these alone, so nothing ever runs their pods.
  for (const name of [fullNode, deadNode]) {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, type: 'no-kubelet' } },
    };
    const created = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(node) });
    if (created.exitCode !== 0) throw new Error(`could not create node ${name}: ${created.stderr}`);
  }
  const room = { cpu: '4', memory: '8Gi', pods: '10' };
  const patched = await kubectl([
    'patch',
    'node',
    deadNode,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { capacity: room, allocatable: room } }),
  ]);
  if (patched.exitCode !== 0) throw new Error(`could not give node ${deadNode} capacity: ${patched.stderr}`);
  manager = await startManager({ namespaces: [ns, restrictedNs] });
});

test.after.always('stop the manager, drop the namespaces and the node', async () => {
  await manager?.stop();
  for (const namespace of [ns, restrictedNs])
    await kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
  await kubectl(['delete', 'node', fullNode, deadNode, '--wait=false', '--ignore-not-found']);
});

function traceJob(name: string, namespace: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name, namespace },
    spec: { hostname: 'kwok-node-0', program: 'tracepoint:sched:sched_switch { @c = count(); }', ...spec },
  };
}

async function expectEvent(namespace: string, name: string, prefix: string): Promise<void> {
  await eventually(`an Event "${prefix}" for ${name}`, async () =>
    (await eventsFor(namespace, name)).some((e) => e.startsWith(prefix)) ? true : undefined,
  );
}

async function expectSuspended(namespace: string, jobName: string | undefined): Promise<void> {
  await eventually(`Job ${jobName ?? '?'} is suspended`, async () => {
    const job: V1Job | undefined = jobName === undefined ? undefined : await getJob(namespace, jobName);
    return job?.spec?.suspend === true ? true : undefined;
  });
}

test('a missing service account is reported within seconds, then fails the trace at its start timeout', async (t) => {
  await apply(ns, traceJob('no-sa', ns, { serviceAccount: 'nobody-made-me', startTimeoutSeconds: 15 }));
  const waiting = await waitForTraceJob(
    ns,
    'no-sa',
    'says the service account is missing',
    (tj) => condition(tj, 'Running')?.reason === 'ServiceAccountNotFound',
    30_000,
  );
  t.is(waiting.status?.phase, 'Pending');
  t.regex(condition(waiting, 'Running')?.message ?? '', /nobody-made-me does not exist/);
  await expectEvent(ns, 'no-sa', 'Warning ServiceAccountNotFound');
  const failed = await waitForTraceJob(ns, 'no-sa', 'fails with StartTimeout', (tj) => tj.status?.phase === 'Failed');
  t.is(condition(failed, 'Failed')?.reason, 'StartTimeout');
  t.regex(
    condition(failed, 'Failed')?.message ?? '',
    /within 15s \(spec\.startTimeoutSeconds\): ServiceAccountNotFound/,
  );
  await expectEvent(ns, 'no-sa', 'Warning StartTimeout');
  await expectSuspended(ns, failed.status?.jobName);
});

test('Pod Security refusing the privileged pod fails the trace at once and says which namespaces work', async (t) => {
  await apply(restrictedNs, traceJob('refused', restrictedNs, {}));
  const failed = await waitForTraceJob(
    restrictedNs,
    'refused',
    'fails with PodForbidden',
    (tj) => tj.status?.phase === 'Failed',
    30_000,
  );
  const reason = condition(failed, 'Failed');
  t.is(reason?.reason, 'PodForbidden');
  t.regex(reason?.message ?? '', /violates PodSecurity "restricted/);
  t.regex(reason?.message ?? '', /pod-security\.kubernetes\.io\/enforce=privileged/);
  await expectEvent(restrictedNs, 'refused', 'Warning PodForbidden');
  await expectSuspended(restrictedNs, failed.status?.jobName);
});

test('an unschedulable pod says so, and fails the trace at its start timeout', async (t) => {
  await apply(ns, traceJob('no-room', ns, { hostname: fullNode, startTimeoutSeconds: 10 }));
  const waiting = await waitForTraceJob(
    ns,
    'no-room',
    'says its pod is unschedulable',
    (tj) => condition(tj, 'Scheduled')?.reason === 'Unschedulable',
    30_000,
  );
  t.regex(
    condition(waiting, 'Scheduled')?.message ?? '',
    /cannot be scheduled on its node: 0\/\d+ nodes are available/,
  );
  await expectEvent(ns, 'no-room', 'Warning Unschedulable');
  const failed = await waitForTraceJob(ns, 'no-room', 'fails', (tj) => tj.status?.phase === 'Failed', 40_000);
  t.is(condition(failed, 'Failed')?.reason, 'StartTimeout');
  t.regex(condition(failed, 'Failed')?.message ?? '', /within 10s \(spec\.startTimeoutSeconds\): Unschedulable/);
  await expectSuspended(ns, failed.status?.jobName);
});

test('a pod on a node that never runs it says the node is not Ready, and fails at its start timeout', async (t) => {
  await apply(ns, traceJob('dead-node', ns, { hostname: deadNode, startTimeoutSeconds: 25 }));
  const waiting = await waitForTraceJob(
    ns,
    'dead-node',
    'says its node is not Ready',
    (tj) => condition(tj, 'Running')?.reason === 'NodeNotReady',
    40_000,
  );
  t.is(waiting.status?.phase, 'Pending');
  t.regex(condition(waiting, 'Running')?.message ?? '', new RegExp(`node ${deadNode}, which is not Ready`));
  await expectEvent(ns, 'dead-node', 'Warning NodeNotReady');
  const failed = await waitForTraceJob(ns, 'dead-node', 'fails', (tj) => tj.status?.phase === 'Failed', 40_000);
  t.is(condition(failed, 'Failed')?.reason, 'StartTimeout');
  t.regex(condition(failed, 'Failed')?.message ?? '', /NodeNotReady/);
  await expectSuspended(ns, failed.status?.jobName);
  // Suspending the Job deletes its pod (on a node without a kubelet it stays Terminating), so it cannot start late.
  await eventually('the pod is being deleted', async () => {
    const pods = await listJson<V1Pod>(ns, 'pods', `iovisor.org/kubectl-trace-id=${failed.status?.id ?? ''}`);
    return pods.every((p) => p.metadata?.deletionTimestamp !== undefined) ? true : undefined;
  });
});

test('a TraceJob created with spec.stop: true never starts and says it was stopped before it started', async (t) => {
  await apply(ns, traceJob('stopped-early', ns, { stop: true }));
  const tj = await waitForTraceJob(ns, 'stopped-early', 'is finished', (x) => x.status?.phase === 'Failed', 30_000);
  t.is(condition(tj, 'Failed')?.reason, 'StoppedBeforeStart');
  t.regex(condition(tj, 'Failed')?.message ?? '', /no Job was created/);
  t.is(tj.status?.jobName, undefined);
  t.truthy(tj.status?.completionTime);
  await expectEvent(ns, 'stopped-early', 'Normal StoppedBeforeStart');
  const jobs = await listJson<V1Job>(ns, 'jobs');
  t.false(jobs.some((j) => j.metadata?.annotations?.['observe.alexeldeib.xyz/tracejob'] === 'stopped-early'));
});
