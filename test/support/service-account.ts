// Running things as the operator's ServiceAccount instead of as admin: the
// RBAC of config/rbac rendered by kustomize and installed under names of a
// test's own (cluster-scoped names suffixed, namespaced objects moved into
// the test's namespace), and a kubeconfig that authenticates with a token
// of that ServiceAccount (`kubectl create token`) against the local API server.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchDir } from './scratch-dir.ts';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { kubeconfigPath, kubectl } from './cluster.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RbacObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: { apiGroups?: string[]; resources?: string[]; verbs?: string[] }[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string; apiGroup?: string }[];
}

/** `kubectl kustomize <dir>` (the testbin kubectl's built-in kustomize), parsed. */
export async function kustomize(dir: string): Promise<RbacObject[]> {
  const rendered = await kubectl(['kustomize', path.join(repoRoot, dir)]);
  if (rendered.exitCode !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${rendered.stderr}`);
  return parseAllDocuments(rendered.stdout)
    .map((d) => d.toJS() as RbacObject | null)
    .filter((o): o is RbacObject => o !== null);
}

export interface InstalledRbac {
  /** The objects as installed. */
  objects: RbacObject[];
  /** Installed name of a ClusterRole or ClusterRoleBinding from config/rbac (e.g. 'manager-role'). */
  clusterName(name: string): string;
  /** The ServiceAccount's user name, system:serviceaccount:<namespace>:<name>. */
  user: string;
  serviceAccount: string;
  /** Deletes the cluster-scoped objects (the namespaced ones go with the namespace). */
  cleanup(): Promise<void>;
}

/**
 * Installs config/rbac for a test: the ServiceAccount, Role and RoleBinding in
 * `namespace`; the ClusterRoles and ClusterRoleBinding with `-<suffix>` added
 * to their names so parallel tests never share or clash with them.
 * `edit` may change the rendered objects first (e.g. drop a rule).
 */
export async function installRbac(
  namespace: string,
  options: { edit?: (objects: RbacObject[]) => RbacObject[] } = {},
): Promise<InstalledRbac> {
  const suffix = randomBytes(3).toString('hex');
  const clusterName = (name: string): string => `${name}-${suffix}`;
  let objects = (await kustomize('config/rbac')).map((o) => structuredClone(o));
  for (const o of objects) {
    if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') o.metadata.name = clusterName(o.metadata.name);
    else o.metadata.namespace = namespace;
    if (o.roleRef?.kind === 'ClusterRole') o.roleRef.name = clusterName(o.roleRef.name);
    for (const s of o.subjects ?? []) if (s.kind === 'ServiceAccount') s.namespace = namespace;
  }
  if (options.edit !== undefined) objects = options.edit(objects);
  const created = await kubectl(['create', '-f', '-'], { input: objects.map((o) => stringify(o)).join('---\n') });
  const cleanup = async (): Promise<void> => {
    const names = objects
      .filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')
      .map((o) => `${o.kind.toLowerCase()}/${o.metadata.name}`);
    if (names.length > 0) await kubectl(['delete', '--ignore-not-found', '--wait=false', ...names]);
  };
  if (created.exitCode !== 0) {
    await cleanup();
    throw new Error(`could not install config/rbac for the test: ${created.stderr}`);
  }
  const account = objects.find((o) => o.kind === 'ServiceAccount');
  if (account === undefined) throw new Error('config/rbac renders no ServiceAccount');
  return {
    objects,
    clusterName,
    serviceAccount: account.metadata.name,
    user: `system:serviceaccount:${namespace}:${account.metadata.name}`,
    cleanup,
  };
}

interface KubeconfigFile {
  clusters: {
    name: string;
    cluster: { server: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string };
  }[];
}

/**
 * A kubeconfig that talks to the local API server as ServiceAccount
 * `namespace/name`, with a token from the TokenRequest API (no Secret).
 * Server and CA come from the admin kubeconfig cluster:up wrote.
 */
export async function serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
  const token = await kubectl(['create', 'token', name, '--duration=2h'], { namespace });
  if (token.exitCode !== 0)
    throw new Error(`could not get a token for ServiceAccount ${namespace}/${name}: ${token.stderr}`);
  const admin = parse(await readFile(kubeconfigPath, 'utf8')) as KubeconfigFile;
  const cluster = admin.clusters[0]?.cluster;
  if (cluster === undefined) throw new Error(`${kubeconfigPath} names no cluster`);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster }],
    users: [{ name: `${namespace}-${name}`, user: { token: token.stdout.trim() } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: `${namespace}-${name}`, namespace } }],
    'current-context': 'local',
  };
  const dir = await scratchDir('service-account');
  const file = path.join(dir, 'kubeconfig');
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}
