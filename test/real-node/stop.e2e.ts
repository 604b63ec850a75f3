// spec.stop on the real node, whose kubelet keeps the stock syncFrequency of
// a minute (test/cluster/kubelet.ts). Two managers, each running as a
// ServiceAccount bound to config/rbac (installed for the test):
//   - with the shipped ClusterRole, the stop goes through pods/exec
//     (`trace-operator stop --request` in the trace container) and the
//     condition says StopDelivered;
//   - with the pods/exec rule removed, the exec is refused, the condition says
//     StopWaitsForKubelet and why, and the program ConfigMap's stop key still
//     stops the trace once the kubelet syncs the pod.
// Either way bpftrace prints its maps and the result keeps them. How long each
// took is logged; `npm run bench` measures it (stop latency).
import test from 'ava';
import { kubectl } from '../support/cluster.ts';
import { metricValue } from '../support/manager.ts';
import { installRbac, serviceAccountKubeconfig, type InstalledRbac } from '../support/service-account.ts';
import { apply, condition } from '../support/tracejobs.ts';
import {
  attachedTrace,
  realNodeFile,
  realNodeTraceJob,
  startRealNodeManager,
  traceEnded,
  type RealNodeFile,
} from './support.ts';

const installed: InstalledRbac[] = [];
test.after.always(async () => {
  for (const rbac of installed) await rbac.cleanup();
});

/** A real-node test file whose manager runs as config/rbac's ServiceAccount, its ClusterRole optionally without pods/exec. */
function asServiceAccount(prefix: string, withoutExec: boolean): RealNodeFile {
  return realNodeFile(prefix, async (namespace, node) => {
    const rbac = await installRbac(namespace, {
      edit: (objects) =>
        objects.map((o) =>
          withoutExec && o.kind === 'ClusterRole' && o.metadata.name.startsWith('manager-role-')
            ? { ...o, rules: (o.rules ?? []).filter((r) => !(r.resources ?? []).includes('pods/exec')) }
            : o,
        ),
    });
    installed.push(rbac);
    return startRealNodeManager(namespace, node, await serviceAccountKubeconfig(namespace, rbac.serviceAccount));
  });
}

const shipped = asServiceAccount('stop-fast', false);
const withoutExec = asServiceAccount('stop-fallback', true);

const TICKS = 'interval:ms:100 { @ticks = count(); }';

/** Starts a ticking trace, waits until its probes are attached, sets spec.stop; returns when that was. */
async function startThenStop(file: RealNodeFile, name: string): Promise<number> {
  await apply(file.ns, realNodeTraceJob(file, name, { deadline: 600, program: TICKS }));
  await attachedTrace(file.ns, name);
  const requested = Date.now();
  const patched = await kubectl(['patch', 'tracejob', name, '--type=merge', '-p', '{"spec":{"stop":true}}'], {
    namespace: file.ns,
  });
  if (patched.exitCode !== 0) throw new Error(`kubectl patch failed: ${patched.stderr}`);
  return requested;
}

test('with the shipped ClusterRole, spec.stop reaches bpftrace through pods/exec, and the maps are kept', async (t) => {
  const requested = await startThenStop(shipped, 'fast');
  const done = await traceEnded(shipped.ns, 'fast', 120_000);
  t.log(`ended ${((Date.now() - requested) / 1000).toFixed(1)}s after spec.stop was set`);
  t.is(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.conditions));
  t.like(condition(done, 'Succeeded'), { status: 'True', reason: 'Stopped' });
  t.like(condition(done, 'StopRequested'), { status: 'True', reason: 'StopDelivered' });
  t.regex(condition(done, 'StopRequested')?.message ?? '', /through pods\/exec in pod .*asked the runner/);
  const ticks = done.status?.result?.maps.find((m) => m.name === '@ticks');
  t.true(Number(ticks?.value ?? 0) > 0, JSON.stringify(ticks));
  const metrics = await shipped.manager.metrics();
  t.is(metricValue(metrics, 'trace_operator_stop_execs_total', { outcome: 'delivered' }), 1);
  t.is(metricValue(metrics, 'rest_client_requests_total', { code: '403' }), 0, 'nothing was refused');
});

test('without pods/exec, the exec is refused, the condition says so, and the ConfigMap still stops the trace with its maps', async (t) => {
  const requested = await startThenStop(withoutExec, 'fallback');
  const done = await traceEnded(withoutExec.ns, 'fallback', 300_000);
  t.log(`ended ${((Date.now() - requested) / 1000).toFixed(1)}s after spec.stop was set (the kubelet's pod sync)`);
  t.is(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.conditions));
  t.like(condition(done, 'Succeeded'), { status: 'True', reason: 'Stopped' });
  t.like(condition(done, 'StopRequested'), { status: 'True', reason: 'StopWaitsForKubelet' });
  t.regex(condition(done, 'StopRequested')?.message ?? '', /get and create on pods\/exec are not both granted/);
  const ticks = done.status?.result?.maps.find((m) => m.name === '@ticks');
  t.true(Number(ticks?.value ?? 0) > 0, JSON.stringify(ticks));
  t.is(metricValue(await withoutExec.manager.metrics(), 'trace_operator_stop_execs_total', { outcome: 'refused' }), 1);
});
