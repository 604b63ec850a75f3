// The operator as it ships, end to end: what the README tells a user to do.
// `make deploy IMG=... RUNNER_IMG=...` with the manager and runner images
// built from the Dockerfile (npm run setup) and imported into the real node's
// containerd under those exact references; the manager then runs as its
// Deployment's pod on the real node (the Deployment and ReplicaSet controllers
// of the local kube-controller-manager create it), under its ServiceAccount
// and RBAC, in a namespace that enforces the restricted Pod Security
// Standard, and talks to the API server through the `kubernetes` Service. A
// TraceJob then runs bpftrace on that node and keeps its result; `make
// undeploy` removes everything. The only addition to config/default is the
// toleration for the real node's taint (test/real-node/deploy/).
import test from 'ava';
import type { V1Deployment, V1Namespace, V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { clusterPaths } from '../cluster/paths.ts';
import type { RealNodeInfo } from '../cluster/real-node.ts';
import { createTestNamespace, kubeconfigPath, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { apply, condition, getConfigMap, listJson, waitForTraceJob } from '../support/tracejobs.ts';
import { realNode } from './support.ts';

const SYSTEM_NS = 'trace-operator-system';
const DEPLOYMENT = 'trace-operator-controller-manager';
const paths = clusterPaths();

let node: RealNodeInfo;

function make(target: 'deploy' | 'undeploy'): Promise<{ exitCode: number; all: string }> {
  return execa(
    'make',
    [
      '--no-print-directory',
      target,
      `IMG=${node.managerImage}`,
      `RUNNER_IMG=${node.runnerImage}`,
      'DEPLOY_BASE=test/real-node/deploy',
      `KUBECTL=${paths.testbin}/kubectl`,
    ],
    { cwd: paths.repoRoot, env: { KUBECONFIG: kubeconfigPath }, stdin: 'ignore', all: true, reject: false },
  ).then((r) => ({ exitCode: r.exitCode ?? -1, all: String(r.all) }));
}

async function getJson<T>(args: readonly string[]): Promise<T | undefined> {
  const got = await kubectl([...args, '-o', 'json', '--ignore-not-found']);
  return got.exitCode === 0 && got.stdout.trim() !== '' ? (JSON.parse(got.stdout) as T) : undefined;
}

test.before(async () => {
  node = await realNode();
});

test.after.always(async () => {
  // Whatever the test left (it undeploys itself when it passes).
  await make('undeploy');
});

test.serial(
  'make deploy runs the manager as its Deployment on the real node under restricted Pod Security; a TraceJob keeps its result; make undeploy removes it all',
  async (t) => {
    const deployed = await make('deploy');
    t.is(deployed.exitCode, 0, deployed.all);

    const ns = await getJson<V1Namespace>(['get', 'namespace', SYSTEM_NS]);
    t.is(ns?.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');

    const rollout = await kubectl(
      ['rollout', 'status', `deployment/${DEPLOYMENT}`, '--timeout=180s', '--namespace', SYSTEM_NS],
      {},
    );
    const describe = async (): Promise<string> =>
      (await kubectl(['describe', 'pods', '--namespace', SYSTEM_NS])).stdout +
      (await kubectl(['get', 'events', '--namespace', SYSTEM_NS])).stdout;
    t.is(rollout.exitCode, 0, `${rollout.stderr}\n${await describe()}`);

    const pods = await listJson<V1Pod>(SYSTEM_NS, 'pods', 'control-plane=controller-manager');
    t.is(pods.length, 1);
    const pod = pods[0];
    t.is(pod?.spec?.nodeName, node.nodeName);
    t.is(pod?.spec?.serviceAccountName, `${DEPLOYMENT}`);
    t.is(pod?.spec?.containers[0]?.image, node.managerImage);
    t.true(pod?.metadata?.ownerReferences?.some((o) => o.kind === 'ReplicaSet') === true, 'created by a ReplicaSet');
    t.true(
      pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      'the readiness probe passes',
    );
    const deployment = await getJson<V1Deployment>(['get', 'deployment', DEPLOYMENT, '--namespace', SYSTEM_NS]);
    t.is(deployment?.status?.availableReplicas, 1);

    // A trace in a namespace of its own, run by the deployed manager.
    const tracing = await createTestNamespace('deployed');
    t.teardown(tracing.cleanup);
    await apply(tracing.name, {
      apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
      kind: 'TraceJob',
      metadata: { name: 'ticks', namespace: tracing.name },
      spec: { hostname: node.nodeName, deadline: 8, program: 'interval:ms:100 { @ticks = count(); }' },
    });
    const done: TraceJob = await waitForTraceJob(
      tracing.name,
      'ticks',
      'ends',
      (tj) => tj.status?.phase === 'Succeeded' || tj.status?.phase === 'Failed',
      180_000,
    );
    const managerLog = async (): Promise<string> =>
      (await kubectl(['logs', `deployment/${DEPLOYMENT}`, '--namespace', SYSTEM_NS, '--tail=40'])).stdout;
    t.is(done.status?.phase, 'Succeeded', `${JSON.stringify(done.status?.conditions)}\n${await managerLog()}`);
    t.like(condition(done, 'Succeeded'), { status: 'True', reason: 'DeadlineReached' });
    const ticks = done.status?.result?.maps.find((m) => m.name === '@ticks');
    t.true(Number(ticks?.value ?? 0) > 0, JSON.stringify(done.status?.result));
    const traceJobPods = await listJson<V1Pod>(
      tracing.name,
      'pods',
      `iovisor.org/kubectl-trace-id=${done.status?.id ?? ''}`,
    );
    for (const p of traceJobPods) {
      t.is(p.spec?.nodeName, node.nodeName);
      t.is(p.spec?.containers[0]?.image, node.runnerImage);
    }
    const output = await getConfigMap(tracing.name, done.status?.output?.configMapName ?? '');
    t.regex(output?.data?.['output.txt'] ?? '', /@ticks: \d+/, 'the output is kept');

    const removed = await make('undeploy');
    t.is(removed.exitCode, 0, removed.all);
    await eventually(
      `namespace ${SYSTEM_NS} is gone`,
      async () => ((await getJson<V1Namespace>(['get', 'namespace', SYSTEM_NS])) === undefined ? true : undefined),
      120_000,
    );
    for (const what of [
      ['crd', 'tracejobs.observe.alexeldeib.xyz'],
      ['clusterrole', 'trace-operator-manager-role'],
      ['clusterrolebinding', 'trace-operator-manager-rolebinding'],
    ]) {
      const left = await kubectl(['get', ...what, '--ignore-not-found', '-o', 'name']);
      t.is(left.stdout.trim(), '', `${what.join('/')} is left after make undeploy`);
    }
  },
);
