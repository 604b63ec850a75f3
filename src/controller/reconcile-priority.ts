// Which TraceJobs the work queue serves first. Under a burst the API server
// is the limit (bench/README.md), and every write spent on follow-up work
// (saying Running, announcing it with an Event) is one not spent starting the
// next trace. So a TraceJob that has no Job yet, or whose stop has not reached
// a finished trace, goes before follow-ups of started ones; without a backlog
// the order changes nothing. The Event recorder waits on the same line.
// "No Job yet" asks the Job cache too: the Job's events can arrive before the
// TraceJob's own status write comes back through its watch, and a follow-up
// served as a start then takes a start's turn for its Running write.
import { isFinishedPhase, isStarted, traceIdOf, traceObjectName, type TraceJob } from '../tracejob/index.ts';
import type { TraceJobCaches } from './reconcile-deps.ts';

export const PRIORITY = {
  /** Following a started trace: its phase, conditions, output, TTL. */
  followUp: 0,
  /** Starting a trace, or delivering its stop. */
  startOrStop: 1,
} as const;

/** `hasJob`: the trace's Job is in the cache (it has started, whatever the cached status says yet). */
export function reconcilePriority(traceJob: TraceJob | undefined, hasJob = false): number {
  if (traceJob === undefined) return PRIORITY.followUp;
  if (!isStarted(traceJob) && !hasJob) return PRIORITY.startOrStop;
  if (traceJob.spec.stop === true && !isFinishedPhase(traceJob.status?.phase)) return PRIORITY.startOrStop;
  return PRIORITY.followUp;
}

/** The priority of the TraceJob `namespace/name` as the caches see it now. */
export function cachedPriority(
  caches: Pick<TraceJobCaches, 'traceJob' | 'job'>,
  namespace: string,
  name: string,
): number {
  const traceJob = caches.traceJob(namespace, name);
  const id = traceJob === undefined ? undefined : traceIdOf(traceJob);
  const hasJob = id !== undefined && caches.job(namespace, traceObjectName(id)) !== undefined;
  return reconcilePriority(traceJob, hasJob);
}
