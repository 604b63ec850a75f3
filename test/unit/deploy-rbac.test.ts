// The RBAC in config/rbac, read as files: least privilege that a reviewer
// can check at a glance (no wildcards, no Secrets, no escalation verbs), the
// manager's rules exactly as documented in role.yaml, Jobs in the batch
// group (the original operator's fault), and the editor/viewer roles
// aggregated to the built-in ones. test/integration/deploy-rbac.test.ts
// proves the same rules suffice for the real manager.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

const rbacDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'rbac');

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
interface RbacObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: Rule[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  aggregationRule?: unknown;
}

const files = readdirSync(rbacDir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .sort();
const objects: RbacObject[] = files.flatMap((f) =>
  parseAllDocuments(readFileSync(path.join(rbacDir, f), 'utf8'))
    .map((d) => d.toJS() as RbacObject | null)
    .filter((o): o is RbacObject => o !== null),
);
const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
const named = (kind: string, name: string): RbacObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`config/rbac has no ${kind} ${name}`);
  return found;
};
const allRules = (): { role: string; rule: Rule }[] =>
  roles.flatMap((r) => (r.rules ?? []).map((rule) => ({ role: `${r.kind}/${r.metadata.name}`, rule })));
/** Every (group, resource, verb) a role grants, as "group resource verb" strings. */
const grants = (role: RbacObject): string[] =>
  (role.rules ?? [])
    .flatMap((rule) =>
      (rule.apiGroups ?? []).flatMap((g) =>
        (rule.resources ?? []).flatMap((r) => (rule.verbs ?? []).map((v) => `${g === '' ? 'core' : g} ${r} ${v}`)),
      ),
    )
    .sort();

test('every file in config/rbac is a resource of its kustomization, and the roles are there', (t) => {
  const kustomization = parse(readFileSync(path.join(rbacDir, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
  };
  t.deepEqual([...kustomization.resources].sort(), files);
  t.true(roles.length >= 4, 'manager, leader election, editor and viewer roles');
});

test('no rule uses a wildcard in apiGroups, resources, verbs, resourceNames or nonResourceURLs', (t) => {
  for (const { role, rule } of allRules()) {
    for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames', 'nonResourceURLs'] as const) {
      for (const value of rule[field] ?? []) t.false(value.includes('*'), `${role}: ${field} has '${value}'`);
    }
    t.is(rule.nonResourceURLs, undefined, `${role}: no non-resource URLs`);
  }
  for (const role of roles)
    t.is(role.aggregationRule, undefined, `${role.metadata.name} aggregates nothing into itself`);
});

test('no rule grants Secrets, tokens, impersonation or RBAC escalation', (t) => {
  for (const { role, rule } of allRules()) {
    for (const resource of rule.resources ?? []) {
      t.false(resource === 'secrets' || resource.startsWith('secrets/'), `${role} grants ${resource}`);
      t.not(resource, 'serviceaccounts/token', `${role} may mint tokens`);
    }
    for (const verb of rule.verbs ?? [])
      t.false(['impersonate', 'escalate', 'bind', 'approve', 'sign'].includes(verb), `${role} has verb ${verb}`);
    t.false((rule.apiGroups ?? []).includes('rbac.authorization.k8s.io'), `${role} touches RBAC objects`);
  }
});

test('Jobs are granted in the batch group only (the original operator named the core group)', (t) => {
  for (const { role, rule } of allRules()) {
    if ((rule.resources ?? []).includes('jobs')) t.deepEqual(rule.apiGroups, ['batch'], role);
  }
  t.true(grants(named('ClusterRole', 'manager-role')).includes('batch jobs create'));
});

test("the manager's ClusterRole is exactly the requests the manager makes", (t) => {
  // Mirrors the comments in config/rbac/role.yaml; a change here must be a deliberate one, there and here.
  const expected = [
    'observe.alexeldeib.xyz tracejobs list',
    'observe.alexeldeib.xyz tracejobs watch',
    'observe.alexeldeib.xyz tracejobs delete',
    'observe.alexeldeib.xyz tracejobs create',
    'observe.alexeldeib.xyz tracejobs patch',
    'observe.alexeldeib.xyz tracejobs/status update',
    'observe.alexeldeib.xyz tracetriggers get',
    'observe.alexeldeib.xyz tracetriggers list',
    'observe.alexeldeib.xyz tracetriggers watch',
    'observe.alexeldeib.xyz tracetriggers/status update',
    'observe.alexeldeib.xyz tracetriggers/finalizers update',
    'authentication.k8s.io tokenreviews create',
    'authorization.k8s.io subjectaccessreviews create',
    'observe.alexeldeib.xyz tracejobs/finalizers update',
    'core configmaps get',
    'core configmaps list',
    'core configmaps watch',
    'core configmaps create',
    'core configmaps patch',
    'batch jobs get',
    'batch jobs list',
    'batch jobs watch',
    'batch jobs create',
    'batch jobs patch',
    'core pods get',
    'core pods list',
    'core pods watch',
    'core pods/log get',
    'core pods/exec get',
    'core pods/exec create',
    'core nodes get',
    'core nodes list',
    'core events list',
    'core nodes watch',
    'core events create',
    'core events patch',
  ].sort();
  t.deepEqual(grants(named('ClusterRole', 'manager-role')), expected);
});

test('the manager never deletes or updates what it creates: the garbage collector does', (t) => {
  const manager = grants(named('ClusterRole', 'manager-role'));
  for (const resource of ['configmaps', 'jobs', 'pods']) {
    for (const verb of ['delete', 'deletecollection', 'update'])
      t.false(
        manager.some((g) => g.endsWith(` ${resource} ${verb}`)),
        `${resource} ${verb}`,
      );
  }
});

test('Leases are granted only by a namespaced Role bound to the manager, not cluster-wide', (t) => {
  t.false(grants(named('ClusterRole', 'manager-role')).some((g) => g.includes('leases')));
  const election = named('Role', 'leader-election-role');
  t.deepEqual(grants(election), [
    'coordination.k8s.io leases create',
    'coordination.k8s.io leases get',
    'coordination.k8s.io leases update',
  ]);
  const binding = named('RoleBinding', 'leader-election-rolebinding');
  t.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'leader-election-role' });
  t.is(binding.metadata.namespace, election.metadata.namespace);
});

test('both bindings name the ServiceAccount the manager runs as', (t) => {
  const account = named('ServiceAccount', 'controller-manager');
  const subject = { kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace };
  const clusterBinding = named('ClusterRoleBinding', 'manager-rolebinding');
  t.deepEqual(clusterBinding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'ClusterRole',
    name: 'manager-role',
  });
  t.deepEqual(clusterBinding.subjects, [subject]);
  t.deepEqual(named('RoleBinding', 'leader-election-rolebinding').subjects, [subject]);
});

test('the editor role aggregates to admin and edit; the viewer role to view, and only reads', (t) => {
  const editor = named('ClusterRole', 'tracejob-editor-role');
  const viewer = named('ClusterRole', 'tracejob-viewer-role');
  t.like(editor.metadata.labels, {
    'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
    'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
  });
  t.is(
    editor.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view'],
    undefined,
    'viewers must not create TraceJobs',
  );
  t.like(viewer.metadata.labels, { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' });
  t.true(grants(editor).includes('observe.alexeldeib.xyz tracejobs create'));
  t.true(grants(editor).includes('observe.alexeldeib.xyz tracejobs delete'));
  t.false(
    grants(editor).some((g) => g.startsWith('observe.alexeldeib.xyz tracejobs/status') && !g.endsWith(' get')),
    'users never write status',
  );
  for (const grant of grants(viewer)) t.true(['get', 'list', 'watch'].includes(grant.split(' ')[2] ?? ''), grant);
  for (const role of [editor, viewer])
    t.deepEqual(
      [...new Set((role.rules ?? []).flatMap((r) => r.apiGroups ?? []))],
      ['observe.alexeldeib.xyz'],
      `${role.metadata.name} is about TraceJobs only`,
    );
});

test('the editor role says that creating a TraceJob is root on the traced node', (t) => {
  const text = readFileSync(path.join(rbacDir, 'tracejob_editor_role.yaml'), 'utf8');
  t.regex(text, /root on the traced nodes/);
  t.regex(readFileSync(path.join(rbacDir, 'kustomization.yaml'), 'utf8'), /SECURITY/);
});
