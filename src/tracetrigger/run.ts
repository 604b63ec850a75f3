// Runs: one schedule tick or one new value of the fire annotation is a run
// with an id, fanned out to one TraceJob per selected node. The run id is a
// pure function of what fired (the scheduled time, the annotation value), and
// each TraceJob's name a pure function of (trigger uid, run id, node) through
// names.ts, so a restart in the middle of a fan-out creates exactly the
// missing TraceJobs and never a second set.
import { API_GROUP } from '../tracejob/constants.ts';
import { labelSafe, nodeTargetKey, traceJobName } from './names.ts';

/** Label carrying the run id on every TraceJob of a run, so a run's TraceJobs are one label selector away. */
export const RUN_LABEL_KEY = `${API_GROUP}/run`;

const SCHEDULE_PREFIX = 'schedule-';
const FIRE_PREFIX = 'fire-';

/** The run of a scheduled time: `schedule-<UTC yyyymmddhhmm>` (cron times are whole minutes). */
export function scheduleRunId(scheduledTime: Date): string {
  const iso = scheduledTime.toISOString(); // 2026-01-01T00:15:00.000Z
  return `${SCHEDULE_PREFIX}${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}`;
}

/**
 * The run of an annotation value: `fire-<value>` when that is a label value
 * (a `date +%s` is), else `fire-<readable part>-<hash of the whole value>`. The same value
 * always gives the same run, so it never creates a second set of TraceJobs.
 */
export function annotationRunId(value: string): string {
  return labelSafe(`${FIRE_PREFIX}${value}`);
}

/** The TraceJob of one node of a run. */
export function runTraceJobName(trigger: { name: string; uid: string }, runId: string, nodeName: string): string {
  return traceJobName(trigger, runId, nodeTargetKey(nodeName));
}

/** The scheduled time of a schedule run id, if it is one. */
export function scheduledTimeOfRun(runId: string): Date | undefined {
  const m = /^schedule-(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(runId);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi] = m;
  return new Date(`${y}-${mo}-${d}T${h}:${mi}:00Z`);
}
