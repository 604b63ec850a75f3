// Which TraceJobs the work queue serves first. Under a burst the API server
// is the limit (bench/README.md), and every write spent on follow-up work
// (saying Running, announcing it with an Event) is one not spent starting the
// next trace. So a TraceJob that has no Job yet, or whose stop has not reached
// a finished trace, goes before follow-ups of started ones; without a backlog
// the order changes nothing. The Event recorder waits on the same line.
import { isFinishedPhase, isStarted, type TraceJob } from '../tracejob/index.ts';

export const PRIORITY = {
  /** Following a started trace: its phase, conditions, output, TTL. */
  followUp: 0,
  /** Starting a trace, or delivering its stop. */
  startOrStop: 1,
} as const;

export function reconcilePriority(traceJob: TraceJob | undefined): number {
  if (traceJob === undefined) return PRIORITY.followUp;
  if (!isStarted(traceJob)) return PRIORITY.startOrStop;
  if (traceJob.spec.stop === true && !isFinishedPhase(traceJob.status?.phase)) return PRIORITY.startOrStop;
  return PRIORITY.followUp;
}
