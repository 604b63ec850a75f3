import test from 'ava';
import type { V1Container, V1Job, V1PodSpec } from '@kubernetes/client-node';
import {
  buildTraceObjects,
  isStopRequested,
  runnerArgs,
  stopRequestData,
  stopRequestPatch,
  traceObjectName,
} from '../../src/tracejob/mapping.ts';
import { specHash } from '../../src/tracejob/spec-change.ts';
import {
  defaultOperatorSettings,
  validateTraceJob,
  type OperatorSettings,
  type ResolvedTarget,
  type TraceJob,
} from '../../src/tracejob/validate.ts';

const ID = '16f11776-5b39-494a-8341-718850061edc';
const NAME = `kubectl-trace-${ID}`;
const PROGRAM = 'tracepoint:block:block_rq_issue { @[comm] = count(); }';
const nodeTarget: ResolvedTarget = { kind: 'node', nodeName: 'node-a', hostnameLabel: 'node-a.internal' };
const podTarget: ResolvedTarget = {
  kind: 'pod',
  nodeName: 'node-a',
  hostnameLabel: 'node-a.internal',
  podUID: 'c2b1e8a4-0000-4000-8000-000000000001',
  containerName: 'app',
  containerID: 'containerd://0123456789abcdef',
};

function traceJob(spec: Record<string, unknown> = {}): TraceJob {
  const result = validateTraceJob(
    {
      apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
      kind: 'TraceJob',
      metadata: { name: 'biolatency', namespace: 'team-a', uid: 'b9b0a7a2-1111-4222-8333-444455556666', generation: 1 },
      spec: { program: PROGRAM, hostname: 'node-a', ...spec },
      status: { id: ID },
    },
    defaultOperatorSettings(),
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.traceJob;
}

function pod(job: V1Job): V1PodSpec {
  const spec = job.spec?.template.spec;
  if (spec === undefined) throw new Error('job has no pod spec');
  return spec;
}

function container(job: V1Job): V1Container {
  const c = pod(job).containers[0];
  if (c === undefined) throw new Error('no container');
  return c;
}

const labels = {
  'iovisor.org/kubectl-trace': NAME,
  'iovisor.org/kubectl-trace-id': ID,
  'app.kubernetes.io/managed-by': 'trace-operator',
};
const annotations = {
  'iovisor.org/kubectl-trace': NAME,
  'iovisor.org/kubectl-trace-id': ID,
  'observe.alexeldeib.xyz/tracejob': 'biolatency',
};
const owner = {
  apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
  kind: 'TraceJob',
  name: 'biolatency',
  uid: 'b9b0a7a2-1111-4222-8333-444455556666',
  controller: true,
  blockOwnerDeletion: true,
};

test('names: ConfigMap and Job are kubectl-trace-<id> in the TraceJob namespace', (t) => {
  const { configMap, job } = buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings());
  t.is(traceObjectName(ID), NAME);
  t.is(configMap.metadata?.name, NAME);
  t.is(job.metadata?.name, NAME);
  t.is(configMap.metadata?.namespace, 'team-a');
  t.is(job.metadata?.namespace, 'team-a');
  t.is(configMap.apiVersion, 'v1');
  t.is(configMap.kind, 'ConfigMap');
  t.is(job.apiVersion, 'batch/v1');
  t.is(job.kind, 'Job');
});

test('labels and the same pairs as annotations on ConfigMap, Job and pod template', (t) => {
  const tj = traceJob();
  const { configMap, job } = buildTraceObjects(tj, nodeTarget, defaultOperatorSettings());
  for (const meta of [configMap.metadata, job.spec?.template.metadata]) {
    t.deepEqual(meta?.labels, labels);
    t.deepEqual(meta?.annotations, annotations);
  }
  t.deepEqual(job.metadata?.labels, labels);
  // The Job also records the hash of the spec it was built from.
  t.deepEqual(job.metadata?.annotations, { ...annotations, 'observe.alexeldeib.xyz/spec-hash': specHash(tj.spec) });
});

test('owner references: controller and blockOwnerDeletion to the TraceJob, on ConfigMap and Job only', (t) => {
  const { configMap, job } = buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings());
  t.deepEqual(configMap.metadata?.ownerReferences, [owner]);
  t.deepEqual(job.metadata?.ownerReferences, [owner]);
  t.is(job.spec?.template.metadata?.ownerReferences, undefined);
});

test('ConfigMap holds the program at program.bt and nothing else', (t) => {
  const { configMap } = buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings());
  t.deepEqual(configMap.data, { 'program.bt': PROGRAM });
  t.is(configMap.immutable, undefined, 'must stay mutable: the stop request is added to it');
});

test('Job: run once, deadline wrapping, no short TTL', (t) => {
  const { job } = buildTraceObjects(
    traceJob({ deadline: 120, deadlineGracePeriod: 15 }),
    nodeTarget,
    defaultOperatorSettings(),
  );
  t.is(job.spec?.backoffLimit, 0);
  t.is(job.spec?.parallelism, 1);
  t.is(job.spec?.completions, 1);
  t.is(job.spec?.activeDeadlineSeconds, 135);
  t.is(job.spec?.ttlSecondsAfterFinished, undefined);
  t.is(job.spec?.selector, undefined);
  t.is(job.spec?.manualSelector, undefined);
});

test('Job: defaults give activeDeadlineSeconds 3630', (t) => {
  const { job } = buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings());
  t.is(job.spec?.activeDeadlineSeconds, 3630);
  t.deepEqual(container(job).args?.slice(1, 3), ['--deadline=3600', '--grace-period=30']);
});

test('pod: exactly one container, hostPID, restartPolicy Never, grace covers the preStop hook', (t) => {
  const { job } = buildTraceObjects(traceJob({ deadlineGracePeriod: 45 }), nodeTarget, defaultOperatorSettings());
  const spec = pod(job);
  t.is(spec.containers.length, 1);
  t.is(spec.hostPID, true);
  t.is(spec.restartPolicy, 'Never');
  t.is(spec.terminationGracePeriodSeconds, 50);
  t.true((spec.terminationGracePeriodSeconds ?? 0) >= 45);
  t.is(spec.initContainers, undefined);
  t.is(spec.enableServiceLinks, false);
  t.is(spec.hostNetwork, undefined);
});

test('pod: required node affinity on kubernetes.io/hostname with the hostname label value, tolerate everything', (t) => {
  const { job } = buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings());
  const spec = pod(job);
  t.deepEqual(spec.affinity, {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node-a.internal'] }] },
        ],
      },
    },
  });
  t.is(spec.nodeName, undefined);
  t.is(spec.nodeSelector, undefined);
  t.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
});

test('pod: service account: none given -> no token mounted; given -> used', (t) => {
  const without = pod(buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings()).job);
  t.is(without.serviceAccountName, undefined);
  t.is(without.automountServiceAccountToken, false);
  const withSa = pod(
    buildTraceObjects(traceJob({ serviceAccount: 'tracer' }), nodeTarget, defaultOperatorSettings()).job,
  );
  t.is(withSa.serviceAccountName, 'tracer');
  t.is(withSa.automountServiceAccountToken, undefined);
});

test('container: the runner command contract', (t) => {
  const c = container(
    buildTraceObjects(traceJob({ deadline: 60, deadlineGracePeriod: 20 }), nodeTarget, defaultOperatorSettings()).job,
  );
  t.is(c.name, NAME);
  t.deepEqual(c.command, ['trace-operator', 'runner']);
  t.deepEqual(c.args, [
    '--program=/programs/program.bt',
    '--deadline=60',
    '--grace-period=20',
    '--stop-file=/programs/stop',
    '--termination-log=/dev/termination-log',
  ]);
  t.is(c.terminationMessagePath, '/dev/termination-log');
  t.is(c.terminationMessagePolicy, 'File');
  t.deepEqual(c.lifecycle, { preStop: { exec: { command: ['trace-operator', 'stop', '--timeout=20'] } } });
});

test('container: stdin, tty, privileged, image from settings, pull policy, resources', (t) => {
  const settings: OperatorSettings = { ...defaultOperatorSettings(), imagePullPolicy: 'Always' };
  const c = container(buildTraceObjects(traceJob(), nodeTarget, settings).job);
  t.is(c.stdin, true);
  t.is(c.tty, true);
  t.deepEqual(c.securityContext, { privileged: true });
  t.is(c.image, 'ghcr.io/alexeldeib/trace-operator:v0.1.0');
  t.is(c.imagePullPolicy, 'Always');
  t.deepEqual(c.resources, { requests: { cpu: '100m', memory: '100Mi' }, limits: { cpu: '1', memory: '1Gi' } });
  const noPolicy: OperatorSettings = {
    defaultImage: 'registry.local/r:1',
    defaultInitImage: 'registry.local/i:1',
    allowedImages: ['registry.local/'],
  };
  const c2 = container(buildTraceObjects(traceJob(), nodeTarget, noPolicy).job);
  t.is(c2.image, 'registry.local/r:1');
  t.is(c2.imagePullPolicy, undefined);
  const c3 = container(
    buildTraceObjects(
      traceJob({ imageNameTag: 'ghcr.io/alexeldeib/trace-operator:v9' }),
      nodeTarget,
      defaultOperatorSettings(),
    ).job,
  );
  t.is(c3.image, 'ghcr.io/alexeldeib/trace-operator:v9');
});

test('volumes without fetchHeaders: program read-only at /programs, host /sys, /lib/modules and /usr/src read-only', (t) => {
  const { job } = buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings());
  t.deepEqual(pod(job).volumes, [
    { name: 'program', configMap: { name: NAME } },
    { name: 'sys', hostPath: { path: '/sys' } },
    { name: 'modules-host', hostPath: { path: '/lib/modules' } },
    { name: 'usr-src-host', hostPath: { path: '/usr/src' } },
  ]);
  t.deepEqual(container(job).volumeMounts, [
    { name: 'program', mountPath: '/programs', readOnly: true },
    { name: 'sys', mountPath: '/sys', readOnly: true },
    { name: 'modules-host', mountPath: '/lib/modules', readOnly: true },
    { name: 'usr-src-host', mountPath: '/usr/src', readOnly: true },
  ]);
});

test('fetchHeaders: an init container prepares headers into emptyDirs; still exactly one container', (t) => {
  const { job } = buildTraceObjects(traceJob({ fetchHeaders: true }), nodeTarget, defaultOperatorSettings());
  const spec = pod(job);
  t.is(spec.containers.length, 1);
  t.is(spec.initContainers?.length, 1);
  const init = spec.initContainers?.[0];
  t.is(init?.name, 'kubectl-trace-init');
  t.is(init?.image, 'quay.io/iovisor/kubectl-trace-init:latest');
  t.is(init?.imagePullPolicy, 'IfNotPresent');
  t.deepEqual(init?.volumeMounts, [
    { name: 'os-release', mountPath: '/etc/os-release.host', readOnly: true },
    { name: 'modules-host', mountPath: '/lib/modules.host', readOnly: true },
    { name: 'boot-host', mountPath: '/boot.host', readOnly: true },
    { name: 'modules-dir', mountPath: '/lib/modules', readOnly: false },
    { name: 'linux-headers-generated', mountPath: '/usr/src', readOnly: false },
  ]);
  t.deepEqual(spec.volumes, [
    { name: 'program', configMap: { name: NAME } },
    { name: 'sys', hostPath: { path: '/sys' } },
    { name: 'os-release', hostPath: { path: '/etc/os-release' } },
    { name: 'modules-host', hostPath: { path: '/lib/modules' } },
    { name: 'boot-host', hostPath: { path: '/boot' } },
    { name: 'modules-dir', emptyDir: { sizeLimit: '1Gi' } },
    { name: 'linux-headers-generated', emptyDir: { sizeLimit: '2Gi' } },
  ]);
  t.deepEqual(container(job).volumeMounts, [
    { name: 'program', mountPath: '/programs', readOnly: true },
    { name: 'sys', mountPath: '/sys', readOnly: true },
    { name: 'modules-dir', mountPath: '/lib/modules', readOnly: true },
    { name: 'modules-host', mountPath: '/lib/modules.host', readOnly: true },
    { name: 'linux-headers-generated', mountPath: '/usr/src', readOnly: true },
  ]);
  // Nothing host-writable: every hostPath is mounted read-only.
  const hostVolumes = new Set((spec.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => v.name));
  for (const m of [...(init?.volumeMounts ?? []), ...(container(job).volumeMounts ?? [])]) {
    if (hostVolumes.has(m.name)) t.true(m.readOnly, m.name);
  }
  const custom = buildTraceObjects(
    traceJob({ fetchHeaders: true, initImageNameTag: 'quay.io/iovisor/kubectl-trace-init:v2' }),
    nodeTarget,
    defaultOperatorSettings(),
  );
  t.is(pod(custom.job).initContainers?.[0]?.image, 'quay.io/iovisor/kubectl-trace-init:v2');
});

test('pod target: runner gets the pod UID and the container ID without the runtime prefix', (t) => {
  const tj = traceJob({ hostname: undefined, targetPod: { name: 'web', container: 'app' } });
  t.deepEqual(runnerArgs(tj, podTarget), [
    '--program=/programs/program.bt',
    '--deadline=3600',
    '--grace-period=30',
    '--stop-file=/programs/stop',
    '--termination-log=/dev/termination-log',
    `--pod-uid=${podTarget.kind === 'pod' ? podTarget.podUID : ''}`,
    '--container-id=0123456789abcdef',
  ]);
  const { job } = buildTraceObjects(tj, podTarget, defaultOperatorSettings());
  t.deepEqual(
    pod(job).affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]
      ?.matchExpressions?.[0]?.values,
    ['node-a.internal'],
  );
});

test('programArgs follow -- at the end of the arguments', (t) => {
  const tj = traceJob({ programArgs: ['100', 'nginx worker'] });
  t.deepEqual(runnerArgs(tj, nodeTarget).slice(-3), ['--', '100', 'nginx worker']);
  t.deepEqual(runnerArgs(tj, podTarget).slice(-5), [
    '--pod-uid=c2b1e8a4-0000-4000-8000-000000000001',
    '--container-id=0123456789abcdef',
    '--',
    '100',
    'nginx worker',
  ]);
  t.false(runnerArgs(traceJob({ programArgs: [] }), nodeTarget).includes('--'));
});

test('programFrom: the resolved program is copied into program.bt', (t) => {
  const tj = traceJob({ program: undefined, programFrom: { configMapKeyRef: { name: 'progs', key: 'x.bt' } } });
  const { configMap } = buildTraceObjects(tj, nodeTarget, defaultOperatorSettings(), 'BEGIN { exit(); }');
  t.deepEqual(configMap.data, { 'program.bt': 'BEGIN { exit(); }' });
  t.throws(() => buildTraceObjects(tj, nodeTarget, defaultOperatorSettings()), {
    message: /pass the resolved program text/,
  });
});

test('preconditions: status.id and metadata.uid are required and checked', (t) => {
  const tj = traceJob();
  t.throws(() => buildTraceObjects({ ...tj, status: {} }, nodeTarget, defaultOperatorSettings()), {
    message: /no status\.id; assign a UUID/,
  });
  t.throws(() => buildTraceObjects({ ...tj, status: { id: '../x' } }, nodeTarget, defaultOperatorSettings()), {
    message: /invalid status\.id/,
  });
  t.throws(
    () => buildTraceObjects({ ...tj, metadata: { name: 'biolatency' } }, nodeTarget, defaultOperatorSettings()),
    { message: /no metadata\.uid/ },
  );
  t.throws(() => buildTraceObjects(tj, { ...nodeTarget, hostnameLabel: '' }, defaultOperatorSettings()), {
    message: /empty hostname label/,
  });
});

test('deterministic: the same input gives equal output, and the input is not modified', (t) => {
  const tj = traceJob({ programArgs: ['1'] });
  const before = structuredClone(tj);
  const a = buildTraceObjects(tj, podTarget, defaultOperatorSettings());
  const b = buildTraceObjects(tj, podTarget, defaultOperatorSettings());
  t.deepEqual(a, b);
  t.deepEqual(tj, before);
  // No shared mutable structure between the two objects' metadata.
  t.not(a.configMap.metadata?.labels, a.job.metadata?.labels);
});

test('stop request: data key stop with the request time and the stop-requested label, as a merge patch', (t) => {
  const at = new Date('2024-05-06T07:08:09.010Z');
  t.deepEqual(stopRequestData(at), { stop: '2024-05-06T07:08:09.010Z' });
  t.deepEqual(stopRequestPatch(at), {
    metadata: { labels: { 'observe.alexeldeib.xyz/stop-requested': 'true' } },
    data: { stop: '2024-05-06T07:08:09.010Z' },
  });
  const { configMap } = buildTraceObjects(traceJob(), nodeTarget, defaultOperatorSettings());
  t.false(isStopRequested(configMap));
  t.true(isStopRequested({ ...configMap, data: { ...configMap.data, ...stopRequestData(at) } }));
  t.false(isStopRequested(undefined));
});
