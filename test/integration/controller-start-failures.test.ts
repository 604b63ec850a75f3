// Traces that cannot start, against the real control plane: the Job exists
// but the API server refuses its pod (a missing service account, Pod
// Security admission refusing the privileged pod: both real here), a pod
// that is bound to a node whose kubelet never runs it (a Node kwok does not
// manage: no kubelet, so NotReady), and a TraceJob created already stopped.
// Each gets a condition that says what to do, an Event, and, where it cannot
// start, phase Failed with its Job suspended so that it never starts late.
import test, { type ExecutionContext } from 'ava';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { apply, condition, eventsOnceRecorded, getJob, listJson, waitForTraceJob } from '../support/tracejobs.ts';

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

async function expectSuspended(namespace: string, jobName: string | undefined): Promise<void> {
  await eventually(`Job ${jobName ?? '?'} is suspended`, async () => {
    const job: V1Job | undefined = jobName === undefined ? undefined : await getJob(namespace, jobName);
    return job?.spec?.suspend === true ? true : undefined;
  });
}

/**
 * A trace that cannot start: first the condition that says why, with its
 * Event; then, at its start timeout, Failed with StartTimeout naming that
 * reason, and its Job suspended.
 */
async function waitsThenTimesOut(
  t: ExecutionContext,
  name: string,
  spec: Record<string, unknown>,
  waits: { type: string; reason: string; message: RegExp },
  timeoutSeconds: number,
): Promise<TraceJob> {
  await apply(ns, traceJob(name, ns, { ...spec, startTimeoutSeconds: timeoutSeconds }));
  const waiting = await waitForTraceJob(
    ns,
    name,
    `says ${waits.reason}`,
    (tj) => condition(tj, waits.type)?.reason === waits.reason,
    40_000,
  );
  t.is(waiting.status?.phase, 'Pending');
  t.regex(condition(waiting, waits.type)?.message ?? '', waits.message);
  await eventsOnceRecorded(ns, name, `Warning ${waits.reason}`);
  const failed = await waitForTraceJob(ns, name, 'fails', (tj) => tj.status?.phase === 'Failed', 60_000);
  t.is(condition(failed, 'Failed')?.reason, 'StartTimeout');
  t.regex(
    condition(failed, 'Failed')?.message ?? '',
    new RegExp(`within ${timeoutSeconds}s \\(spec\\.startTimeoutSeconds\\): ${waits.reason}`),
  );
  await eventsOnceRecorded(ns, name, 'Warning StartTimeout');
  await expectSuspended(ns, failed.status?.jobName);
  return failed;
}

test('a missing service account is reported within seconds, then fails the trace at its start timeout', async (t) => {
  await waitsThenTimesOut(
    t,
    'no-sa',
    { serviceAccount: 'nobody-made-me' },
    { type: 'Running', reason: 'ServiceAccountNotFound', message: /nobody-made-me does not exist/ },
    15,
  );
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
  await eventsOnceRecorded(restrictedNs, 'refused', 'Warning PodForbidden');
  await expectSuspended(restrictedNs, failed.status?.jobName);
});

test('an unschedulable pod says so, and fails the trace at its start timeout', async (t) => {
  await waitsThenTimesOut(
    t,
    'no-room',
    { hostname: fullNode },
    {
      type: 'Scheduled',
      reason: 'Unschedulable',
      message: /cannot be scheduled on its node: 0\/\d+ nodes are available/,
    },
    10,
  );
});

test('a pod on a node that never runs it says the node is not Ready, and fails at its start timeout', async (t) => {
  const failed = await waitsThenTimesOut(
    t,
    'dead-node',
    { hostname: deadNode },
    { type: 'Running', reason: 'NodeNotReady', message: new RegExp(`node ${deadNode}, which is not Ready`) },
    25,
  );
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
  await eventsOnceRecorded(ns, 'stopped-early', 'Normal StoppedBeforeStart');
  const jobs = await listJson<V1Job>(ns, 'jobs');
  t.false(jobs.some((j) => j.metadata?.annotations?.['observe.alexeldeib.xyz/tracejob'] === 'stopped-early'));
});
