// The manager's Deployment, its Service, config/default and the Makefile,
// read as files and checked against the code they configure: the flags
// parse with the manager's own parser, the probe and metrics ports are the
// ones those flags open, the pod meets the restricted Pod Security Standard
// by its fields, and the Makefile's defaults match the code's.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import type { V1Deployment, V1Namespace, V1Service } from '@kubernetes/client-node';
import { managerOptions } from '../../src/controller/main.ts';
import { nopLogger } from '../../src/runtime/logger.ts';
import { DEFAULT_RUNNER_IMAGE } from '../../src/tracejob/index.ts';
import { K8S_VERSION } from '../cluster/paths.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');
const docs = parseAllDocuments(read('config/manager/manager.yaml')).map((d) => d.toJS() as { kind: string });
const deployment = docs.find((d) => d.kind === 'Deployment') as V1Deployment;
const namespace = docs.find((d) => d.kind === 'Namespace') as V1Namespace;
const service = parse(read('config/manager/metrics_service.yaml')) as V1Service;
const pod = deployment.spec?.template.spec;
const container = pod?.containers.find((c) => c.name === 'manager');

const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));

test("the Deployment runs one manager with leader election, and its flags parse with the manager's parser", (t) => {
  t.is(deployment.spec?.replicas, 1);
  t.is(pod?.containers.length, 1);
  const args = container?.args ?? [];
  t.is(args[0], 'manager', 'the image entrypoint is the CLI; the first argument picks the command');
  const options = managerOptions(args.slice(1), { POD_NAMESPACE: 'trace-operator-system' }, nopLogger);
  if (options === 'help') return t.fail('the args ask for help');
  t.true(options.leaderElection.enabled);
  t.is(
    options.leaderElection.namespace,
    'trace-operator-system',
    'the Lease goes to POD_NAMESPACE, where the leader-election Role is',
  );
  const ports = Object.fromEntries((container?.ports ?? []).map((p) => [p.name, p.containerPort]));
  t.is(ports['metrics'], portOf(options.metricsAddress));
  t.is(ports['probes'], portOf(options.probeAddress));
  t.is(portOf(options.probeAddress), 8081);
  t.is(portOf(options.metricsAddress), 8080);
  t.false(options.metricsAddress.startsWith('127.0.0.1'), 'metrics must be reachable from the Service');
});

test('POD_NAMESPACE comes from the downward API', (t) => {
  const env = container?.env?.find((e) => e.name === 'POD_NAMESPACE');
  t.deepEqual(env?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
});

test('probes hit /healthz and /readyz on the probe port', (t) => {
  t.like(container?.livenessProbe?.httpGet, { path: '/healthz', port: 'probes' });
  t.like(container?.readinessProbe?.httpGet, { path: '/readyz', port: 'probes' });
});

test('the pod meets the restricted Pod Security Standard, field by field', (t) => {
  t.true(pod?.securityContext?.runAsNonRoot);
  t.is(pod?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  t.false(container?.securityContext?.allowPrivilegeEscalation);
  t.true(container?.securityContext?.readOnlyRootFilesystem);
  t.deepEqual(container?.securityContext?.capabilities?.drop, ['ALL']);
  t.is(container?.securityContext?.capabilities?.add, undefined);
  t.falsy(pod?.hostPID);
  t.falsy(pod?.hostNetwork);
  t.is(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
});

test('the container has requests and limits', (t) => {
  for (const kind of ['requests', 'limits'] as const) {
    t.truthy(container?.resources?.[kind]?.['cpu'], `${kind}.cpu`);
    t.truthy(container?.resources?.[kind]?.['memory'], `${kind}.memory`);
  }
});

test('the image is the placeholder config/default replaces, and the ServiceAccount is the one in config/rbac', (t) => {
  t.is(container?.image, 'controller:latest');
  const account = parse(read('config/rbac/service_account.yaml')) as { metadata: { name: string } };
  t.is(pod?.serviceAccountName, account.metadata.name);
});

test('the metrics Service selects the manager pod and targets its metrics port', (t) => {
  t.deepEqual(service.spec?.selector, deployment.spec?.selector.matchLabels);
  t.like(deployment.spec?.template.metadata?.labels, service.spec?.selector ?? {});
  t.is(service.spec?.ports?.[0]?.targetPort, 'metrics');
});

test('config/default puts everything in trace-operator-system with the trace-operator- prefix and sets the image', (t) => {
  const kustomization = parse(read('config/default/kustomization.yaml')) as {
    namespace: string;
    namePrefix: string;
    resources: string[];
    images: { name: string; newName: string; newTag: string }[];
  };
  t.is(kustomization.namespace, 'trace-operator-system');
  t.is(kustomization.namePrefix, 'trace-operator-');
  t.deepEqual(kustomization.resources, ['../crd', '../rbac', '../manager']);
  t.is(kustomization.images[0]?.name, 'controller');
  const top = parse(read('kustomization.yaml')) as { resources: string[] };
  t.deepEqual(top.resources, ['config/default']);
});

function makeDefault(name: string): string | undefined {
  const line = read('Makefile')
    .split('\n')
    .find((l) => l.startsWith(`${name} ?= `));
  return line?.slice(`${name} ?= `.length).trim();
}

test("the Makefile's defaults match the code: runner image, control-plane version, manager image", (t) => {
  t.is(makeDefault('RUNNER_IMG'), DEFAULT_RUNNER_IMAGE);
  t.is(makeDefault('K8S_VERSION'), K8S_VERSION);
  const kustomization = parse(read('config/default/kustomization.yaml')) as {
    images: { newName: string; newTag: string }[];
  };
  t.is(makeDefault('IMG'), `${kustomization.images[0]?.newName}:${kustomization.images[0]?.newTag}`);
});
