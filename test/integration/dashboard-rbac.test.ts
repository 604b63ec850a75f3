// The dashboard acts with the user's own credentials: a user bound only to
// the TraceJob viewer role (config/rbac/tracejob_viewer_role.yaml) sees the
// page and the trace, but pressing Stop shows the API server's refusal.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { parse, stringify } from 'yaml';
import { launchBrowser, screenshot, type Browser } from '../support/browser.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { startDashboard, type RunningDashboard } from '../support/dashboard.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import { serviceAccountKubeconfig } from '../support/service-account.ts';
import { apply, getTraceJob, waitForPhase } from '../support/tracejobs.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let ns = '';
let cleanup: () => Promise<void> = async () => {};
let manager: RunningManager | undefined;
let dashboard: RunningDashboard | undefined;
let browser: Browser | undefined;
let viewerRole = '';

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  const namespace = await createTestNamespace('dash-rbac');
  ns = namespace.name;
  cleanup = namespace.cleanup;
  manager = await startManager({ namespaces: [ns] });
  // The shipped viewer ClusterRole under a name of this test's, bound to a ServiceAccount in its namespace only.
  const role = parse(await readFile(path.join(repoRoot, 'config/rbac/tracejob_viewer_role.yaml'), 'utf8')) as {
    metadata: { name: string; labels?: Record<string, string> };
  };
  viewerRole = `${role.metadata.name}-${randomBytes(3).toString('hex')}`;
  role.metadata.name = viewerRole;
  delete role.metadata.labels;
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'viewer', namespace: ns },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: viewerRole },
    subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
  };
  const account = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'viewer', namespace: ns } };
  const created = await kubectl(['create', '-f', '-'], {
    input: [role, binding, account].map((o) => stringify(o)).join('---\n'),
  });
  if (created.exitCode !== 0) throw new Error(`could not set up the viewer: ${created.stderr}`);
  const kubeconfig = await serviceAccountKubeconfig(ns, 'viewer');
  dashboard = await startDashboard({ kubeconfig, namespace: ns });
  browser = await launchBrowser();
});

test.after.always(async () => {
  await browser?.close();
  await dashboard?.stop();
  await manager?.stop();
  if (viewerRole !== '') await kubectl(['delete', 'clusterrole', viewerRole, '--ignore-not-found', '--wait=false']);
  await cleanup();
});

test.serial("a viewer sees the trace, and Stop shows the API server's refusal", async (t) => {
  await apply(ns, {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name: 'guarded', namespace: ns },
    spec: {
      hostname: 'kwok-node-1',
      deadline: 3600,
      program: 'tracepoint:syscalls:sys_enter_openat { @c = count(); }',
    },
  });
  await waitForPhase(ns, 'guarded', 'Running');
  const page = await (browser as Browser).context.newPage();
  await page.goto(dashboard?.url ?? '');
  await page.locator('#tracejobs tr[data-name="guarded"][data-phase="Running"]').waitFor({ timeout: 30_000 });
  t.pass('the viewer lists TraceJobs of the namespace it may read');

  await page.goto(`${dashboard?.url}#/tracejob/${ns}/guarded`);
  await page.locator('#phase[data-phase="Running"]').waitFor();
  await page.locator('#stop').click();
  const refusal = page.locator('#stop-result .problem');
  await refusal.waitFor();
  const text = (await refusal.textContent()) ?? '';
  t.regex(text, /HTTP 403/, 'the refusal carries the API server status');
  t.regex(
    text,
    new RegExp(`"guarded" is forbidden: User "system:serviceaccount:${ns}:viewer" cannot patch resource "tracejobs"`),
    "the refusal is the API server's own message",
  );
  t.false(await page.locator('#stop').isDisabled(), 'Stop stays available (another user may press it)');
  await screenshot(page, 'dashboard-viewer-refused');
  t.not((await getTraceJob(ns, 'guarded'))?.spec.stop, true, 'spec.stop was not set');

  // All namespaces: the viewer may not list at the cluster scope, and the page says so in the server's words.
  await page.goto(`${dashboard?.url}#/`);
  await page.locator('#filter-namespace').fill('');
  await page.locator('#filter-namespace').dispatchEvent('change');
  await eventually('the page shows the cluster-scope refusal', async () => {
    const problems = (await page.locator('#problems').textContent()) ?? '';
    return /cannot list resource "tracejobs".*at the cluster scope/.test(problems) ? problems : undefined;
  });
  t.pass();
  await page.close();
});
