// The RBAC of config/rbac against the real API server's RBAC authorizer.
//
// The manager runs as a ServiceAccount bound to the rendered ClusterRole and
// leader-election Role (names suffixed, in this test's namespace), with a
// token from the TokenRequest API, never as admin. TraceJobs are driven
// through every path that makes a distinct API call: a node target (node
// get, then list by hostname label), a pod target (pod get), a program from
// a ConfigMap (configmap get), the end of a trace (pod log, output
// ConfigMap, status update), a rejection (events), a repeated event (event
// patch), a stop request (configmap patch) and a TTL (tracejob delete); the
// Lease is how it leads at all. At the end, no request of the manager was
// refused (its metrics and its log). A second manager whose role lacks pods/log shows that a
// missing rule is noticed. Users bound to the built-in view and edit roles
// get the TraceJob rights the aggregated viewer and editor roles add.
import test from 'ava';
import path from 'node:path';
import { execa } from 'execa';
import type { V1Pod } from '@kubernetes/client-node';
import type { TraceJob, TraceResult } from '../../src/tracejob/index.ts';
import { clusterPaths } from '../cluster/paths.ts';
import { clusterAvailable, createTestNamespace, kubectl, type KubectlResult } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, metricValue, startManager, type RunningManager } from '../support/manager.ts';
import {
  installRbac,
  serviceAccountKubeconfig,
  type InstalledRbac,
  type RbacObject,
} from '../support/service-account.ts';
import { finishTracePod, histogramResult } from '../support/trace-pod.ts';
import {
  apply,
  condition,
  eventsOnceRecorded,
  getConfigMap,
  getTraceJob,
  waitForPhase,
  waitForTraceJob,
  waitForTracePod,
} from '../support/tracejobs.ts';

interface Setup {
  ns: string;
  rbac: InstalledRbac;
  kubeconfig: string;
  manager: RunningManager;
  cleanupNamespace: () => Promise<void>;
}

const setups: Setup[] = [];
let main: Setup;
let withoutLogs: Setup;

/** A namespace, config/rbac installed in it (optionally edited), and a manager running as its ServiceAccount. */
async function setUp(prefix: string, edit?: (objects: RbacObject[]) => RbacObject[]): Promise<Setup> {
  const namespace = await createTestNamespace(prefix);
  const rbac = await installRbac(namespace.name, edit === undefined ? {} : { edit });
  const setup: Setup = {
    ns: namespace.name,
    rbac,
    kubeconfig: '',
    manager: undefined as unknown as RunningManager,
    cleanupNamespace: namespace.cleanup,
  };
  setups.push(setup);
  setup.kubeconfig = await serviceAccountKubeconfig(namespace.name, rbac.serviceAccount);
  setup.manager = await startManager({ namespaces: [namespace.name], kubeconfig: setup.kubeconfig });
  return setup;
}

test.before(async () => {
  if (!clusterAvailable())
    throw new Error(
      'the local control plane is not running: start it with `npm run cluster:up`, then run these tests again',
    );
  await installCrd();
  [main, withoutLogs] = await Promise.all([
    setUp('deploy-rbac'),
    setUp('deploy-rbac-nolog', (objects) =>
      objects.map((o) =>
        o.kind === 'ClusterRole' && o.metadata.name.startsWith('manager-role-')
          ? { ...o, rules: (o.rules ?? []).filter((r) => !(r.resources ?? []).includes('pods/log')) }
          : o,
      ),
    ),
  ]);
});

test.after.always('no request of the manager was refused; clean up', async (t) => {
  try {
    if (main?.manager !== undefined) {
      const refused = metricValue(await main.manager.metrics(), 'rest_client_requests_total', { code: '403' });
      const logs = main.manager.logs();
      t.is(refused, 0, 'the manager got 403 Forbidden responses');
      t.false(
        /forbidden|\b403\b|unauthorized/i.test(logs),
        logs
          .split('\n')
          .filter((l) => /forbidden|\b403\b|unauthorized/i.test(l))
          .join('\n'),
      );
    }
  } finally {
    for (const setup of setups) {
      await setup.manager?.stop();
      await setup.rbac.cleanup();
      await setup.cleanupNamespace();
    }
  }
});

/** kubectl as some other identity: a kubeconfig file, or `--as` impersonation through the admin one. */
async function kubectlWith(
  identity: { kubeconfig: string } | { as: string },
  args: readonly string[],
  input?: string,
): Promise<KubectlResult> {
  if ('as' in identity) return kubectl([`--as=${identity.as}`, ...args], input === undefined ? {} : { input });
  const result = await execa(
    path.join(clusterPaths().testbin, 'kubectl'),
    ['--kubeconfig', identity.kubeconfig, ...args],
    { input, reject: false },
  );
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode ?? -1 };
}

/** `kubectl auth can-i`; a subresource is given as 'resource/subresource' (can-i itself would read that as a name). */
async function canI(
  identity: { kubeconfig: string } | { as: string },
  verb: string,
  resource: string,
  namespace?: string,
): Promise<boolean> {
  const [type = resource, subresource] = resource.split('/');
  const result = await kubectlWith(identity, [
    'auth',
    'can-i',
    verb,
    type,
    ...(subresource === undefined ? [] : [`--subresource=${subresource}`]),
    ...(namespace === undefined ? ['--all-namespaces'] : ['--namespace', namespace]),
  ]);
  return result.stdout.trim() === 'yes';
}

function traceJob(ns: string, name: string, spec: Record<string, unknown>): TraceJob {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name, namespace: ns },
    spec: {
      hostname: 'kwok-node-0',
      deadline: 60,
      program: 'tracepoint:block:block_rq_issue { @c = count(); }',
      ...spec,
    },
  } as TraceJob;
}

const histogramText =
  'Attaching 3 probes...\n\n@usecs:\n[256, 512)             3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n[512, 1K)              1 |@@@@@@@@@@@@@@@@@                                   |\n';

/** Waits until the TraceJob runs and its pod exists; ends the pod the way a runner would. */
async function runToEnd(ns: string, name: string, result: TraceResult = histogramResult): Promise<string> {
  const running = await waitForPhase(ns, name, 'Running');
  const id = running.status?.id ?? '';
  const pod = await waitForTracePod(ns, id);
  await finishTracePod(
    ns,
    { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
    { exitCode: 0, text: histogramText, result },
  );
  return id;
}

test("the manager's token is a ServiceAccount's with neither Secrets nor wildcard rights", async (t) => {
  const sa = { kubeconfig: main.kubeconfig };
  const whoami = await kubectlWith(sa, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
  t.is(whoami.stdout, main.rbac.user, whoami.stderr);
  t.false(await canI(sa, 'get', 'secrets', main.ns));
  t.false(await canI(sa, 'list', 'secrets'));
  t.false(await canI(sa, '*', '*'));
  t.false(await canI(sa, 'create', 'pods', main.ns), 'trace pods are created by the Job controller, not the manager');
  t.false(await canI(sa, 'create', 'leases.coordination.k8s.io', 'default'), 'Leases only in its own namespace');
  t.true(await canI(sa, 'create', 'jobs.batch', 'default'));
  t.true(await canI(sa, 'update', 'tracejobs.observe.alexeldeib.xyz/finalizers', main.ns));
  t.true(await canI(sa, 'update', 'tracejobs.observe.alexeldeib.xyz/status', main.ns));
  t.false(await canI(sa, 'update', 'tracejobs.observe.alexeldeib.xyz', main.ns), 'the manager never changes a spec');
  // It creates TraceJobs only for its TraceTriggers (the firing path), and never makes or changes a trigger.
  t.false(await canI(sa, 'create', 'tracetriggers.observe.alexeldeib.xyz', main.ns), 'nor creates TraceTriggers');
  t.false(await canI(sa, 'update', 'tracetriggers.observe.alexeldeib.xyz', main.ns), 'nor changes TraceTriggers');
});

test('a node-target trace runs to Succeeded under the ServiceAccount, with its output kept and its events recorded', async (t) => {
  const { ns } = main;
  await apply(ns, traceJob(ns, 'node-target', {}));
  await runToEnd(ns, 'node-target');
  const tj = await waitForPhase(ns, 'node-target', 'Succeeded');
  t.like(condition(tj, 'Succeeded'), { status: 'True', reason: 'DeadlineReached' });
  t.is(tj.status?.result?.maps[0]?.histograms?.[0]?.p99, 1024);
  t.like(
    condition(tj, 'OutputCaptured'),
    { status: 'True' },
    'the pod log was read (pods/log get) and kept (configmaps create)',
  );
  const output = await getConfigMap(ns, tj.status?.output?.configMapName ?? '');
  t.true(output?.data?.['output.txt']?.includes('[256, 512)'));
  const events = await eventsOnceRecorded(ns, 'node-target', 'Normal DeadlineReached');
  t.true(
    events.some((e) => e.startsWith('Normal Created')),
    events.join('\n'),
  );
});

test('a node named by its hostname label is found with a label-selected node list', async (t) => {
  const { ns } = main;
  await apply(ns, traceJob(ns, 'by-label', { hostname: 'kwok-host-1.internal' }));
  const tj = await waitForPhase(ns, 'by-label', 'Running');
  t.is(tj.status?.node, 'kwok-node-1');
});

test("a pod-target trace reads its pod, and a programFrom trace reads the user's ConfigMap", async (t) => {
  const { ns } = main;
  await apply(ns, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'my-app', namespace: ns },
    spec: { nodeName: 'kwok-node-1', containers: [{ name: 'app', image: 'busybox' }] },
  });
  await eventually('the target pod runs', async () => {
    const pod = JSON.parse(
      (await kubectl(['get', 'pod', 'my-app', '-o', 'json'], { namespace: ns })).stdout || '{}',
    ) as V1Pod;
    return pod.status?.phase === 'Running' ? true : undefined;
  });
  await apply(ns, {
    ...traceJob(ns, 'pod-target', {}),
    spec: {
      targetPod: { name: 'my-app', container: 'app' },
      deadline: 60,
      program: 'tracepoint:raw_syscalls:sys_enter /pid == $container_pid/ { @c = count(); }',
    },
  });
  await apply(ns, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'programs', namespace: ns },
    data: { 'count.bt': 'tracepoint:block:block_rq_issue { @c = count(); }' },
  });
  await apply(ns, {
    ...traceJob(ns, 'program-from', {}),
    spec: {
      hostname: 'kwok-node-0',
      deadline: 60,
      programFrom: { configMapKeyRef: { name: 'programs', key: 'count.bt' } },
    },
  });
  const [byPod, fromConfigMap] = await Promise.all([
    waitForPhase(ns, 'pod-target', 'Running'),
    waitForPhase(ns, 'program-from', 'Running'),
  ]);
  t.is(byPod.status?.node, 'kwok-node-1');
  const program = await getConfigMap(ns, fromConfigMap.status?.jobName ?? '');
  t.is(program?.data?.['program.bt'], 'tracepoint:block:block_rq_issue { @c = count(); }');
});

test('a TraceJob naming an unknown node is rejected with a condition and a Warning event', async (t) => {
  const { ns } = main;
  await apply(ns, traceJob(ns, 'no-such-node', { hostname: 'no-such-node' }));
  const tj = await waitForPhase(ns, 'no-such-node', 'Failed');
  t.is(condition(tj, 'Accepted')?.status, 'False');
  await eventsOnceRecorded(ns, 'no-such-node', 'Warning ');
  t.is(tj.status?.jobName, undefined, 'no Job');
});

test('an Event repeated for the same TraceJob is counted on the first one (events patch)', async (t) => {
  const { ns } = main;
  await apply(ns, traceJob(ns, 'repeated', { hostname: 'no-such-node' }));
  await waitForTraceJob(
    ns,
    'repeated',
    'is rejected for its node',
    (tj) => condition(tj, 'Accepted')?.reason === 'NodeNotFound',
  );
  // Another reason in between, then the first one again with the same message: the recorder patches the first Event's count.
  const image = await kubectl(
    [
      'patch',
      'tracejob',
      'repeated',
      '--type=merge',
      '-p',
      '{"spec":{"imageNameTag":"registry.example/not-allowed:1"}}',
    ],
    { namespace: ns },
  );
  t.is(image.exitCode, 0, image.stderr);
  await waitForTraceJob(
    ns,
    'repeated',
    'is rejected for its image',
    (tj) => condition(tj, 'Accepted')?.reason === 'ImageNotAllowed',
  );
  const back = await kubectl(
    ['patch', 'tracejob', 'repeated', '--type=json', '-p', '[{"op":"remove","path":"/spec/imageNameTag"}]'],
    { namespace: ns },
  );
  t.is(back.exitCode, 0, back.stderr);
  await waitForTraceJob(
    ns,
    'repeated',
    'is rejected for its node again',
    (tj) => condition(tj, 'Accepted')?.reason === 'NodeNotFound',
  );
  const count = await eventually('the repeated Event is counted', async () => {
    const result = await kubectl(
      ['get', 'events', '-o', 'json', '--field-selector', 'involvedObject.name=repeated,reason=NodeNotFound'],
      { namespace: ns },
    );
    const events = (JSON.parse(result.stdout || '{"items":[]}') as { items: { count?: number }[] }).items;
    return events.length === 1 && events[0]?.count === 2 ? 2 : undefined;
  });
  t.is(count, 2);
});

test('a stop request is written to the program ConfigMap (patch) and the trace ends Stopped', async (t) => {
  const { ns } = main;
  await apply(ns, traceJob(ns, 'stopped', {}));
  const running = await waitForPhase(ns, 'stopped', 'Running');
  const patched = await kubectl(['patch', 'tracejob', 'stopped', '--type=merge', '-p', '{"spec":{"stop":true}}'], {
    namespace: ns,
  });
  t.is(patched.exitCode, 0, patched.stderr);
  await waitForTraceJob(ns, 'stopped', 'has StopRequested', (tj) => condition(tj, 'StopRequested')?.status === 'True');
  t.truthy((await getConfigMap(ns, running.status?.jobName ?? ''))?.data?.['stop']);
  await runToEnd(ns, 'stopped', { ...histogramResult, outcome: 'Stopped' });
  t.like(condition(await waitForPhase(ns, 'stopped', 'Succeeded'), 'Succeeded'), { reason: 'Stopped' });
});

test('a finished TraceJob with a time-to-live is deleted by the manager', async (t) => {
  const { ns } = main;
  await apply(ns, traceJob(ns, 'expires', { ttlSecondsAfterFinished: 1 }));
  await runToEnd(ns, 'expires');
  await eventually('the TraceJob is deleted after its TTL', async () =>
    (await getTraceJob(ns, 'expires')) === undefined ? true : undefined,
  );
  const events = await eventsOnceRecorded(ns, 'expires', 'Normal Expired');
  t.true(
    events.some((e) => e.startsWith('Normal Expired')),
    events.join('\n'),
  );
});

test('the manager leads through a Lease in its namespace', async (t) => {
  const lease = await kubectl(['get', 'lease', 'trace-operator-leader', '-o', 'jsonpath={.spec.holderIdentity}'], {
    namespace: main.ns,
  });
  t.is(lease.exitCode, 0, lease.stderr);
  t.not(lease.stdout, '');
});

test('a missing rule shows: without pods/log the trace ends but its output is reported unreadable', async (t) => {
  const { ns } = withoutLogs;
  await apply(ns, traceJob(ns, 'no-logs', {}));
  await runToEnd(ns, 'no-logs');
  const tj = await waitForPhase(ns, 'no-logs', 'Succeeded');
  const captured = condition(tj, 'OutputCaptured');
  t.like(captured, { status: 'False', reason: 'LogsUnavailable' });
  t.regex(captured?.message ?? '', /forbidden/i);
  t.true(
    metricValue(await withoutLogs.manager.metrics(), 'rest_client_requests_total', { code: '403' }) > 0,
    'the refusal shows in the metrics the main manager is checked with',
  );
});

test('a user bound to the built-in view role can read TraceJobs but not create, change or delete them', async (t) => {
  const { ns, rbac } = main;
  // The clusterrole-aggregation controller copies the viewer role's rules into "view".
  await eventually('the viewer role is aggregated into view', async () => {
    const view = JSON.parse((await kubectl(['get', 'clusterrole', 'view', '-o', 'json'])).stdout) as {
      rules?: { resources?: string[] }[];
    };
    return (view.rules ?? []).some((r) => (r.resources ?? []).includes('tracejobs')) ? true : undefined;
  });
  const viewer = { as: `viewer-${rbac.clusterName('x')}` };
  const bound = await kubectl(['create', 'rolebinding', 'viewer', '--clusterrole=view', `--user=${viewer.as}`], {
    namespace: ns,
  });
  t.is(bound.exitCode, 0, bound.stderr);
  await eventually('the binding is in force', async () =>
    (await canI(viewer, 'list', 'tracejobs.observe.alexeldeib.xyz', ns)) ? true : undefined,
  );
  const listed = await kubectlWith(viewer, ['get', 'tracejobs', '-n', ns, '-o', 'name']);
  t.is(listed.exitCode, 0, listed.stderr);
  const created = await kubectlWith(viewer, ['create', '-f', '-'], JSON.stringify(traceJob(ns, 'by-viewer', {})));
  t.not(created.exitCode, 0);
  t.regex(created.stderr, /forbidden/i);
  t.false(await canI(viewer, 'delete', 'tracejobs.observe.alexeldeib.xyz', ns));
  t.false(await canI(viewer, 'patch', 'tracejobs.observe.alexeldeib.xyz', ns));
});

test('a user bound to the built-in edit role can create and stop TraceJobs, but never write their status', async (t) => {
  const { ns, rbac } = main;
  await eventually('the editor role is aggregated into edit', async () => {
    const edit = JSON.parse((await kubectl(['get', 'clusterrole', 'edit', '-o', 'json'])).stdout) as {
      rules?: { resources?: string[]; verbs?: string[] }[];
    };
    return (edit.rules ?? []).some(
      (r) => (r.resources ?? []).includes('tracejobs') && (r.verbs ?? []).includes('create'),
    )
      ? true
      : undefined;
  });
  const editor = { as: `editor-${rbac.clusterName('x')}` };
  const bound = await kubectl(['create', 'rolebinding', 'editor', '--clusterrole=edit', `--user=${editor.as}`], {
    namespace: ns,
  });
  t.is(bound.exitCode, 0, bound.stderr);
  await eventually('the binding is in force', async () =>
    (await canI(editor, 'create', 'tracejobs.observe.alexeldeib.xyz', ns)) ? true : undefined,
  );
  const created = await kubectlWith(
    editor,
    ['create', '-f', '-'],
    JSON.stringify(traceJob(ns, 'by-editor', { hostname: 'no-such-node' })),
  );
  t.is(created.exitCode, 0, created.stderr);
  const stopped = await kubectlWith(editor, [
    'patch',
    'tracejob',
    'by-editor',
    '-n',
    ns,
    '--type=merge',
    '-p',
    '{"spec":{"stop":true}}',
  ]);
  t.is(stopped.exitCode, 0, stopped.stderr);
  const status = await kubectlWith(editor, [
    'patch',
    'tracejob',
    'by-editor',
    '-n',
    ns,
    '--subresource=status',
    '--type=merge',
    '-p',
    '{"status":{"phase":"Succeeded"}}',
  ]);
  t.not(status.exitCode, 0, 'an editor must not forge a result');
  t.regex(status.stderr, /forbidden/i);
  t.false(await canI(editor, 'update', 'tracejobs.observe.alexeldeib.xyz/status', ns));
  t.true(await canI(editor, 'get', 'tracejobs.observe.alexeldeib.xyz/status', ns));
});

test('a user bound directly to the viewer or editor role gets exactly its TraceJob rights', async (t) => {
  const { ns, rbac } = main;
  const viewer = { as: `direct-viewer-${rbac.clusterName('x')}` };
  const editor = { as: `direct-editor-${rbac.clusterName('x')}` };
  for (const [name, role, user] of [
    ['direct-viewer', 'tracejob-viewer-role', viewer.as],
    ['direct-editor', 'tracejob-editor-role', editor.as],
  ] as const) {
    const bound = await kubectl(
      ['create', 'rolebinding', name, `--clusterrole=${rbac.clusterName(role)}`, `--user=${user}`],
      { namespace: ns },
    );
    t.is(bound.exitCode, 0, bound.stderr);
  }
  await eventually('the bindings are in force', async () =>
    (await canI(editor, 'create', 'tracejobs.observe.alexeldeib.xyz', ns)) &&
    (await canI(viewer, 'get', 'tracejobs.observe.alexeldeib.xyz', ns))
      ? true
      : undefined,
  );
  t.false(await canI(viewer, 'create', 'tracejobs.observe.alexeldeib.xyz', ns));
  t.false(await canI(editor, 'get', 'configmaps', ns), 'the editor role is about TraceJobs only');
  t.false(
    await canI(editor, 'create', 'tracejobs.observe.alexeldeib.xyz', 'default'),
    'a RoleBinding grants one namespace',
  );
});
