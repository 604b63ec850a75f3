import test from 'ava';
import type { V1ContainerState, V1Job, V1Pod } from '@kubernetes/client-node';
import {
  awaitsPodCreation,
  podStartIsLate,
  deriveTraceState,
  isFinishedPhase,
  stoppedBeforeStart,
  ttlExpiry,
  type DerivedState,
} from '../../src/tracejob/phase.ts';
import { describePodCreateFailure } from '../../src/tracejob/pod-create-failure.ts';
import { timeString } from '../../src/tracejob/time.ts';
import type { TraceResult } from '../../src/tracejob/result.ts';

const NAME = 'kubectl-trace-16f11776-5b39-494a-8341-718850061edc';

function job(
  conditions: { type: string; reason?: string; message?: string; at?: string }[] = [],
  status: Partial<{ startTime: string; completionTime: string }> = {},
): V1Job {
  // Times as strings, as a raw watch delivers them.
  return {
    metadata: { name: NAME },
    status: {
      ...(status.startTime === undefined ? {} : { startTime: status.startTime as unknown as Date }),
      ...(status.completionTime === undefined ? {} : { completionTime: status.completionTime as unknown as Date }),
      conditions: conditions.map((c) => ({
        type: c.type,
        status: 'True',
        reason: c.reason,
        message: c.message,
        lastTransitionTime: (c.at ?? '2024-01-01T00:10:00Z') as unknown as Date,
      })),
    },
  };
}

function pod(
  opts: {
    phase?: string;
    nodeName?: string;
    state?: V1ContainerState;
    init?: V1ContainerState;
    scheduled?: { status: string; reason?: string; message?: string };
    reason?: string;
    message?: string;
  } = {},
): V1Pod {
  return {
    metadata: { name: `${NAME}-abcde` },
    spec: { containers: [{ name: NAME }], ...(opts.nodeName === undefined ? {} : { nodeName: opts.nodeName }) },
    status: {
      phase: opts.phase ?? 'Pending',
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
      ...(opts.message === undefined ? {} : { message: opts.message }),
      ...(opts.scheduled === undefined ? {} : { conditions: [{ type: 'PodScheduled', ...opts.scheduled }] }),
      ...(opts.init === undefined
        ? {}
        : {
            initContainerStatuses: [
              {
                name: 'kubectl-trace-init',
                image: 'init:1',
                imageID: '',
                ready: false,
                restartCount: 0,
                state: opts.init,
              },
            ],
          }),
      ...(opts.state === undefined
        ? {}
        : {
            containerStatuses: [
              { name: NAME, image: 'runner:1', imageID: '', ready: true, restartCount: 0, state: opts.state },
            ],
          }),
    },
  };
}

const result = (outcome: TraceResult['outcome'], extra: Partial<TraceResult> = {}): TraceResult => ({
  outcome,
  exitCode: outcome === 'CompileError' ? 1 : 0,
  maps: [],
  truncated: false,
  ...extra,
});

function condition(state: DerivedState, type: string) {
  return state.conditions.find((c) => c.type === type);
}

test('no Job yet: Pending without conditions', (t) => {
  t.deepEqual(deriveTraceState({}), { phase: 'Pending', conditions: [], finished: false });
});

test('Job deleted after it was created: Failed JobDeleted, never re-created', (t) => {
  const s = deriveTraceState({ jobCreated: true });
  t.is(s.phase, 'Failed');
  t.true(s.finished);
  t.like(condition(s, 'JobCreated'), { status: 'False', reason: 'JobDeleted' });
  t.like(condition(s, 'Failed'), { status: 'True', reason: 'JobDeleted' });
  t.regex(condition(s, 'Failed')?.message ?? '', /never started twice.*re-create the TraceJob/);
});

test('Job without a pod: Pending, waiting for the Job controller', (t) => {
  const s = deriveTraceState({ job: job() });
  t.is(s.phase, 'Pending');
  t.like(condition(s, 'Running'), { status: 'False', reason: 'Pending' });
  t.false(s.finished);
});

test('Unschedulable pod: Pending with Scheduled=False and the scheduler message', (t) => {
  const s = deriveTraceState({
    job: job(),
    pod: pod({
      scheduled: {
        status: 'False',
        reason: 'Unschedulable',
        message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity.",
      },
    }),
  });
  t.is(s.phase, 'Pending');
  t.like(condition(s, 'Scheduled'), { status: 'False', reason: 'Unschedulable' });
  t.regex(condition(s, 'Scheduled')?.message ?? '', /didn't match Pod's node affinity.*Check the node exists/);
  t.is(s.node, undefined);
});

for (const reason of ['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError']) {
  test(`container waiting with ${reason}: Pending, Running=False with that reason and what to check`, (t) => {
    const s = deriveTraceState({
      job: job(),
      pod: pod({
        nodeName: 'node-a',
        scheduled: { status: 'True' },
        state: { waiting: { reason, message: 'pull access denied' } },
      }),
    });
    t.is(s.phase, 'Pending');
    t.is(s.node, 'node-a');
    t.like(condition(s, 'Scheduled'), { status: 'True', reason: 'Scheduled' });
    t.like(condition(s, 'Running'), { status: 'False', reason });
    t.regex(
      condition(s, 'Running')?.message ?? '',
      new RegExp(
        `trace container cannot start \\(${reason}\\) with image runner:1: pull access denied\\. Check spec\\.imageNameTag`,
      ),
    );
  });
}

test('init container image problem names the init image field', (t) => {
  const s = deriveTraceState({
    job: job(),
    pod: pod({
      nodeName: 'node-a',
      init: { waiting: { reason: 'ErrImagePull' } },
      state: { waiting: { reason: 'PodInitializing' } },
    }),
  });
  t.like(condition(s, 'Running'), { status: 'False', reason: 'ErrImagePull' });
  t.regex(
    condition(s, 'Running')?.message ?? '',
    /init container \(it fetches kernel headers\) cannot start \(ErrImagePull\) with image init:1\. Check spec\.initImageNameTag/,
  );
});

test('initializing and creating: Pending with Initializing / ContainerCreating', (t) => {
  const init = deriveTraceState({
    job: job(),
    pod: pod({ nodeName: 'node-a', init: { running: {} }, state: { waiting: { reason: 'PodInitializing' } } }),
  });
  t.like(condition(init, 'Running'), { status: 'False', reason: 'Initializing' });
  const creating = deriveTraceState({
    job: job(),
    pod: pod({ nodeName: 'node-a', state: { waiting: { reason: 'ContainerCreating' } } }),
  });
  t.is(creating.phase, 'Pending');
  t.like(condition(creating, 'Running'), { status: 'False', reason: 'ContainerCreating' });
});

test('running container: Running, node and start time (Date or string)', (t) => {
  const s = deriveTraceState({
    job: job(),
    pod: pod({
      phase: 'Running',
      nodeName: 'node-a',
      state: { running: { startedAt: new Date('2024-01-01T00:00:05.250Z') } },
    }),
  });
  t.is(s.phase, 'Running');
  t.is(s.node, 'node-a');
  t.is(s.startTime, '2024-01-01T00:00:05Z');
  t.like(condition(s, 'Running'), { status: 'True', reason: 'Running' });
  t.like(condition(s, 'Scheduled'), { status: 'True' });
  t.false(s.finished);
});

test('Job Complete: Succeeded with the runner outcome as reason and times', (t) => {
  const ended = pod({
    phase: 'Succeeded',
    nodeName: 'node-a',
    state: {
      terminated: {
        exitCode: 0,
        startedAt: '2024-01-01T00:00:05Z' as unknown as Date,
        finishedAt: '2024-01-01T00:01:05Z' as unknown as Date,
      },
    },
  });
  for (const [outcome, reason] of [
    ['DeadlineReached', 'DeadlineReached'],
    ['Stopped', 'Stopped'],
    ['Completed', 'Completed'],
  ] as const) {
    const s = deriveTraceState({
      job: job([{ type: 'Complete' }], { completionTime: '2024-01-01T00:01:06Z' }),
      pod: ended,
      result: result(outcome),
    });
    t.is(s.phase, 'Succeeded');
    t.true(s.finished);
    t.like(condition(s, 'Succeeded'), { status: 'True', reason });
    t.like(condition(s, 'Running'), { status: 'False', reason: 'Finished' });
    t.is(condition(s, 'Failed'), undefined);
    t.is(s.node, 'node-a');
    t.is(s.startTime, '2024-01-01T00:00:05Z');
    t.is(s.completionTime, '2024-01-01T00:01:05Z');
  }
  const noResult = deriveTraceState({
    job: job([{ type: 'Complete' }], { startTime: '2024-01-01T00:00:00Z', completionTime: '2024-01-01T00:01:06Z' }),
  });
  t.like(condition(noResult, 'Succeeded'), { reason: 'Completed' });
  t.is(noResult.startTime, '2024-01-01T00:00:00Z');
  t.is(noResult.completionTime, '2024-01-01T00:01:06Z');
});

test("runner result times win over the pod's", (t) => {
  const s = deriveTraceState({
    job: job([{ type: 'Complete' }]),
    result: result('Completed', { startedAt: '2024-01-01T00:00:07Z', finishedAt: '2024-01-01T00:00:09Z' }),
  });
  t.is(s.startTime, '2024-01-01T00:00:07Z');
  t.is(s.completionTime, '2024-01-01T00:00:09Z');
});

test("CompileError and AttachError from the runner: Failed with that reason and bpftrace's message", (t) => {
  const failedJob = job([
    { type: 'Failed', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
  ]);
  const s = deriveTraceState({
    job: failedJob,
    result: result('CompileError', { message: 'stdin:1:1-4: ERROR: syntax error', exitCode: 1 }),
  });
  t.is(s.phase, 'Failed');
  t.like(condition(s, 'Failed'), { status: 'True', reason: 'CompileError' });
  t.regex(
    condition(s, 'Failed')?.message ?? '',
    /bpftrace rejected the program; fix spec.program: stdin:1:1-4: ERROR: syntax error \(exit code 1\)/,
  );
  const a = deriveTraceState({
    job: failedJob,
    result: result('AttachError', { message: 'ERROR: kprobe not supported', exitCode: 1 }),
  });
  t.like(condition(a, 'Failed'), { reason: 'AttachError' });
  const e = deriveTraceState({ job: failedJob, result: result('Error', { exitCode: 2 }) });
  t.like(condition(e, 'Failed'), { reason: 'TraceError' });
  // Even if the Job says Complete, a failed outcome is a failure.
  const odd = deriveTraceState({ job: job([{ type: 'Complete' }]), result: result('CompileError') });
  t.is(odd.phase, 'Failed');
});

test('OOMKilled container: Failed OOMKilled', (t) => {
  const s = deriveTraceState({
    job: job([{ type: 'Failed', reason: 'BackoffLimitExceeded' }]),
    pod: pod({ phase: 'Failed', nodeName: 'node-a', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }),
  });
  t.is(s.phase, 'Failed');
  t.like(condition(s, 'Failed'), { reason: 'OOMKilled' });
  t.regex(condition(s, 'Failed')?.message ?? '', /ran out of memory.*exited with code 137 \(OOMKilled\)/);
});

test('Job DeadlineExceeded: Failed DeadlineExceeded, suggesting a longer grace period', (t) => {
  const s = deriveTraceState({
    job: job([
      {
        type: 'Failed',
        reason: 'DeadlineExceeded',
        message: 'Job was active longer than specified deadline',
        at: '2024-01-01T01:00:30Z',
      },
    ]),
  });
  t.like(condition(s, 'Failed'), { reason: 'DeadlineExceeded' });
  t.regex(condition(s, 'Failed')?.message ?? '', /deadlineGracePeriod/);
  t.is(s.completionTime, '2024-01-01T01:00:30Z');
});

test('BackoffLimitExceeded: Failed with the exit code and termination message', (t) => {
  const s = deriveTraceState({
    job: job([
      { type: 'Failed', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
    ]),
    pod: pod({
      phase: 'Failed',
      nodeName: 'node-a',
      state: { terminated: { exitCode: 3, reason: 'Error', message: 'runner: cannot read /programs/program.bt\n' } },
    }),
  });
  t.like(condition(s, 'Failed'), { reason: 'BackoffLimitExceeded' });
  t.regex(
    condition(s, 'Failed')?.message ?? '',
    /backoff limit\. The trace container exited with code 3 \(Error\): runner: cannot read \/programs\/program\.bt\./,
  );
});

test('evicted pod: Failed Evicted', (t) => {
  const s = deriveTraceState({
    job: job(),
    pod: pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }),
  });
  t.like(condition(s, 'Failed'), { reason: 'Evicted' });
  t.regex(condition(s, 'Failed')?.message ?? '', /low on resource: memory/);
});

test('pod finished before the Job status caught up: terminal from the pod', (t) => {
  const ok = deriveTraceState({
    job: job(),
    pod: pod({ phase: 'Succeeded', nodeName: 'n', state: { terminated: { exitCode: 0 } } }),
  });
  t.is(ok.phase, 'Succeeded');
  const bad = deriveTraceState({
    job: job(),
    pod: pod({ phase: 'Succeeded', nodeName: 'n' }),
    result: result('CompileError'),
  });
  t.is(bad.phase, 'Failed');
  const failed = deriveTraceState({
    job: job(),
    pod: pod({ phase: 'Failed', nodeName: 'n', state: { terminated: { exitCode: 1 } } }),
  });
  t.is(failed.phase, 'Failed');
  t.like(condition(failed, 'Failed'), { reason: 'PodFailed' });
});

test('timeString normalizes Date and string, drops invalid', (t) => {
  t.is(timeString(new Date('2024-01-01T00:00:00.999Z')), '2024-01-01T00:00:00Z');
  t.is(timeString('2024-01-01T00:00:00Z'), '2024-01-01T00:00:00Z');
  t.is(timeString(new Date('nope')), undefined);
  t.is(timeString(''), undefined);
  t.is(timeString(undefined), undefined);
});

test('ttlExpiry: completionTime + ttl for finished traces only', (t) => {
  const tj = (
    ttl: number | undefined,
    phase: 'Running' | 'Succeeded' | 'Failed',
    completionTime?: string,
  ): Parameters<typeof ttlExpiry>[0] => ({
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name: 'x' },
    spec: { program: 'BEGIN {}', hostname: 'n', ...(ttl === undefined ? {} : { ttlSecondsAfterFinished: ttl }) },
    status: { phase, ...(completionTime === undefined ? {} : { completionTime }) },
  });
  t.deepEqual(ttlExpiry(tj(60, 'Succeeded', '2024-01-01T00:00:00Z')), new Date('2024-01-01T00:01:00Z'));
  t.deepEqual(ttlExpiry(tj(0, 'Failed', '2024-01-01T00:00:00Z')), new Date('2024-01-01T00:00:00Z'));
  t.is(ttlExpiry(tj(undefined, 'Succeeded', '2024-01-01T00:00:00Z')), undefined);
  t.is(ttlExpiry(tj(60, 'Running', '2024-01-01T00:00:00Z')), undefined);
  t.is(ttlExpiry(tj(60, 'Succeeded')), undefined);
});

test('only Succeeded and Failed are finished phases', (t) => {
  t.deepEqual((['Pending', 'Running', 'Succeeded', 'Failed', undefined] as const).map(isFinishedPhase), [
    false,
    false,
    true,
    true,
    false,
  ]);
});

// ---- start failures (no pod, a pod that never runs, the start timeout) ----

const CREATED = '2024-01-01T00:00:00Z';
function createdJob(): V1Job {
  const j = job();
  j.metadata = { ...j.metadata, creationTimestamp: CREATED as unknown as Date };
  return j;
}
const at = (seconds: number): Date => new Date(Date.parse(CREATED) + seconds * 1000);

test('a Job refused by Pod Security fails at once, names the fix and suspends the Job', (t) => {
  const state = deriveTraceState({
    job: createdJob(),
    jobCreated: true,
    podCreateFailure: {
      message:
        'Error creating: pods "kubectl-trace-x-abcde" is forbidden: violates PodSecurity "restricted:latest": privileged (container "trace" must not set securityContext.privileged=true)',
    },
    now: at(5),
  });
  t.is(state.phase, 'Failed');
  t.true(state.finished);
  t.true(state.suspendJob);
  const failed = state.conditions.find((c) => c.type === 'Failed');
  t.is(failed?.reason, 'PodForbidden');
  t.regex(failed?.message ?? '', /pod-security\.kubernetes\.io\/enforce=privileged/);
});

test('a missing service account is said at once and fails at the start timeout', (t) => {
  const failure = {
    message:
      'Error creating: pods "kubectl-trace-x-abcde" is forbidden: error looking up service account ns1/tracer: serviceaccount "tracer" not found',
  };
  const waiting = deriveTraceState({ job: createdJob(), jobCreated: true, podCreateFailure: failure, now: at(5) });
  t.is(waiting.phase, 'Pending');
  const running = waiting.conditions.find((c) => c.type === 'Running');
  t.is(running?.reason, 'ServiceAccountNotFound');
  t.regex(running?.message ?? '', /ns1\/tracer does not exist.*spec\.serviceAccount/);
  t.true((waiting.recheckAfterMs ?? 0) > 0 && (waiting.recheckAfterMs ?? 0) <= 3000);
  const timedOut = deriveTraceState({
    job: createdJob(),
    jobCreated: true,
    podCreateFailure: failure,
    startTimeoutSeconds: 60,
    now: at(61),
  });
  t.is(timedOut.phase, 'Failed');
  t.true(timedOut.suspendJob);
  const failed = timedOut.conditions.find((c) => c.type === 'Failed');
  t.is(failed?.reason, 'StartTimeout');
  t.regex(failed?.message ?? '', /within 60s \(spec\.startTimeoutSeconds\): ServiceAccountNotFound/);
});

test('an unschedulable pod waits until the start timeout, then fails saying it was unschedulable', (t) => {
  const stuck = pod({ scheduled: { status: 'False', reason: 'Unschedulable', message: '0/2 nodes are available' } });
  const before = deriveTraceState({ job: createdJob(), pod: stuck, jobCreated: true, now: at(100) });
  t.is(before.phase, 'Pending');
  t.is(before.recheckAfterMs, 200_000); // the default 300 s, from the Job's creation
  const after = deriveTraceState({ job: createdJob(), pod: stuck, jobCreated: true, now: at(300) });
  t.is(after.phase, 'Failed');
  t.is(after.conditions.find((c) => c.type === 'Scheduled')?.reason, 'Unschedulable');
  t.regex(after.conditions.find((c) => c.type === 'Failed')?.message ?? '', /Unschedulable: .*0\/2 nodes/);
});

test('a running or finished trace is never failed by the start timeout', (t) => {
  const running = pod({ nodeName: 'n1', state: { running: { startedAt: at(400) } } });
  t.is(deriveTraceState({ job: createdJob(), pod: running, jobCreated: true, now: at(1000) }).phase, 'Running');
  const done = deriveTraceState({ job: createdJob(), pod: pod({ nodeName: 'n1', phase: 'Succeeded' }), now: at(1000) });
  t.is(done.phase, 'Succeeded');
  t.is(done.suspendJob, undefined);
});

test('pod creation failures are only looked up for a Job that has had time to create its pod', (t) => {
  t.false(awaitsPodCreation(createdJob(), undefined, at(1)));
  t.true(awaitsPodCreation(createdJob(), undefined, at(3)));
  t.false(awaitsPodCreation(createdJob(), pod(), at(30)));
  t.false(awaitsPodCreation(undefined, undefined, at(30)));
  const withPod = { ...createdJob(), status: { active: 1 } };
  t.false(awaitsPodCreation(withPod, undefined, at(30)), 'the Job controller counts a pod: it was created');
});

test('a pod the Job counts but the watch has not shown running is read once it is late, sooner with a short start timeout', (t) => {
  const withPod = { ...createdJob(), status: { active: 1 } };
  t.false(podStartIsLate(withPod, at(4)));
  t.true(podStartIsLate(withPod, at(5)));
  t.true(podStartIsLate(withPod, at(2), 2), 'a 2 s start timeout reads it at 2 s, to say why it failed');
  t.false(podStartIsLate(createdJob(), at(30)), 'no pod counted: nothing to read');
  const starting = deriveTraceState({ job: withPod, jobCreated: true, now: at(1) });
  t.is(starting.phase, 'Pending');
  t.is(starting.recheckAfterMs, 4_000, 'looked at again when it becomes late');
  const waiting = deriveTraceState({ job: createdJob(), jobCreated: true, now: at(1) });
  t.deepEqual(
    starting.conditions,
    waiting.conditions,
    'the same condition as before the pod was counted: no status write between',
  );
});

test('stopped before it started: Failed with StoppedBeforeStart, saying nothing ran', (t) => {
  const state = stoppedBeforeStart();
  t.is(state.phase, 'Failed');
  t.true(state.finished);
  t.regex(state.conditions.find((c) => c.type === 'Failed')?.message ?? '', /no Job was created/);
});

test('quota and webhook refusals, and anything else, keep the Job controller message', (t) => {
  const quota = describePodCreateFailure(
    'Error creating: pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1',
  );
  t.deepEqual([quota.reason, quota.permanent], ['QuotaExceeded', false]);
  t.regex(quota.message, /exceeded quota: q/);
  const webhook = describePodCreateFailure(
    'Error creating: admission webhook "deny.example.com" denied the request: no',
  );
  t.deepEqual([webhook.reason, webhook.permanent], ['PodForbidden', true]);
  const other = describePodCreateFailure('Error creating: something odd');
  t.deepEqual([other.reason, other.permanent], ['PodCreateFailed', false]);
  t.regex(other.message, /something odd/);
});
