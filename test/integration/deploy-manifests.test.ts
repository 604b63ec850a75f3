// The deployment manifests against the real API server: `kubectl kustomize .`
// renders the whole operator, and the API server accepts every object in a
// server-side dry run (schema validation, admission, RBAC objects). The
// cluster-scoped objects are dry-run as rendered. The namespaced ones are
// dry-run in a test namespace labelled like trace-operator-system (Pod
// Security "restricted"), because a dry-run Namespace is never created and
// this shared cluster must not get a real trace-operator-system from a
// test; the manager's pod template is also dry-run as a Pod there, so Pod
// Security admission enforces the restricted profile on it. `make
// build-installer` with other images renders and is accepted the same way,
// and the manager reads its images from the result.
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseAllDocuments, stringify } from 'yaml';
import type { V1Deployment, V1EnvVar } from '@kubernetes/client-node';
import { managerOptions } from '../../src/controller/main.ts';
import { nopLogger } from '../../src/runtime/logger.ts';
import { isImageAllowed } from '../../src/tracejob/index.ts';
import { clusterPaths } from '../cluster/paths.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { installCrd } from '../support/manager.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SYSTEM_NAMESPACE = 'trace-operator-system';
const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

let ns = '';
let cleanup: (() => Promise<void>) | undefined;

test.before(async () => {
  if (!clusterAvailable())
    throw new Error(
      'the local control plane is not running: start it with `npm run cluster:up`, then run these tests again',
    );
  // The CRD must be served for the API server to dry-run an update of it.
  await installCrd();
  const namespace = await createTestNamespace('deploy-dry');
  ns = namespace.name;
  cleanup = namespace.cleanup;
  const labelled = await kubectl([
    'label',
    'namespace',
    ns,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/warn=restricted',
  ]);
  if (labelled.exitCode !== 0) throw new Error(`could not label ${ns}: ${labelled.stderr}`);
});

test.after.always(async () => {
  await cleanup?.();
});

function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

async function render(dir: string): Promise<Manifest[]> {
  const rendered = await kubectl(['kustomize', path.join(root, dir)]);
  if (rendered.exitCode !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${rendered.stderr}`);
  return parseManifests(rendered.stdout);
}

/** Server-side dry run of the objects (namespaced ones moved into the test namespace); returns kubectl's output. */
async function dryRun(manifests: Manifest[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const moved = manifests.map((m) =>
    CLUSTER_SCOPED.has(m.kind) ? m : { ...m, metadata: { ...m.metadata, namespace: ns } },
  );
  return kubectl(
    [
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=trace-operator-deploy-test',
      '--dry-run=server',
      '-f',
      '-',
    ],
    { input: moved.map((m) => stringify(m)).join('---\n') },
  );
}

const key = (m: Manifest): string => `${m.kind}/${m.metadata.name}`;

test('`kubectl kustomize .` renders the CRD, RBAC and manager, prefixed and in trace-operator-system', async (t) => {
  const manifests = await render('.');
  t.deepEqual(manifests.map(key).sort(), [
    'ClusterRole/trace-operator-manager-role',
    'ClusterRole/trace-operator-tracejob-editor-role',
    'ClusterRole/trace-operator-tracejob-viewer-role',
    'ClusterRole/trace-operator-tracetrigger-alerts',
    'ClusterRole/trace-operator-tracetrigger-editor-role',
    'ClusterRole/trace-operator-tracetrigger-viewer-role',
    'ClusterRoleBinding/trace-operator-manager-rolebinding',
    'CustomResourceDefinition/tracejobs.observe.alexeldeib.xyz',
    'CustomResourceDefinition/tracetriggers.observe.alexeldeib.xyz',
    'Deployment/trace-operator-controller-manager',
    `Namespace/${SYSTEM_NAMESPACE}`,
    'Role/trace-operator-leader-election-role',
    'RoleBinding/trace-operator-leader-election-rolebinding',
    'Service/trace-operator-controller-manager-metrics-service',
    'ServiceAccount/trace-operator-controller-manager',
  ]);
  for (const m of manifests.filter((x) => !CLUSTER_SCOPED.has(x.kind)))
    t.is(m.metadata.namespace, SYSTEM_NAMESPACE, key(m));
  const deployment = manifests.find((m) => m.kind === 'Deployment') as unknown as V1Deployment;
  t.is(
    deployment.spec?.template.spec?.serviceAccountName,
    'trace-operator-controller-manager',
    'the ServiceAccount reference follows the prefix',
  );
  t.is(deployment.spec?.template.spec?.containers[0]?.image, 'ghcr.io/alexeldeib/trace-operator-manager:v0.1.0');
  const binding = manifests.find((m) => m.kind === 'ClusterRoleBinding') as unknown as {
    roleRef: { name: string };
    subjects: { name: string; namespace: string }[];
  };
  t.is(binding.roleRef.name, 'trace-operator-manager-role');
  t.deepEqual(
    binding.subjects.map((s) => `${s.namespace}/${s.name}`),
    [`${SYSTEM_NAMESPACE}/trace-operator-controller-manager`],
  );
  t.deepEqual(await render('config/default'), manifests, 'the top-level kustomization is config/default');
});

test('the API server accepts every rendered object in a server-side dry run, with no Pod Security warning', async (t) => {
  const manifests = await render('.');
  const result = await dryRun(manifests);
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout.split('\n').filter((l) => l.includes('(server dry run)')).length, manifests.length, result.stdout);
  t.notRegex(result.stderr, /PodSecurity|violate/i, 'the Deployment meets the restricted profile');
});

test("Pod Security admission admits the manager's pod in a namespace enforcing the restricted profile", async (t) => {
  const deployment = (await render('.')).find((m) => m.kind === 'Deployment') as unknown as V1Deployment;
  const template = deployment.spec?.template;
  // The ServiceAccount of the rendered RBAC does not exist in the test namespace; admission of the pod needs one that does.
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'manager-pod-check', namespace: ns, labels: template?.metadata?.labels },
    spec: { ...template?.spec, serviceAccountName: 'default' },
  };
  const admitted = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) });
  t.is(admitted.exitCode, 0, admitted.stderr);
  // The same check refuses a pod that breaks the profile, so it is a real check.
  const privileged = {
    ...pod,
    spec: {
      ...pod.spec,
      containers: pod.spec.containers?.map((c) => ({
        ...c,
        securityContext: { ...c.securityContext, allowPrivilegeEscalation: true },
      })),
    },
  };
  const refused = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(privileged) });
  t.not(refused.exitCode, 0);
  t.regex(refused.stderr, /violates PodSecurity "restricted/);
});

test('`make build-installer IMG=... RUNNER_IMG=...` renders the images into the manager, and the API server accepts it', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trace-operator-installer-'));
  try {
    const installer = path.join(dir, 'install.yaml');
    const img = 'registry.example:5000/team/trace-operator-manager:dev';
    const runner =
      'registry.example:5000/team/trace-operator-runner@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
    const made = await execa(
      'make',
      [
        '-s',
        'build-installer',
        `IMG=${img}`,
        `RUNNER_IMG=${runner}`,
        `INSTALLER=${installer}`,
        `KUBECTL=${path.join(clusterPaths().testbin, 'kubectl')}`,
      ],
      { cwd: root, reject: false },
    );
    t.is(made.exitCode, 0, String(made.stderr));
    const manifests = parseManifests(await readFile(installer, 'utf8'));
    t.deepEqual(manifests.map(key).sort(), (await render('.')).map(key).sort(), 'the same objects as config/default');
    const container = (manifests.find((m) => m.kind === 'Deployment') as unknown as V1Deployment).spec?.template.spec
      ?.containers[0];
    t.is(container?.image, img);
    const env = Object.fromEntries(
      (container?.env ?? []).filter((e: V1EnvVar) => e.value !== undefined).map((e: V1EnvVar) => [e.name, e.value]),
    );
    const options = managerOptions(container?.args?.slice(1) ?? [], env, nopLogger);
    if (options === 'help') return t.fail('the args ask for help');
    t.is(options.settings.defaultImage, runner, 'trace pods run RUNNER_IMG');
    t.true(isImageAllowed(runner, options.settings.allowedImages), 'and the allow-list lets them');
    t.false(
      isImageAllowed('ghcr.io/alexeldeib/trace-operator:v0.0.1', options.settings.allowedImages),
      'nothing else from the default repository',
    );
    t.true(
      (container?.env ?? []).some(
        (e) => e.name === 'POD_NAMESPACE' && e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace',
      ),
      'the patch keeps the base env',
    );
    const result = await dryRun(manifests);
    t.is(result.exitCode, 0, result.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
