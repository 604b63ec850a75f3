// The queue's order under a backlog: traces waiting to start or to stop go
// before follow-ups of started ones.
import test from 'ava';
import type { V1Job } from '@kubernetes/client-node';
import { cachedPriority, PRIORITY, reconcilePriority } from '../../src/controller/reconcile-priority.ts';
import { traceObjectName, type TraceJob } from '../../src/tracejob/index.ts';

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

test('a TraceJob whose Job is cached is a follow-up, even before its own status write comes back', (t) => {
  // The Job's watch can deliver before the TraceJob's: the cached status does not name the Job yet.
  t.is(reconcilePriority(traceJob({}), true), PRIORITY.followUp);
  t.is(reconcilePriority(traceJob({ stop: true }), true), PRIORITY.startOrStop, 'a stop still goes first');
});

test('cachedPriority looks the Job up by the id the trace objects are named from', (t) => {
  const jobs = new Set<string>();
  const fresh = traceJob({});
  const caches = {
    traceJob: () => fresh,
    job: (_namespace: string, name: string) => (jobs.has(name) ? ({} as V1Job) : undefined),
  };
  t.is(cachedPriority(caches, 'ns', 't'), PRIORITY.startOrStop, 'no Job yet');
  jobs.add(traceObjectName('u'));
  t.is(cachedPriority(caches, 'ns', 't'), PRIORITY.followUp, 'the Job named from metadata.uid exists');
  t.is(cachedPriority({ ...caches, traceJob: () => undefined }, 'ns', 't'), PRIORITY.followUp);
});
