// Why the manager's ClusterRole has "update tracejobs/finalizers" though the
// manager never sets a finalizer: the ConfigMaps and Job it creates carry an
// ownerReference with blockOwnerDeletion: true, and API servers running the
// OwnerReferencesPermissionEnforcement admission plugin (OpenShift turns it
// on) refuse that to a client that may not update the owner's finalizers.
//
// The shared local API server does not run that plugin, and the cluster is
// never restarted; so this test starts a second kube-apiserver on the same
// etcd with the plugin on (as a highly available control plane runs several),
// and creates an owned ConfigMap through it as ServiceAccounts bound to the
// shipped ClusterRole, with and without that one rule.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { kubeApiserver, type Ports } from '../cluster/components.ts';
import { clusterPaths } from '../cluster/paths.ts';
import { ensurePki } from '../cluster/pki.ts';
import { freePort } from '../cluster/processes.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd } from '../support/manager.ts';
import { installRbac, serviceAccountKubeconfig, type InstalledRbac } from '../support/service-account.ts';
import { apply, getTraceJob } from '../support/tracejobs.ts';

const paths = clusterPaths();
let apiserver: ResultPromise | undefined;
let exited = false;
let logDir = '';
let server = '';
const cleanups: (() => Promise<void>)[] = [];

function readyz(url: string, ca: Buffer, cert: Buffer, key: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet(`${url}/readyz`, { ca, cert, key, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

test.before(async () => {
  if (!clusterAvailable())
    throw new Error(
      'the local control plane is not running: start it with `npm run cluster:up`, then run these tests again',
    );
  await installCrd();
  const pki = await ensurePki(path.join(paths.state, 'pki'));
  const ports = JSON.parse(await readFile(path.join(paths.state, 'ports.json'), 'utf8')) as Ports;
  const port = await freePort();
  const spec = kubeApiserver({
    testbin: paths.testbin,
    state: paths.state,
    pki,
    ports: { ...ports, apiserver: port },
    kubeconfigFor: () => '',
    kwokStages: '',
  });
  logDir = await mkdtemp(path.join(os.tmpdir(), 'trace-operator-apiserver-'));
  const log = createWriteStream(path.join(logDir, 'kube-apiserver.log'));
  apiserver = execa(spec.binary, [...spec.args, '--enable-admission-plugins=OwnerReferencesPermissionEnforcement'], {
    reject: false,
    stdin: 'ignore',
  });
  void apiserver.then(() => {
    exited = true;
  });
  apiserver.stdout?.pipe(log);
  apiserver.stderr?.pipe(log);
  server = `https://127.0.0.1:${port}`;
  const [ca, cert, key] = await Promise.all([
    readFile(pki.caCert),
    readFile(pki.clientCert('admin')),
    readFile(pki.clientKey('admin')),
  ]);
  await eventually(
    `a second kube-apiserver answers on ${server} (log: ${logDir})`,
    async () => {
      if (exited) throw new Error(`the second kube-apiserver exited; see ${logDir}`);
      return (await readyz(server, ca, cert, key)) ? true : undefined;
    },
    90_000,
    500,
  );
});

test.after.always(async () => {
  apiserver?.kill('SIGTERM');
  await apiserver;
  for (const cleanup of cleanups) await cleanup();
  if (logDir !== '') await rm(logDir, { recursive: true, force: true });
});

/** The ServiceAccount kubeconfig, pointed at the second API server. */
async function viaSecondServer(kubeconfig: string): Promise<string> {
  const config = parse(await readFile(kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
  for (const c of config.clusters) c.cluster.server = server;
  const file = `${kubeconfig}.second`;
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}

/** Creates, as the ServiceAccount and through the second API server, a ConfigMap owned by the TraceJob the way the manager does. */
async function createOwnedConfigMap(
  setup: { ns: string; uid: string },
  kubeconfig: string,
  name = 'owned',
): Promise<{ exitCode: number; stderr: string }> {
  const uid = setup.uid;
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: setup.ns,
      ownerReferences: [
        {
          apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
          kind: 'TraceJob',
          name: 'owner',
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    data: { 'program.bt': 'BEGIN { exit(); }' },
  };
  const result = await execa(path.join(paths.testbin, 'kubectl'), ['--kubeconfig', kubeconfig, 'create', '-f', '-'], {
    input: JSON.stringify(configMap),
    reject: false,
  });
  return { exitCode: result.exitCode ?? -1, stderr: String(result.stderr) };
}

interface Setup {
  ns: string;
  /** The ServiceAccount's kubeconfig for the shared API server, and for the second one. */
  kubeconfig: string;
  second: string;
  uid: string;
  rbac: InstalledRbac;
}

async function setUp(prefix: string, withFinalizers: boolean): Promise<Setup> {
  const namespace = await createTestNamespace(prefix);
  cleanups.push(namespace.cleanup);
  const rbac = await installRbac(namespace.name, {
    edit: (objects) =>
      withFinalizers
        ? objects
        : objects.map((o) =>
            o.kind === 'ClusterRole' && o.metadata.name.startsWith('manager-role-')
              ? { ...o, rules: (o.rules ?? []).filter((r) => !(r.resources ?? []).includes('tracejobs/finalizers')) }
              : o,
          ),
  });
  cleanups.push(rbac.cleanup);
  const kubeconfig = await serviceAccountKubeconfig(namespace.name, rbac.serviceAccount);
  const second = await viaSecondServer(kubeconfig);
  await apply(namespace.name, {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name: 'owner', namespace: namespace.name },
    spec: { hostname: 'no-such-node', program: 'BEGIN { exit(); }' },
  });
  const uid = (await getTraceJob(namespace.name, 'owner'))?.metadata.uid ?? '';
  return { ns: namespace.name, kubeconfig, second, uid, rbac };
}

test("with the shipped ClusterRole the manager may create objects that block their TraceJob's deletion", async (t) => {
  const setup = await setUp('deploy-ownerref', true);
  const created = await createOwnedConfigMap(setup, setup.second);
  t.is(created.exitCode, 0, created.stderr);
  const stored = await kubectl(
    ['get', 'configmap', 'owned', '-o', 'jsonpath={.metadata.ownerReferences[0].blockOwnerDeletion}'],
    { namespace: setup.ns },
  );
  t.is(stored.stdout, 'true');
});

test('without "update tracejobs/finalizers" that API server refuses them: the rule is needed', async (t) => {
  const setup = await setUp('deploy-ownerref-no', false);
  const created = await createOwnedConfigMap(setup, setup.second);
  t.not(created.exitCode, 0);
  t.regex(created.stderr, /cannot set blockOwnerDeletion/);
  // The shared API server, without the plugin, lets the same request through: the plugin is the difference.
  const withoutPlugin = await createOwnedConfigMap(setup, setup.kubeconfig, 'owned-without-plugin');
  t.is(withoutPlugin.exitCode, 0, withoutPlugin.stderr);
});
