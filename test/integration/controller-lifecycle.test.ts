// The controller end to end against the real control plane: the real API
// server, garbage collector, Job controller and scheduler, with kwok playing
// the nodes. A trace pod's end is played by kwok (test/support/trace-pod.ts):
// its log is served through the API server and its termination message set,
// exactly the two things the controller reads from a real kubelet.
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { V1ConfigMap, V1Job, V1Pod } from '@kubernetes/client-node';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, metricValue, startManager, type RunningManager } from '../support/manager.ts';
import { finishTracePod, histogramResult } from '../support/trace-pod.ts';
import {
  apply,
  condition,
  eventsFor,
  eventsOnceRecorded,
  getConfigMap,
  getJob,
  getTraceJob,
  listJson,
  waitForPhase,
  waitForTraceJob,
  waitForTracePod,
} from '../support/tracejobs.ts';

const samplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'samples');
let ns = '';
let manager: RunningManager;

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  const namespace = await createTestNamespace('lifecycle');
  ns = namespace.name;
  manager = await startManager({ namespaces: [ns] });
});

function traceJob(name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name, namespace: ns },
    spec: {
      hostname: 'kwok-node-0',
      deadline: 3600,
      program: 'tracepoint:block:block_rq_issue { @c = count(); }',
      ...spec,
    },
  };
}

async function started(name: string): Promise<{ tj: TraceJob; id: string; pod: V1Pod }> {
  const tj = await waitForPhase(ns, name, 'Running');
  const id = tj.status?.id ?? '';
  return { tj, id, pod: await waitForTracePod(ns, id) };
}

const histogramText =
  'Attaching 3 probes...\nTracing block device I/O latency... Hit Ctrl-C to end.\n\n@usecs:\n[256, 512)             3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n[512, 1K)              1 |@@@@@@@@@@@@@@@@@                                   |\n';

test.serial(
  'each sample creates exactly one ConfigMap and one Job that match the kubectl-trace contract',
  async (t) => {
    // The pod-target sample needs its pod, running on a node.
    await apply(ns, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'my-app', namespace: ns },
      spec: { nodeName: 'kwok-node-1', containers: [{ name: 'app', image: 'busybox' }] },
    });
    await eventually('the target pod runs', async () =>
      (await getJson<V1Pod>('pod', 'my-app'))?.status?.phase === 'Running' ? true : undefined,
    );
    const files =
      readFileSync(path.join(samplesDir, 'kustomization.yaml'), 'utf8').match(
        /observe_v1alpha1_tracejob[a-z_]*\.yaml/g,
      ) ?? [];
    t.true(files.length >= 4);
    for (const file of files) {
      const docs = parseAllDocuments(readFileSync(path.join(samplesDir, file), 'utf8')).map(
        (d) => d.toJS() as { kind: string; metadata: { name: string } },
      );
      for (const doc of docs) await apply(ns, doc);
      const name = docs.find((d) => d.kind === 'TraceJob')?.metadata.name ?? '';
      const tj = await waitForTraceJob(
        ns,
        name,
        'has an id, a node and a phase',
        (x) => x.status?.id !== undefined && x.status.node !== undefined && x.status.phase !== undefined,
      );
      const id = tj.status?.id ?? '';
      t.regex(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, file);
      const objectName = `kubectl-trace-${id}`;
      t.is(tj.status?.jobName, objectName, file);
      const jobs = await listJson<V1Job>(ns, 'jobs', `iovisor.org/kubectl-trace-id=${id}`);
      const configMaps = await listJson<V1ConfigMap>(ns, 'configmaps', `iovisor.org/kubectl-trace-id=${id}`);
      t.is(jobs.length, 1, `${file}: exactly one Job`);
      t.is(configMaps.length, 1, `${file}: exactly one ConfigMap`);
      for (const obj of [jobs[0], configMaps[0]]) {
        t.is(obj?.metadata?.name, objectName, file);
        t.is(obj?.metadata?.labels?.['iovisor.org/kubectl-trace'], objectName, file);
        t.is(obj?.metadata?.annotations?.['iovisor.org/kubectl-trace-id'], id, file);
        const owner = obj?.metadata?.ownerReferences?.[0];
        t.like(
          owner,
          {
            apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
            kind: 'TraceJob',
            name,
            uid: tj.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
          file,
        );
      }
      const affinity =
        jobs[0]?.spec?.template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
          ?.nodeSelectorTerms[0]?.matchExpressions?.[0];
      const expectedHost = tj.status?.node === 'kwok-node-1' ? 'kwok-host-1.internal' : tj.status?.node;
      t.deepEqual(affinity, { key: 'kubernetes.io/hostname', operator: 'In', values: [expectedHost] }, file);
      t.truthy(configMaps[0]?.data?.['program.bt'], file);
      const running = await waitForPhase(ns, name, 'Running');
      t.is(running.status?.node, tj.status?.node, file);
      // The samples' short deadlines would expire (on kwok nobody ends the pod) while later checks run.
      const deleted = await kubectl(['delete', 'tracejob', name, '--wait=true'], { namespace: ns });
      t.is(deleted.exitCode, 0, deleted.stderr);
    }

    async function getJson<T>(kind: string, name: string): Promise<T | undefined> {
      const r = await kubectl(['get', kind, name, '-o', 'json', '--ignore-not-found'], { namespace: ns });
      return r.stdout.trim() === '' ? undefined : (JSON.parse(r.stdout) as T);
    }
  },
);

test('a node named by its hostname label resolves to the node, and the affinity uses the label', async (t) => {
  await apply(ns, traceJob('by-hostname-label', { hostname: 'kwok-host-1.internal' }));
  const { tj, pod } = await started('by-hostname-label');
  t.is(tj.status?.node, 'kwok-node-1');
  t.is(pod.spec?.nodeName, 'kwok-node-1');
  await apply(ns, traceJob('by-node-name', { hostname: 'kwok-node-1' }));
  const byName = await started('by-node-name');
  const job = await getJob(ns, byName.tj.status?.jobName ?? '');
  t.deepEqual(
    job?.spec?.template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
      ?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values,
    ['kwok-host-1.internal'],
  );
  t.is(byName.pod.spec?.nodeName, 'kwok-node-1');
});

test('a trace that reaches its deadline ends Succeeded with its histogram and full text kept', async (t) => {
  await apply(ns, traceJob('succeeds', {}));
  const { id, pod } = await started('succeeds');
  await finishTracePod(
    ns,
    { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
    { exitCode: 0, text: histogramText, result: histogramResult },
  );
  const tj = await waitForPhase(ns, 'succeeds', 'Succeeded');
  t.like(condition(tj, 'Succeeded'), { status: 'True', reason: 'DeadlineReached' });
  t.deepEqual(
    tj.status?.result?.maps[0]?.histograms?.[0]?.buckets.map((b) => b.count),
    [3, 1],
  );
  t.is(tj.status?.result?.maps[0]?.histograms?.[0]?.p99, 1024);
  t.truthy(tj.status?.completionTime);
  const output = await getConfigMap(ns, tj.status?.output?.configMapName ?? '');
  t.true(output?.data?.['output.txt']?.includes('[256, 512)             3'), 'the text output is kept');
  t.false(
    output?.data?.['output.txt']?.includes('TRACE_OPERATOR_RESULT'),
    "the runner's result line is not part of the kept text",
  );
  t.is(output?.metadata?.ownerReferences?.[0]?.uid, tj.metadata.uid);
  const events = await eventsFor(ns, 'succeeds');
  t.true(
    events.some((e) => e.startsWith('Normal Created')),
    events.join('\n'),
  );
  t.true(
    events.some((e) => e.startsWith('Normal DeadlineReached')),
    events.join('\n'),
  );
});

test('when the pod log cannot be read, the result from the termination message is kept and the gap reported', async (t) => {
  await apply(ns, traceJob('no-log', {}));
  const { id, pod } = await started('no-log');
  await finishTracePod(
    ns,
    { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
    { exitCode: 0, text: histogramText, result: histogramResult, log: false },
  );
  const tj = await waitForPhase(ns, 'no-log', 'Succeeded');
  t.deepEqual(
    tj.status?.result?.maps[0]?.histograms?.[0]?.buckets.map((b) => b.count),
    [3, 1],
  );
  t.like(condition(tj, 'OutputCaptured'), { status: 'False', reason: 'LogsUnavailable' });
  t.regex(condition(tj, 'OutputCaptured')?.message ?? '', /tried 3 times/);
  t.is(tj.status?.output, undefined);
});

test('a program bpftrace rejects ends Failed with the compile error in the condition', async (t) => {
  await apply(ns, traceJob('compile-error', { program: 'tracepoint:block:block_rq_issue { @c = count() }' }));
  const { id, pod } = await started('compile-error');
  const message = 'stdin:1:42-43: ERROR: syntax error, unexpected }, expecting ;';
  await finishTracePod(
    ns,
    { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
    {
      exitCode: 1,
      text: message,
      result: { outcome: 'CompileError', exitCode: 1, message, maps: [], truncated: false },
    },
  );
  const tj = await waitForPhase(ns, 'compile-error', 'Failed');
  const failed = condition(tj, 'Failed');
  t.is(failed?.reason, 'CompileError');
  t.true(failed?.message.includes('syntax error'), failed?.message);
  t.true((await eventsFor(ns, 'compile-error')).some((e) => e.startsWith('Warning CompileError')));
});

test('deleting a TraceJob garbage-collects its ConfigMaps and Job through the real garbage collector', async (t) => {
  await apply(ns, traceJob('deleted', {}));
  const { id } = await started('deleted');
  const name = `kubectl-trace-${id}`;
  t.truthy(await getJob(ns, name));
  t.truthy(await getConfigMap(ns, name));
  const deleted = await kubectl(['delete', 'tracejob', 'deleted', '--wait=true'], { namespace: ns });
  t.is(deleted.exitCode, 0, deleted.stderr);
  await eventually('the Job and ConfigMap are garbage-collected', async () =>
    (await getJob(ns, name)) === undefined && (await getConfigMap(ns, name)) === undefined ? true : undefined,
  );
  await eventually('the trace pod is gone', async () =>
    (await listJson<V1Pod>(ns, 'pods', `iovisor.org/kubectl-trace-id=${id}`)).length === 0 ? true : undefined,
  );
  t.pass();
});

test("a Job deleted behind the operator's back is reported, not re-created", async (t) => {
  await apply(ns, traceJob('job-deleted', {}));
  const { id } = await started('job-deleted');
  const removed = await kubectl(['delete', 'job', `kubectl-trace-${id}`, '--cascade=background'], { namespace: ns });
  t.is(removed.exitCode, 0, removed.stderr);
  const tj = await waitForPhase(ns, 'job-deleted', 'Failed');
  t.like(condition(tj, 'Failed'), { reason: 'JobDeleted' });
  // Give a re-creating controller every chance, then check nothing came back.
  await kubectl(['annotate', 'tracejob', 'job-deleted', 'poke=1'], { namespace: ns });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  t.is(await getJob(ns, `kubectl-trace-${id}`), undefined);
});

test('spec.stop asks the runner to stop through the program ConfigMap', async (t) => {
  await apply(ns, traceJob('stopped', {}));
  const { id, pod } = await started('stopped');
  const patched = await kubectl(['patch', 'tracejob', 'stopped', '--type=merge', '-p', '{"spec":{"stop":true}}'], {
    namespace: ns,
  });
  t.is(patched.exitCode, 0, patched.stderr);
  const requested = await waitForTraceJob(
    ns,
    'stopped',
    'has StopRequested',
    (tj) => condition(tj, 'StopRequested')?.status === 'True',
  );
  t.is(condition(requested, 'SpecApplied')?.status ?? 'True', 'True', 'stop is not a spec change that is refused');
  const cm = await getConfigMap(ns, `kubectl-trace-${id}`);
  t.truthy(cm?.data?.['stop'], 'the program ConfigMap carries the stop request the runner polls');
  await finishTracePod(
    ns,
    { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
    { exitCode: 0, text: histogramText, result: { ...histogramResult, outcome: 'Stopped' } },
  );
  const tj = await waitForPhase(ns, 'stopped', 'Succeeded');
  t.like(condition(tj, 'Succeeded'), { reason: 'Stopped' });
});

test('a spec change after the start is reported as not applied', async (t) => {
  await apply(ns, traceJob('changed', {}));
  const { id } = await started('changed');
  const patched = await kubectl(['patch', 'tracejob', 'changed', '--type=merge', '-p', '{"spec":{"deadline":120}}'], {
    namespace: ns,
  });
  t.is(patched.exitCode, 0, patched.stderr);
  const tj = await waitForTraceJob(
    ns,
    'changed',
    'reports SpecApplied=False',
    (x) => condition(x, 'SpecApplied')?.status === 'False',
  );
  t.is(condition(tj, 'SpecApplied')?.reason, 'SpecChangedAfterStart');
  t.is(
    (await getJob(ns, `kubectl-trace-${id}`))?.spec?.activeDeadlineSeconds,
    3600 + 30,
    'the running Job is untouched',
  );
});

test('a finished TraceJob with a time-to-live is deleted after it', async (t) => {
  await apply(ns, traceJob('expires', { ttlSecondsAfterFinished: 2 }));
  const { id, pod } = await started('expires');
  await finishTracePod(
    ns,
    { name: pod.metadata?.name ?? '', container: `kubectl-trace-${id}` },
    { exitCode: 0, text: histogramText, result: histogramResult },
  );
  // The TTL may run out before a poll sees Succeeded, so the events tell the order.
  await eventually(
    'the TraceJob is deleted after its TTL',
    async () => ((await getTraceJob(ns, 'expires')) === undefined ? true : undefined),
    60_000,
  );
  const events = await eventsOnceRecorded(ns, 'expires', 'Normal Expired');
  t.true(
    events.some((e) => e.startsWith('Normal DeadlineReached')),
    events.join('\n'),
  );
  t.true(
    events.some((e) => e.startsWith('Normal Expired')),
    events.join('\n'),
  );
});

// One hook, so the restart check runs before the cleanup (ava does not order
// separate after.always hooks the way they are declared).
test.after.always('a restarted manager over settled TraceJobs makes no writes; then clean up', async (t) => {
  try {
    await checkRestartMakesNoWrites(t);
  } finally {
    await manager?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  }
});

async function checkRestartMakesNoWrites(t: ExecutionContext): Promise<void> {
  t.is(await manager.stop(), 0, 'SIGTERM shuts the manager down cleanly');
  manager = await startManager({ namespaces: [ns], args: ['--leader-elect=false'] });
  const writes = async (): Promise<number> => {
    const text = await manager.metrics();
    return ['POST', 'PUT', 'PATCH', 'DELETE'].reduce(
      (n, method) => n + metricValue(text, 'rest_client_requests_total', { method }),
      0,
    );
  };
  await eventually('every TraceJob was reconciled after the restart', async () => {
    const text = await manager.metrics();
    const count = (await listJson<TraceJob>(ns, 'tracejobs')).length;
    return metricValue(text, 'controller_runtime_reconcile_total', { controller: 'tracejob' }) >= count
      ? true
      : undefined;
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(
    await writes(),
    0,
    manager
      .logs()
      .split('\n')
      .filter((l) => l.includes('"level":"error"'))
      .join('\n'),
  );
}
