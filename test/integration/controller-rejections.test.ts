// Bad input against the real control plane: each gets phase Failed (or
// Pending while it may still resolve), an Accepted condition whose reason and
// message say what to fix, a Warning Event, and never a Job; the manager
// keeps running; and fixing the spec lets the trace start.
import test from 'ava';
import type { V1Job } from '@kubernetes/client-node';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import {
  apply,
  condition,
  eventsOnceRecorded,
  getTraceJob,
  listJson,
  waitForPhase,
  waitForTraceJob,
} from '../support/tracejobs.ts';

let ns = '';
let forbiddenNs = '';
let manager: RunningManager;

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  ns = (await createTestNamespace('rejections')).name;
  forbiddenNs = (await createTestNamespace('not-allowed')).name;
  // Watches both namespaces but runs traces only in the first.
  // A short resync period, so a test can see that resyncs leave rejected TraceJobs alone.
  manager = await startManager({ namespaces: [ns, forbiddenNs], args: [`--namespaces=${ns}`, '--resync-period=1'] });
});

test.after.always('stop the manager and drop the namespaces', async () => {
  await manager?.stop();
  for (const namespace of [ns, forbiddenNs])
    await kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
});

function traceJob(name: string, spec: Record<string, unknown>, namespace = ns): object {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name, namespace },
    spec: { hostname: 'kwok-node-0', program: 'tracepoint:sched:sched_switch { @c = count(); }', ...spec },
  };
}

async function expectRejected(
  t: import('ava').ExecutionContext,
  name: string,
  reason: string,
  messagePart: RegExp,
  namespace = ns,
): Promise<void> {
  const tj = await waitForTraceJob(
    namespace,
    name,
    `is rejected with ${reason}`,
    (x) => condition(x, 'Accepted')?.status === 'False',
  );
  t.is(tj.status?.phase, 'Failed');
  const accepted = condition(tj, 'Accepted');
  t.is(accepted?.reason, reason);
  t.regex(accepted?.message ?? '', messagePart);
  t.is(tj.status?.jobName, undefined);
  const events = await eventsOnceRecorded(namespace, name, `Warning ${reason}`);
  t.true(events.length > 0);
  const jobs = await listJson<V1Job>(namespace, 'jobs');
  t.false(
    jobs.some((j) => j.metadata?.annotations?.['observe.alexeldeib.xyz/tracejob'] === name),
    'no Job was created',
  );
}

test('an unknown node is rejected, and fixing spec.hostname starts the trace', async (t) => {
  await apply(ns, traceJob('unknown-node', { hostname: 'no-such-node' }));
  await expectRejected(t, 'unknown-node', 'NodeNotFound', /no-such-node/);
  await apply(ns, traceJob('unknown-node', { hostname: 'kwok-node-0' }));
  const tj = await waitForPhase(ns, 'unknown-node', 'Running');
  t.is(condition(tj, 'Accepted')?.status, 'True');
  t.is(tj.status?.node, 'kwok-node-0');
});

test('a rejected TraceJob stays rejected through resyncs even when its node appears later', async (t) => {
  const node = `appears-later-${ns}`;
  await apply(ns, traceJob('node-appears', { hostname: node }));
  await expectRejected(t, 'node-appears', 'NodeNotFound', new RegExp(node));
  t.teardown(async () => {
    await kubectl(['delete', 'node', node, '--ignore-not-found']);
  });
  const created = await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: node,
        annotations: { 'kwok.x-k8s.io/node': 'fake' },
        labels: { 'kubernetes.io/hostname': node },
      },
    }),
  });
  t.is(created.exitCode, 0, created.stderr);
  await new Promise((resolve) => setTimeout(resolve, 4000)); // several 1 s resyncs
  const tj = await getTraceJob(ns, 'node-appears');
  t.is(tj?.status?.phase, 'Failed');
  t.is(tj?.status?.jobName, undefined, "no trace was started behind its owner's back");
});

test('an image outside the allow-list is rejected', async (t) => {
  await apply(ns, traceJob('bad-image', { imageNameTag: 'quay.io/iovisor/kubectl-trace-bpftrace:latest' }));
  await expectRejected(t, 'bad-image', 'ImageNotAllowed', /allow/i);
});

test('a TraceJob in a namespace the operator does not run traces in is rejected', async (t) => {
  await apply(forbiddenNs, traceJob('elsewhere', {}, forbiddenNs));
  await expectRejected(t, 'elsewhere', 'NamespaceNotAllowed', new RegExp(ns), forbiddenNs);
});

test('a program taken from a ConfigMap that does not exist is rejected', async (t) => {
  await apply(
    ns,
    traceJob('missing-program', {
      program: undefined,
      programFrom: { configMapKeyRef: { name: 'nowhere', key: 'x.bt' } },
    }),
  );
  await expectRejected(t, 'missing-program', 'ProgramConfigMapNotFound', /nowhere/);
});

test('a pod target that does not exist is rejected', async (t) => {
  await apply(ns, traceJob('missing-pod', { hostname: undefined, targetPod: { name: 'ghost' } }));
  await expectRejected(t, 'missing-pod', 'PodNotFound', /ghost/);
});

test('a pod target that is not running yet waits, then the trace starts on its node', async (t) => {
  // The pod cannot be scheduled until kwok-node-1 carries a label only this test sets.
  const label = `trace-operator.test/${ns}`;
  t.teardown(async () => {
    await kubectl(['label', 'node', 'kwok-node-1', `${label}-`]);
  });
  await apply(ns, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'late', namespace: ns },
    spec: { nodeSelector: { [label]: 'yes' }, containers: [{ name: 'app', image: 'busybox' }] },
  });
  await apply(ns, traceJob('late-pod', { hostname: undefined, targetPod: { name: 'late', container: 'app' } }));
  const waiting = await waitForTraceJob(
    ns,
    'late-pod',
    'waits for its pod',
    (x) => condition(x, 'Accepted')?.status === 'Unknown',
  );
  t.is(waiting.status?.phase, 'Pending');
  t.is(waiting.status?.jobName, undefined);
  const labelled = await kubectl(['label', 'node', 'kwok-node-1', `${label}=yes`]);
  t.is(labelled.exitCode, 0, labelled.stderr);
  const running = await waitForPhase(ns, 'late-pod', 'Running');
  t.is(running.status?.node, 'kwok-node-1');
});

test('the API server itself rejects what the schema forbids, so the controller never sees it', async (t) => {
  const result = await kubectl(['apply', '-f', '-'], {
    namespace: ns,
    input: JSON.stringify(traceJob('negative', { deadline: -5 })),
  });
  t.not(result.exitCode, 0);
  t.regex(result.stderr, /deadline/);
});

test.after('the manager is still healthy after all the bad input', async (t) => {
  const healthz = await fetch(`${manager.probesUrl}/healthz`);
  t.is(healthz.status, 200);
  t.false(manager.logs().includes('observed a panic in reconcile'), 'no reconcile panicked');
});
