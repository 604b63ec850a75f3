import test from 'ava';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import {
  findNodeByHostname,
  hostnameLabelOf,
  resolveNodeTarget,
  resolvePodTarget,
  stripRuntimePrefix,
  TARGET_REASONS,
} from '../../src/tracejob/target.ts';

const node = (name: string, hostname?: string): V1Node => ({
  metadata: { name, ...(hostname === undefined ? {} : { labels: { 'kubernetes.io/hostname': hostname } }) },
});

function runningPod(
  overrides: Partial<{ nodeName: string; phase: string; containerID: string; running: boolean }> = {},
): V1Pod {
  return {
    metadata: { name: 'web', namespace: 'default', uid: 'pod-uid-1' },
    spec: { nodeName: overrides.nodeName ?? 'node-a', containers: [{ name: 'app' }, { name: 'sidecar' }] },
    status: {
      phase: overrides.phase ?? 'Running',
      containerStatuses: [
        {
          name: 'app',
          image: 'app:1',
          imageID: '',
          ready: true,
          restartCount: 0,
          containerID: overrides.containerID ?? 'containerd://aaa111',
          state:
            overrides.running === false
              ? { waiting: { reason: 'ContainerCreating' } }
              : { running: { startedAt: new Date(0) } },
        },
        {
          name: 'sidecar',
          image: 'side:1',
          imageID: '',
          ready: true,
          restartCount: 0,
          containerID: 'cri-o://bbb222',
          state: { running: {} },
        },
      ],
    },
  };
}

test('findNodeByHostname prefers metadata.name, falls back to the hostname label (kubectl-trace #173)', (t) => {
  const nodes = [node('aks-1', 'aks-host-1'), node('aks-host-2', 'other'), node('aks-2', 'aks-host-2')];
  t.is(findNodeByHostname(nodes, 'aks-1')?.metadata?.name, 'aks-1');
  t.is(findNodeByHostname(nodes, 'aks-host-1')?.metadata?.name, 'aks-1');
  t.is(findNodeByHostname(nodes, 'aks-host-2')?.metadata?.name, 'aks-host-2', 'a name match wins over a label match');
  t.is(findNodeByHostname(nodes, 'missing'), undefined);
});

test('hostnameLabelOf uses the label, else the node name', (t) => {
  t.is(hostnameLabelOf(node('n1', 'n1.example')), 'n1.example');
  t.is(hostnameLabelOf(node('n2')), 'n2');
});

test('resolveNodeTarget', (t) => {
  t.deepEqual(resolveNodeTarget('aks-host-1', node('aks-1', 'aks-host-1')), {
    ok: true,
    target: { kind: 'node', nodeName: 'aks-1', hostnameLabel: 'aks-host-1' },
  });
  const missing = resolveNodeTarget('ghost', undefined);
  t.false(missing.ok);
  if (!missing.ok) {
    t.is(missing.error.reason, TARGET_REASONS.NodeNotFound);
    t.is(missing.error.field, 'spec.hostname');
    t.regex(missing.error.message, /no node named "ghost".*kubectl get nodes/);
  }
});

test('resolvePodTarget: running pod, named or first container', (t) => {
  t.deepEqual(resolvePodTarget({ name: 'web' }, runningPod(), node('node-a', 'host-a')), {
    ok: true,
    target: {
      kind: 'pod',
      nodeName: 'node-a',
      hostnameLabel: 'host-a',
      podUID: 'pod-uid-1',
      containerName: 'app',
      containerID: 'containerd://aaa111',
    },
  });
  const sidecar = resolvePodTarget({ name: 'web', container: 'sidecar' }, runningPod(), node('node-a'));
  t.true(sidecar.ok);
  if (sidecar.ok && sidecar.target.kind === 'pod') {
    t.is(sidecar.target.containerName, 'sidecar');
    t.is(sidecar.target.containerID, 'cri-o://bbb222');
    t.is(sidecar.target.hostnameLabel, 'node-a');
  }
});

test('resolvePodTarget: each way it can fail says why', (t) => {
  const cases: [ReturnType<typeof resolvePodTarget>, string, string, RegExp][] = [
    [
      resolvePodTarget({ name: 'web' }, undefined, undefined),
      TARGET_REASONS.PodNotFound,
      'spec.targetPod.name',
      /no pod named "web"/,
    ],
    [
      resolvePodTarget({ name: 'web' }, runningPod({ nodeName: '' }), undefined),
      TARGET_REASONS.PodNotScheduled,
      'spec.targetPod.name',
      /not scheduled/,
    ],
    [
      resolvePodTarget({ name: 'web' }, runningPod(), undefined),
      TARGET_REASONS.NodeNotFound,
      'spec.targetPod.name',
      /runs on node node-a, which was not found/,
    ],
    [
      resolvePodTarget({ name: 'web' }, runningPod(), node('node-b')),
      TARGET_REASONS.NodeNotFound,
      'spec.targetPod.name',
      /node-a/,
    ],
    [
      resolvePodTarget({ name: 'web' }, runningPod({ phase: 'Pending' }), node('node-a')),
      TARGET_REASONS.PodNotRunning,
      'spec.targetPod.name',
      /is Pending, not Running/,
    ],
    [
      resolvePodTarget({ name: 'web', container: 'db' }, runningPod(), node('node-a')),
      TARGET_REASONS.ContainerNotFound,
      'spec.targetPod.container',
      /no container "db"; its containers are: app, sidecar/,
    ],
    [
      resolvePodTarget({ name: 'web' }, runningPod({ running: false }), node('node-a')),
      TARGET_REASONS.ContainerNotRunning,
      'spec.targetPod.container',
      /container app of pod web is not running/,
    ],
    [
      resolvePodTarget({ name: 'web' }, runningPod({ containerID: '' }), node('node-a')),
      TARGET_REASONS.ContainerNotRunning,
      'spec.targetPod.container',
      /not running/,
    ],
  ];
  for (const [result, reason, field, message] of cases) {
    t.false(result.ok, reason);
    if (result.ok) continue;
    t.is(result.error.reason, reason);
    t.is(result.error.field, field);
    t.regex(result.error.message, message);
  }
});

test('stripRuntimePrefix', (t) => {
  t.is(stripRuntimePrefix('containerd://abc'), 'abc');
  t.is(stripRuntimePrefix('cri-o://def'), 'def');
  t.is(stripRuntimePrefix('docker://0f'), '0f');
  t.is(stripRuntimePrefix('plain'), 'plain');
});
