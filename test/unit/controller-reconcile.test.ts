// Every branch of the TraceJob reconciler (src/controller/reconcile.ts) on
// in-memory fakes of its narrow dependencies and a hand-moved clock: start,
// follow, capture with and without logs, stop, stop before start, pod creation
// refused and the start timeout, TTL, reject, spec drift, and
// the 409 and cache-lag paths. What needs the real API server is in
// test/integration/controller-*.test.ts.
import test from 'ava';
import type { V1ContainerState, V1Job, V1Pod } from '@kubernetes/client-node';
import { reconcileTraceJob } from '../../src/controller/reconcile.ts';
import { ApiError } from '../../src/runtime/api-error.ts';
import {
  POD_CREATE_RECHECK_MS,
  POD_START_LATE_MS,
  POD_START_NODE_CHECK_MS,
  POD_START_POLL_MS,
} from '../../src/tracejob/phase.ts';
import { formatResultLine, formatTerminationMessage } from '../../src/runner/result-format.ts';
import {
  SPEC_HASH_ANNOTATION_KEY,
  STOP_KEY,
  STOP_REQUESTED_LABEL_KEY,
  type ObjectMeta,
  TRACE_ID_LABEL_KEY,
  findCondition,
  traceObjectName,
  type TraceJob,
  type TraceResult,
} from '../../src/tracejob/index.ts';
import { harness, NAMESPACE, newTraceJob, node, UID, type Harness } from '../support/reconciler-fakes.ts';

const JOB = traceObjectName(UID);

/** Runs one reconcile of team-a/trace. */
const reconcile = (h: Harness, reconcileID?: string) => reconcileTraceJob(h.deps, h.ctx(reconcileID));

/** The writes made, as "verb Kind". */
function writeKinds(h: Harness): string[] {
  return h.cluster.writes.map((w) => `${w.verb} ${w.kind}`);
}

/** A TraceJob started by a first reconcile; the records of that reconcile cleared. */
async function started(h: Harness, spec: Partial<TraceJob['spec']> = {}): Promise<TraceJob> {
  h.cluster.put(newTraceJob(spec));
  await reconcile(h);
  h.cluster.clearRecords();
  const tj = h.cluster.stored();
  if (tj === undefined) throw new Error('no TraceJob');
  return tj;
}

function setJobStatus(h: Harness, status: V1Job['status']): void {
  const job = h.cluster.jobs.get(`${NAMESPACE}/${JOB}`);
  if (job === undefined) throw new Error('no Job');
  job.status = status;
}

function tracePod(phase: string, state: V1ContainerState): V1Pod {
  return {
    metadata: {
      name: `${JOB}-abcde`,
      namespace: NAMESPACE,
      labels: { [TRACE_ID_LABEL_KEY]: UID },
      creationTimestamp: '2024-01-01T00:00:01Z' as unknown as Date,
    },
    spec: { nodeName: 'node-a', containers: [{ name: JOB }] },
    status: {
      phase,
      containerStatuses: [
        { name: JOB, image: 'runner:1', imageID: '', ready: phase === 'Running', restartCount: 0, state },
      ],
    },
  };
}

const RESULT: TraceResult = {
  outcome: 'Completed',
  exitCode: 0,
  startedAt: '2024-01-01T00:00:02Z',
  finishedAt: '2024-01-01T00:00:05Z',
  maps: [],
  truncated: false,
};
const NONCE = '0123456789abcdef0123456789abcdef';

/** A finished trace pod whose termination message holds RESULT. */
function finishedPod(): V1Pod {
  return tracePod('Succeeded', {
    terminated: {
      exitCode: 0,
      reason: 'Completed',
      message: formatTerminationMessage(RESULT, NONCE),
      startedAt: '2024-01-01T00:00:02Z' as unknown as Date,
      finishedAt: '2024-01-01T00:00:05Z' as unknown as Date,
    },
  });
}

function completeJob(h: Harness): void {
  setJobStatus(h, {
    succeeded: 1,
    conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: '2024-01-01T00:00:06Z' as unknown as Date }],
  });
}

test('start: a new TraceJob gets its ConfigMap, its Job and one status write, announced by one Event', async (t) => {
  const h = harness();
  h.cluster.put(newTraceJob());
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  t.deepEqual(writeKinds(h), ['create ConfigMap', 'create Job', 'status TraceJob']);
  const tj = h.cluster.stored();
  t.is(tj?.status?.id, UID, 'the id is the TraceJob uid');
  t.is(tj?.status?.jobName, JOB);
  t.is(tj?.status?.node, 'node-a');
  t.is(tj?.status?.phase, 'Pending');
  t.is(findCondition(tj?.status?.conditions, 'Accepted')?.status, 'True');
  t.is(findCondition(tj?.status?.conditions, 'JobCreated')?.status, 'True');
  t.deepEqual(
    h.cluster.events.map((e) => `${e.type} ${e.reason}`),
    ['Normal Created'],
  );
  t.regex(h.cluster.events[0]?.message ?? '', new RegExp(`kubectl trace attach ${UID}`));
  t.true(h.cluster.jobs.has(`${NAMESPACE}/${JOB}`));
  t.true(h.cluster.configMaps.has(`${NAMESPACE}/${JOB}`));
  t.true(
    h.logs.some((l) => l.msg === 'created trace Job' && l.fields['reconcileID'] === 'rid-1'),
    'the reconciler logs with the reconcile id',
  );
  t.true(
    h.cluster.signals.length > 0 && h.cluster.signals.every((s) => s === h.ctx().signal),
    'every API call got the reconcile signal',
  );
});

test('start: an id already in the status is kept, and names derive from it', async (t) => {
  const h = harness();
  const existing = '7f1d3a2c-55aa-4e0b-8a6e-0c9f1b2d3e4f';
  h.cluster.put(newTraceJob({}, { id: existing }));
  await reconcile(h);
  const tj = h.cluster.stored();
  t.is(tj?.status?.id, existing);
  t.is(tj?.status?.jobName, traceObjectName(existing));
  t.true(h.cluster.jobs.has(`${NAMESPACE}/${traceObjectName(existing)}`));
  t.false(h.cluster.jobs.has(`${NAMESPACE}/${JOB}`), 'no Job named after the uid');
});

/**
 * As if the manager died before its status write: the objects exist, the status does not say so,
 * and a new manager process remembers no writes of its own. Then one reconcile, with records cleared.
 */
async function reconcileAfterCrash(h: Harness): Promise<void> {
  h.cluster.put(newTraceJob());
  h.deps.statusWrites?.clear();
  h.cluster.clearRecords();
  await reconcile(h);
}

test('start after a crash between the creates: no second POST, no duplicate, one status write', async (t) => {
  const h = harness();
  h.cluster.put(newTraceJob());
  await reconcile(h);
  await reconcileAfterCrash(h);
  t.deepEqual(writeKinds(h), ['status TraceJob']);
  t.is(h.cluster.jobs.size, 1);
  t.is(h.cluster.stored()?.status?.jobName, JOB);
});

test('start after a crash between the ConfigMap and the Job: the ConfigMap is not cached, so its POST is answered exists; the Job follows', async (t) => {
  const h = harness();
  h.cluster.put(newTraceJob());
  await reconcile(h);
  h.cluster.jobs.clear();
  await reconcileAfterCrash(h);
  t.deepEqual(writeKinds(h), ['create ConfigMap', 'create Job', 'status TraceJob']);
  t.is(h.cluster.configMaps.size, 1);
  t.is(h.cluster.jobs.size, 1);
});

test('follow: the reconcile the new Job triggers writes nothing; a running pod sets Running without an Event', async (t) => {
  const h = harness();
  await started(h);
  // A Job without its pod yet is looked at again soon, to surface a refused pod creation.
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: POD_CREATE_RECHECK_MS });
  t.deepEqual(h.cluster.writes, [], 'nothing changed since the start');

  setJobStatus(h, { active: 1, startTime: '2024-01-01T00:00:01Z' as unknown as Date });
  h.cluster.pods = [tracePod('Running', { running: { startedAt: '2024-01-01T00:00:02Z' as unknown as Date } })];
  await reconcile(h);
  const tj = h.cluster.stored();
  t.is(tj?.status?.phase, 'Running');
  t.is(tj?.status?.startTime, '2024-01-01T00:00:02Z');
  t.is(findCondition(tj?.status?.conditions, 'Running')?.status, 'True');
  t.is(h.cluster.count('status'), 1);
  t.deepEqual(h.cluster.events, [], 'running is a condition, not an Event');

  h.cluster.clearRecords();
  await reconcile(h);
  t.deepEqual(h.cluster.writes, [], 'a settled TraceJob is not written again');
});

test('follow: a Job deleted behind the operator fails the trace (never started twice)', async (t) => {
  const h = harness();
  await started(h);
  h.cluster.jobs.clear();
  await reconcile(h);
  const tj = h.cluster.stored();
  t.is(tj?.status?.phase, 'Failed');
  t.is(findCondition(tj?.status?.conditions, 'JobCreated')?.reason, 'JobDeleted');
  t.is(h.cluster.count('create', 'Job'), 0);
});

test('capture with logs: the text goes to an output ConfigMap, the result to the status, one Event', async (t) => {
  const h = harness();
  await started(h);
  completeJob(h);
  h.cluster.pods = [finishedPod()];
  h.cluster.logs.set(`${JOB}-abcde`, { text: `hello\n${formatResultLine(RESULT, NONCE)}\n` });
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  const tj = h.cluster.stored();
  t.is(tj?.status?.phase, 'Succeeded');
  t.deepEqual(tj?.status?.result, RESULT);
  t.is(findCondition(tj?.status?.conditions, 'OutputCaptured')?.status, 'True');
  const outputName = tj?.status?.output?.configMapName ?? '';
  const output = h.cluster.configMaps.get(`${NAMESPACE}/${outputName}`);
  t.truthy(output);
  t.regex(Object.values(output?.data ?? {}).join(''), /hello/);
  t.notRegex(
    Object.values(output?.data ?? {}).join(''),
    /TRACE_OPERATOR_RESULT/,
    'the result line is not kept as text',
  );
  t.deepEqual(
    h.cluster.events.map((e) => `${e.type} ${e.reason}`),
    ['Normal Completed'],
  );
  t.is(tj?.status?.completionTime, '2024-01-01T00:00:05Z');
});

test('capture without logs: read again twice, then finished with the termination result and LogsUnavailable', async (t) => {
  const h = harness();
  await started(h);
  completeJob(h);
  h.cluster.pods = [finishedPod()];
  h.cluster.logs.set(`${JOB}-abcde`, { error: 'kubelet unreachable' });
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: 1000 });
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: 2000 });
  t.deepEqual(h.cluster.writes, [], 'nothing written while retrying');
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  const tj = h.cluster.stored();
  t.is(tj?.status?.phase, 'Succeeded');
  t.deepEqual(tj?.status?.result, RESULT, 'the result comes from the termination message');
  const captured = findCondition(tj?.status?.conditions, 'OutputCaptured');
  t.is(captured?.status, 'False');
  t.is(captured?.reason, 'LogsUnavailable');
  t.regex(captured?.message ?? '', /kubelet unreachable/);
  t.true(h.cluster.events.some((e) => e.type === 'Warning' && e.reason === 'LogsUnavailable'));
  t.is(h.cluster.count('create', 'ConfigMap'), 0, 'no output ConfigMap without text');
});

test('stop: spec.stop patches the program ConfigMap once and says so', async (t) => {
  const h = harness();
  const tj = await started(h);
  h.cluster.put({ ...tj, spec: { ...tj.spec, stop: true }, metadata: { ...tj.metadata, generation: 2 } });
  await reconcile(h);
  t.is(h.cluster.patches.length, 1);
  const patch = h.cluster.patches[0]?.patch as { data?: Record<string, string>; metadata?: ObjectMeta };
  t.truthy(patch.data?.[STOP_KEY]);
  t.is(patch.metadata?.labels?.[STOP_REQUESTED_LABEL_KEY], 'true', 'labelled, so the ConfigMap watch selects it');
  const stored = h.cluster.stored();
  t.is(findCondition(stored?.status?.conditions, 'StopRequested')?.status, 'True');
  t.true(h.cluster.events.some((e) => e.reason === 'StopRequested'));

  h.cluster.clearRecords();
  await reconcile(h);
  t.is(h.cluster.patches.length, 0, 'a stop request already in the ConfigMap is not sent again');
});

/** A started TraceJob whose trace container runs, with spec.stop now set; records cleared. */
async function stopRequested(h: Harness): Promise<void> {
  const tj = await started(h);
  h.cluster.pods = [tracePod('Running', { running: { startedAt: '2024-01-01T00:00:02Z' as unknown as Date } })];
  h.cluster.put({ ...tj, spec: { ...tj.spec, stop: true }, metadata: { ...tj.metadata, generation: 2 } });
}

test('stop: a running trace is stopped at once through pods/exec, after the ConfigMap request, and only once', async (t) => {
  const h = harness();
  await stopRequested(h);
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  t.is(h.cluster.patches.length, 1, 'the durable request (the fallback) is written first');
  t.deepEqual(h.cluster.execs, [
    { pod: `${JOB}-abcde`, container: JOB, command: ['trace-operator', 'stop', '--request'] },
  ]);
  const condition = findCondition(h.cluster.stored()?.status?.conditions, 'StopRequested');
  t.like(condition, { status: 'True', reason: 'StopDelivered' });
  t.regex(condition?.message ?? '', /through pods\/exec in pod .*asked the runner \(PID 7\) to stop/);
  t.deepEqual(
    h.cluster.events.map((e) => [e.type, e.reason]),
    [['Normal', 'StopDelivered']],
  );
  t.deepEqual(h.stopExecs, ['delivered']);

  h.cluster.clearRecords();
  await reconcile(h);
  t.deepEqual(h.cluster.execs, [], 'a delivered stop is not run again');
  t.deepEqual(h.cluster.writes, [], 'and nothing is written');
});

test('stop: pods/exec refused by RBAC leaves the stop to the ConfigMap, says why in a Warning, and is not retried', async (t) => {
  const h = harness();
  await stopRequested(h);
  h.cluster.execAnswers.push(
    new ApiError({
      status: 403,
      reason: 'Forbidden',
      message: 'pods "x" is forbidden: User "system:serviceaccount:s:m" cannot create resource "pods/exec"',
      method: 'GET',
      path: '/api/v1/namespaces/team-a/pods/x/exec',
    }),
  );
  t.deepEqual(await reconcile(h), { type: 'await_change' }, 'no retry of a refusal');
  const condition = findCondition(h.cluster.stored()?.status?.conditions, 'StopRequested');
  t.like(condition, { status: 'True', reason: 'StopWaitsForKubelet' });
  t.regex(
    condition?.message ?? '',
    /get and create on pods\/exec are not both granted in namespace team-a.*config\/rbac\/role\.yaml/,
  );
  t.regex(condition?.message ?? '', /ConfigMap kubectl-trace-.*next pod sync/);
  t.deepEqual(
    h.cluster.events.map((e) => [e.type, e.reason]),
    [['Warning', 'StopWaitsForKubelet']],
  );
  t.is(h.cluster.patches.length, 1, 'the ConfigMap carries the stop');

  h.cluster.clearRecords();
  await reconcile(h);
  t.deepEqual(h.cluster.execs, [], 'a refused exec is not tried again');
  t.deepEqual(h.stopExecs, ['refused']);
});

test('stop: a failed exec is retried a second apart, at most three times, then the fallback finishes the stop', async (t) => {
  const h = harness();
  await stopRequested(h);
  h.cluster.execAnswers.push(
    new Error('error dialing backend: connection refused'),
    { exitCode: 3, stdout: 'trace-operator stop: no pid file at /tmp/trace-operator-runner.pid', stderr: '' },
    new Error('no end within 10s'),
  );
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: 1000 });
  t.regex(
    findCondition(h.cluster.stored()?.status?.conditions, 'StopRequested')?.message ?? '',
    /pods\/exec in pod .* failed: error dialing backend/,
  );
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: 1000 });
  t.regex(
    findCondition(h.cluster.stored()?.status?.conditions, 'StopRequested')?.message ?? '',
    /exited 3 \(no pid file/,
  );
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  t.is(h.cluster.execs.length, 3);
  t.is(
    h.cluster.events.filter((e) => e.reason === 'StopWaitsForKubelet').length,
    1,
    'one Warning, not one per attempt',
  );
  await reconcile(h);
  t.is(h.cluster.execs.length, 3, 'no fourth attempt');
  t.deepEqual(h.stopExecs, ['failed', 'failed', 'failed']);
  t.is(h.cluster.patches.length, 1);
});

test('stop: before the trace container runs, only the ConfigMap request is made; the exec follows once it runs', async (t) => {
  const h = harness();
  const tj = await started(h);
  h.cluster.pods = [tracePod('Pending', { waiting: { reason: 'ContainerCreating' } })];
  h.cluster.put({ ...tj, spec: { ...tj.spec, stop: true }, metadata: { ...tj.metadata, generation: 2 } });
  await reconcile(h);
  t.deepEqual(h.cluster.execs, []);
  t.like(findCondition(h.cluster.stored()?.status?.conditions, 'StopRequested'), { reason: 'StopRequested' });

  h.cluster.pods = [tracePod('Running', { running: { startedAt: '2024-01-01T00:00:02Z' as unknown as Date } })];
  await reconcile(h);
  t.is(h.cluster.execs.length, 1);
  t.like(findCondition(h.cluster.stored()?.status?.conditions, 'StopRequested'), { reason: 'StopDelivered' });
  t.is(h.cluster.patches.length, 1, 'the ConfigMap request is made once');
});

test('stop: with --stop-exec=false no exec is made; the condition says the stop waits for the kubelet and why', async (t) => {
  const h = harness();
  h.deps.stopExec = false;
  await stopRequested(h);
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  t.deepEqual(h.cluster.execs, []);
  t.is(h.cluster.patches.length, 1);
  const condition = findCondition(h.cluster.stored()?.status?.conditions, 'StopRequested');
  t.like(condition, { reason: 'StopWaitsForKubelet' });
  t.regex(condition?.message ?? '', /turned off \(--stop-exec=false\)/);
  t.deepEqual(
    h.cluster.events.map((e) => [e.type, e.reason]),
    [['Normal', 'StopWaitsForKubelet']],
  );
});

test('TTL: a finished TraceJob is requeued until its time-to-live passes, then deleted by uid', async (t) => {
  const h = harness();
  await started(h, { ttlSecondsAfterFinished: 60 });
  completeJob(h);
  h.cluster.pods = [finishedPod()];
  h.cluster.logs.set(`${JOB}-abcde`, { text: 'hello\n' });
  // Finished at 00:00:05 (the result), so the TTL runs out at 00:01:05.
  h.time.ms = Date.parse('2024-01-01T00:00:10Z');
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: 55_000 });
  t.is(h.cluster.count('delete'), 0);
  h.time.advance(30_000);
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: 25_000 });
  h.time.advance(25_000);
  h.cluster.clearRecords();
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  t.deepEqual(writeKinds(h), ['delete TraceJob']);
  t.is(h.cluster.stored(), undefined);
  t.true(h.cluster.events.some((e) => e.reason === 'Expired'));
});

test('reject: an invalid spec fails with Accepted=False and a Warning, creates nothing, and stays rejected', async (t) => {
  const h = harness();
  h.cluster.put(newTraceJob({ program: '' }));
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  const tj = h.cluster.stored();
  t.is(tj?.status?.phase, 'Failed');
  t.is(findCondition(tj?.status?.conditions, 'Accepted')?.status, 'False');
  t.is(h.cluster.count('create'), 0);
  t.true(h.cluster.events.some((e) => e.type === 'Warning'));

  h.cluster.clearRecords();
  await reconcile(h);
  t.deepEqual(h.cluster.writes, [], 'a resync does not write a rejected TraceJob again');
});

test('reject: a node that does not exist, and a namespace the operator may not run in', async (t) => {
  const missing = harness();
  missing.cluster.put(newTraceJob({ hostname: 'nowhere' }));
  await reconcile(missing);
  t.is(findCondition(missing.cluster.stored()?.status?.conditions, 'Accepted')?.reason, 'NodeNotFound');
  t.is(missing.cluster.count('create'), 0);

  const scoped = harness({ allowedNamespaces: new Set(['tracing']) });
  scoped.cluster.put(newTraceJob());
  await reconcile(scoped);
  const accepted = findCondition(scoped.cluster.stored()?.status?.conditions, 'Accepted');
  t.is(accepted?.reason, 'NamespaceNotAllowed');
  t.regex(accepted?.message ?? '', /tracing/);
});

test('start: the node comes from the cache (by name or hostname label), with no request', async (t) => {
  const h = harness();
  h.cluster.nodes.set('ip-10-0-0-7', node('ip-10-0-0-7', 'worker-7'));
  h.cluster.put(newTraceJob({ hostname: 'worker-7' }));
  await reconcile(h);
  t.is(h.cluster.stored()?.status?.node, 'ip-10-0-0-7');
  t.deepEqual(h.cluster.nodeReads, [], 'no live GET or list of Nodes on the happy path');
});

test('start: a node the cache has not seen yet is looked up on the API server before the trace is rejected', async (t) => {
  const h = harness();
  h.cluster.cachedNodes = new Map();
  h.cluster.put(newTraceJob());
  await reconcile(h);
  t.deepEqual(h.cluster.nodeReads, ['node-a']);
  t.is(h.cluster.stored()?.status?.jobName, JOB);
});

test('drift: a spec changed after the Job was created gets SpecApplied=False and a Warning, once', async (t) => {
  const h = harness();
  const tj = await started(h);
  const job = h.cluster.jobs.get(`${NAMESPACE}/${JOB}`);
  t.truthy(job?.metadata?.annotations?.[SPEC_HASH_ANNOTATION_KEY]);
  h.cluster.put({
    ...tj,
    spec: { ...tj.spec, program: 'BEGIN { exit(); }' },
    metadata: { ...tj.metadata, generation: 2 },
  });
  await reconcile(h);
  const applied = findCondition(h.cluster.stored()?.status?.conditions, 'SpecApplied');
  t.is(applied?.status, 'False');
  t.is(h.cluster.events.filter((e) => e.type === 'Warning').length, 1);
  t.is(h.cluster.count('create', 'Job'), 0, 'a started trace is never started again');

  h.cluster.clearRecords();
  await reconcile(h);
  t.deepEqual(h.cluster.events, [], 'no second Warning for the same drift');
});

test('a 409 on the status write requeues at once, counted and logged at debug with the reconcile id', async (t) => {
  const h = harness();
  h.cluster.put(newTraceJob());
  // The cache holds an older copy than the API server.
  const cached = newTraceJob();
  h.cluster.staleTraceJob = cached;
  const stored = h.cluster.stored();
  if (stored !== undefined) stored.metadata.resourceVersion = '2';
  t.deepEqual(await reconcile(h, 'rid-409'), { type: 'requeue' });
  t.is(h.conflicts(), 1);
  const line = h.logs.find((l) => l.msg.includes('409'));
  t.is(line?.level, 'debug');
  t.is(line?.fields['reconcileID'], 'rid-409');
  t.false(h.logs.some((l) => l.level === 'error'));
});

test('a reconcile that still reads the version its own status write replaced waits instead of writing', async (t) => {
  const h = harness();
  h.cluster.put(newTraceJob());
  const before = structuredClone(h.cluster.stored());
  await reconcile(h);
  h.cluster.clearRecords();
  h.cluster.staleTraceJob = before;
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: 100 });
  t.deepEqual(h.cluster.writes, []);
  h.cluster.staleTraceJob = undefined;
  t.deepEqual(await reconcile(h), { type: 'requeue', afterMs: POD_CREATE_RECHECK_MS });
  t.deepEqual(h.cluster.writes, []);
});

test('a TraceJob being deleted, or gone, is left alone', async (t) => {
  const h = harness();
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  const tj = newTraceJob();
  (tj.metadata as { deletionTimestamp?: string }).deletionTimestamp = '2024-01-01T00:00:00Z';
  h.cluster.put(tj);
  t.deepEqual(await reconcile(h), { type: 'await_change' });
  t.deepEqual(h.cluster.writes, []);
});

test('stop before start: spec.stop at creation creates nothing and ends Failed/StoppedBeforeStart in one status write', async (t) => {
  const h = harness();
  h.cluster.put(newTraceJob({ stop: true }));
  await reconcile(h);
  t.deepEqual(writeKinds(h), ['status TraceJob']);
  const stored = h.cluster.stored();
  t.is(stored?.status?.phase, 'Failed');
  t.is(findCondition(stored?.status?.conditions, 'Failed')?.reason, 'StoppedBeforeStart');
  t.is(stored?.status?.jobName, undefined);
  t.truthy(stored?.status?.completionTime);

  h.cluster.clearRecords();
  await reconcile(h);
  t.deepEqual(h.cluster.writes, [], 'a TraceJob stopped before it started stays so');
});

/** Gives the started trace's Job a creation time `ageMs` before now, as the API server would. */
function jobCreatedAgo(h: Harness, ageMs: number): void {
  const job = h.cluster.jobs.get(`${NAMESPACE}/${JOB}`);
  if (job?.metadata === undefined) throw new Error('no Job');
  job.metadata.creationTimestamp = new Date(h.time.ms - ageMs).toISOString() as unknown as Date;
}

test('pod creation refused by Pod Security: the trace fails at once, its Job is suspended, a Warning says why', async (t) => {
  const h = harness();
  await started(h);
  jobCreatedAgo(h, POD_CREATE_RECHECK_MS + 1000);
  h.cluster.podCreateFailures.set(
    JOB,
    `Error creating: pods "${JOB}-x" is forbidden: violates PodSecurity "restricted:latest": privileged (container "${JOB}" must not set securityContext.privileged=true)`,
  );
  await reconcile(h);
  const stored = h.cluster.stored();
  t.is(stored?.status?.phase, 'Failed');
  t.is(findCondition(stored?.status?.conditions, 'Failed')?.reason, 'PodForbidden');
  t.true(
    h.cluster.writes.some((w) => w.verb === 'patch' && w.kind === 'Job'),
    'the Job is suspended',
  );
  t.is(h.cluster.jobs.get(`${NAMESPACE}/${JOB}`)?.spec?.suspend, true);
  t.true(h.cluster.events.some((e) => e.type === 'Warning' && e.reason === 'PodForbidden'));
});

test('a missing service account keeps the trace Pending with the reason, then fails it at spec.startTimeoutSeconds', async (t) => {
  const h = harness();
  await started(h, { startTimeoutSeconds: 60 });
  jobCreatedAgo(h, POD_CREATE_RECHECK_MS + 1000);
  h.cluster.podCreateFailures.set(
    JOB,
    `Error creating: pods "${JOB}-x" is forbidden: error looking up service account team-a/tracer: serviceaccount "tracer" not found`,
  );
  const action = await reconcile(h);
  t.is(action.type, 'requeue', 'looked at again while the account may still appear');
  let stored = h.cluster.stored();
  t.is(stored?.status?.phase, 'Pending');
  t.is(findCondition(stored?.status?.conditions, 'Running')?.reason, 'ServiceAccountNotFound');
  t.true(h.cluster.events.some((e) => e.type === 'Warning' && e.reason === 'ServiceAccountNotFound'));

  h.time.advance(60_000);
  await reconcile(h);
  stored = h.cluster.stored();
  t.is(stored?.status?.phase, 'Failed');
  t.is(findCondition(stored?.status?.conditions, 'Failed')?.reason, 'StartTimeout');
  t.regex(findCondition(stored?.status?.conditions, 'Failed')?.message ?? '', /ServiceAccountNotFound/);
  t.is(h.cluster.jobs.get(`${NAMESPACE}/${JOB}`)?.spec?.suspend, true, 'a late service account cannot start it');
});

test('a pod its node does not run: the Node comes from the cache, no GET, and NotReady is said with its reason', async (t) => {
  const h = harness();
  await started(h);
  const waiting = tracePod('Pending', { waiting: { reason: 'ContainerCreating' } });
  waiting.metadata = { ...waiting.metadata, creationTimestamp: new Date(h.time.ms) as unknown as Date };
  h.cluster.pods = [waiting];
  jobCreatedAgo(h, 0);
  setJobStatus(h, { active: 1 });
  h.cluster.nodes.set('node-a', {
    metadata: { name: 'node-a', labels: { 'kubernetes.io/hostname': 'node-a' } },
    status: { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'runtime down' }] },
  });
  h.time.advance(POD_START_NODE_CHECK_MS + 1000);
  h.cluster.nodeReads.length = 0;
  await reconcile(h);
  t.deepEqual(h.cluster.nodeReads, [], 'the cached Node is read, not fetched');
  const running = findCondition(h.cluster.stored()?.status?.conditions, 'Running');
  t.is(running?.reason, 'NodeNotReady');
  t.regex(running?.message ?? '', /runtime down/);
});

test('a pod that has not started is read only once it is late: the create-path status holds until then, no write', async (t) => {
  const h = harness();
  await started(h);
  jobCreatedAgo(h, 0);
  setJobStatus(h, { active: 1 });
  const pulling = tracePod('Pending', {
    waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "runner:1"' },
  });
  h.cluster.pods = [pulling];

  const early = await reconcile(h);
  t.deepEqual(h.cluster.podLists, [], 'the cache has no Pending pod, and none is read before it is late');
  t.deepEqual(h.cluster.writes, [], 'the status written with the Job still says what is true');
  t.deepEqual(early, { type: 'requeue', afterMs: POD_START_LATE_MS }, 'looked at again when it becomes late');

  h.time.advance(POD_START_LATE_MS);
  const late = await reconcile(h);
  t.deepEqual(h.cluster.podLists, [UID], 'one list of the trace pods');
  const running = findCondition(h.cluster.stored()?.status?.conditions, 'Running');
  t.is(running?.reason, 'ImagePullBackOff');
  t.true(h.cluster.events.some((e) => e.type === 'Warning' && e.reason === 'ImagePullBackOff'));
  t.is(late.type, 'requeue');
  t.true(
    late.type === 'requeue' && (late.afterMs ?? Infinity) <= POD_START_POLL_MS,
    'read again while it has not started',
  );

  h.cluster.pods = [tracePod('Running', { running: { startedAt: '2024-01-01T00:00:02Z' as unknown as Date } })];
  h.cluster.podLists.length = 0;
  await reconcile(h);
  t.deepEqual(h.cluster.podLists, [], 'a running pod comes from the cache');
  t.is(h.cluster.stored()?.status?.phase, 'Running');
});

test('a Job whose pod exists is not asked about pod creation failures', async (t) => {
  const h = harness();
  await started(h);
  jobCreatedAgo(h, POD_CREATE_RECHECK_MS + 1000);
  setJobStatus(h, { active: 1 });
  h.cluster.podCreateFailures.set(JOB, `Error creating: an old refusal the Job controller got past`);
  await reconcile(h);
  t.is(h.cluster.stored()?.status?.phase, 'Pending');
  t.not(findCondition(h.cluster.stored()?.status?.conditions, 'Running')?.reason, 'PodCreateFailed');
  t.is(h.cluster.podCreateFailureReads, 0);
});
