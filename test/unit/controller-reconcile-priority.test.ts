// The queue's order under a backlog: traces waiting to start or to stop go
// before follow-ups of started ones.
import test from 'ava';
import { PRIORITY, reconcilePriority } from '../../src/controller/reconcile-priority.ts';
import type { TraceJob } from '../../src/tracejob/index.ts';

function traceJob(spec: Partial<TraceJob['spec']>, status?: TraceJob['status']): TraceJob {
  return {
    metadata: { name: 't', namespace: 'ns', uid: 'u' },
    spec: { hostname: 'n', program: 'BEGIN {}', ...spec },
    ...(status === undefined ? {} : { status }),
  } as TraceJob;
}

test('a TraceJob without a Job goes first; a started one is a follow-up', (t) => {
  t.is(reconcilePriority(traceJob({})), PRIORITY.startOrStop);
  t.is(reconcilePriority(traceJob({}, { id: 'u', jobName: '' })), PRIORITY.startOrStop);
  t.is(reconcilePriority(traceJob({}, { id: 'u', jobName: 'kubectl-trace-u', phase: 'Running' })), PRIORITY.followUp);
  t.is(reconcilePriority(undefined), PRIORITY.followUp, 'gone from the cache: nothing to hurry');
  t.true(PRIORITY.startOrStop > PRIORITY.followUp);
});

test('a stop goes first until the trace has finished', (t) => {
  const running = { id: 'u', jobName: 'kubectl-trace-u', phase: 'Running' } as const;
  t.is(reconcilePriority(traceJob({ stop: true }, running)), PRIORITY.startOrStop);
  t.is(reconcilePriority(traceJob({ stop: true }, { ...running, phase: 'Succeeded' })), PRIORITY.followUp);
});
