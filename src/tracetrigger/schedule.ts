// Schedule maths of a TraceTrigger: when spec.schedule fires next, which
// scheduled time is due now, and what to do about it given suspend,
// startingDeadlineSeconds and concurrencyPolicy. Pure: time comes in as an
// argument, so the tests run on any clock.
//
// Cron parsing is croner 11 (no dependencies, time zones through the
// runtime's Intl, previous runs as well as next ones). cron-parser 5 would
// do too, but brings luxon for time zones and leaves the daylight-saving
// gap to luxon's shifting rules; croner states the rule we want (below).
//
// Semantics (Kubernetes CronJob's where they make sense)
// - spec.schedule: five fields (minute hour day-of-month month day-of-week),
//   or @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly. Six or
//   seven fields (seconds, years) and @reboot are refused. Day-of-month and
//   day-of-week are OR-ed when both are restricted, as in Vixie cron and
//   CronJob.
// - spec.timeZone: an IANA name (default Etc/UTC); the schedule is read on
//   that zone's wall clock.
// - Daylight saving, as ISC cron and croner do it (CronJob's robfig/cron
//   instead skips a fixed time that falls in the spring-forward gap and can
//   run one in the repeated fall-back hour twice; neither helps a trace):
//   a fixed time (single minute and hour) that falls in the gap runs at the
//   first instant after it (02:30 on the spring-forward day runs at 03:00);
//   a fixed time in the repeated hour runs once, at its first occurrence;
//   interval schedules (*/15, hourly) follow the real clock, so they neither
//   skip nor double.
// - Due time: the most recent scheduled time in (lastScheduleTime, now]
//   (creation time when the trigger never ran). Only that one is started
//   after a downtime, never a burst of the ones before it; those are
//   reported as missed.
// - startingDeadlineSeconds: a due time older than that is not started
//   (`tooLate`); the caller records it as handled and counts it.
// - suspend: nothing starts and nothing is recorded, so after resuming the
//   most recent missed time starts if it is still within the deadline (as
//   CronJob, whose docs warn about the same).
// - concurrencyPolicy: Forbid (default) does not start while a run of this
//   trigger is active and records nothing, so the due time starts when the
//   active run ends if it is still within the deadline and no later time
//   has come (CronJob does the same); Allow starts alongside; Replace stops
//   the active runs and starts.
import { Cron } from 'croner';
import { errorMessage } from '../error-message.ts';

export const CONCURRENCY_POLICIES = ['Forbid', 'Allow', 'Replace'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];
export const DEFAULT_TIME_ZONE = 'Etc/UTC';

/** How many missed times are counted at most after a downtime (CronJob warns past 100 as well). */
export const MISSED_COUNT_LIMIT = 100;

const NICKNAMES = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'] as const;

/** A parsed schedule: next and previous times on its zone's wall clock. */
export interface Schedule {
  readonly expression: string;
  readonly timeZone: string;
  /** The first scheduled time strictly after `after`; undefined if it never comes. */
  next(after: Date): Date | undefined;
  /** The latest scheduled time at or before `atOrBefore`; undefined if none. */
  latest(atOrBefore: Date): Date | undefined;
  /** Scheduled times in (after, atOrBefore], at most `limit` of them, oldest first. */
  between(after: Date, atOrBefore: Date, limit: number): Date[];
}

export type ScheduleParse = { ok: true; schedule: Schedule } | { ok: false; field: string; message: string };

/** True when `timeZone` is an IANA zone name the runtime knows. */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** Parses spec.schedule in spec.timeZone; the failure says which field is wrong and how to fix it. */
export function parseSchedule(expression: string, timeZone: string = DEFAULT_TIME_ZONE): ScheduleParse {
  const text = expression.trim();
  if (!isKnownTimeZone(timeZone)) {
    return {
      ok: false,
      field: 'spec.timeZone',
      message: `unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as Etc/UTC, Europe/Berlin or America/New_York.`,
    };
  }
  if (text.startsWith('@') && !(NICKNAMES as readonly string[]).includes(text.toLowerCase())) {
    return {
      ok: false,
      field: 'spec.schedule',
      message: `unsupported schedule ${JSON.stringify(expression)}; use five cron fields or one of ${NICKNAMES.join(', ')}.`,
    };
  }
  if (!text.startsWith('@') && text.split(/\s+/).length !== 5) {
    return {
      ok: false,
      field: 'spec.schedule',
      message: `schedule ${JSON.stringify(expression)} has ${text.split(/\s+/).length} fields; use exactly five (minute hour day-of-month month day-of-week), for example "*/15 * * * *".`,
    };
  }
  let cron: Cron;
  try {
    cron = new Cron(text.toLowerCase().startsWith('@') ? text.toLowerCase() : text, {
      timezone: timeZone,
      mode: '5-part',
      paused: true,
    });
  } catch (error) {
    return {
      ok: false,
      field: 'spec.schedule',
      message: `invalid schedule ${JSON.stringify(expression)}: ${errorMessage(error)}.`,
    };
  }
  // A pattern such as "0 0 30 2 *" parses but never fires.
  if (cron.nextRun(new Date(0)) === null) {
    return {
      ok: false,
      field: 'spec.schedule',
      message: `schedule ${JSON.stringify(expression)} never fires (no such date); check day-of-month against month.`,
    };
  }
  return { ok: true, schedule: cronSchedule(cron, text, timeZone) };
}

function cronSchedule(cron: Cron, expression: string, timeZone: string): Schedule {
  return {
    expression,
    timeZone,
    next: (after) => cron.nextRun(after) ?? undefined,
    // croner's previousRuns is exclusive and works in whole seconds, and a
    // cron time is a whole minute, so one second past `atOrBefore` includes it.
    latest: (atOrBefore) => cron.previousRuns(1, new Date(atOrBefore.getTime() + 1000))[0],
    between: (after, atOrBefore, limit) => {
      const out: Date[] = [];
      let cursor: Date = after;
      while (out.length < limit) {
        const next = cron.nextRun(cursor);
        if (next === null || next.getTime() > atOrBefore.getTime()) break;
        out.push(next);
        cursor = next;
      }
      return out;
    },
  };
}

/** What the trigger's status and state say, as far as the schedule cares. */
export interface ScheduleInput {
  schedule: Schedule;
  now: Date;
  /** status.lastScheduleTime: the latest scheduled time already handled (started or skipped). */
  lastScheduleTime?: Date;
  /** metadata.creationTimestamp: where a trigger that never ran starts counting. */
  createdAt: Date;
  startingDeadlineSeconds?: number;
  suspend?: boolean;
  concurrencyPolicy?: ConcurrencyPolicy;
  /** Ids of this trigger's runs that are still active (any of their TraceJobs unfinished). */
  activeRuns: readonly string[];
}

/**
 * What to do now. `requeueAt` is when to look again (the next scheduled time),
 * absent when nothing will ever be due (suspended triggers wait for a change).
 * - idle: nothing due.
 * - start: start a run for `scheduledTime`; stop the runs in `replace` first.
 *   `missed` counts the earlier times in the window that are not started.
 * - tooLate: the due time is past startingDeadlineSeconds; record it as
 *   handled (lastScheduleTime) and count it, start nothing.
 * - forbidden: Forbid and a run is active; record nothing, look again when
 *   the active run ends (its TraceJobs' changes wake the trigger) or at `requeueAt`.
 * - suspended: record nothing.
 */
export type ScheduleDecision =
  | { action: 'idle'; requeueAt?: Date }
  | { action: 'start'; scheduledTime: Date; missed: number; replace: readonly string[]; requeueAt?: Date }
  | { action: 'tooLate'; scheduledTime: Date; missed: number; requeueAt?: Date }
  | { action: 'forbidden'; scheduledTime: Date; active: readonly string[]; requeueAt?: Date }
  | { action: 'suspended' };

/** Decides what the schedule asks for at `input.now`. */
export function decideSchedule(input: ScheduleInput): ScheduleDecision {
  if (input.suspend === true) return { action: 'suspended' };
  const { schedule, now } = input;
  const requeueAt = schedule.next(now);
  const withRequeue = <T extends object>(d: T): T & { requeueAt?: Date } =>
    requeueAt === undefined ? d : { ...d, requeueAt };

  const since = input.lastScheduleTime ?? input.createdAt;
  const due = schedule.latest(now);
  if (due === undefined || due.getTime() <= since.getTime()) return withRequeue({ action: 'idle' as const });

  const missed = countMissed(schedule, since, due);
  const deadline = input.startingDeadlineSeconds;
  if (deadline !== undefined && now.getTime() - due.getTime() > deadline * 1000) {
    return withRequeue({ action: 'tooLate' as const, scheduledTime: due, missed });
  }
  const verdict = concurrencyVerdict(input.concurrencyPolicy ?? 'Forbid', input.activeRuns);
  if (!verdict.start) {
    return withRequeue({ action: 'forbidden' as const, scheduledTime: due, active: [...input.activeRuns] });
  }
  return withRequeue({ action: 'start' as const, scheduledTime: due, missed, replace: verdict.replace });
}

/** Scheduled times in (since, due) that will never be started: all but the due one. */
function countMissed(schedule: Schedule, since: Date, due: Date): number {
  const inWindow = schedule.between(since, due, MISSED_COUNT_LIMIT + 1);
  return Math.min(MISSED_COUNT_LIMIT, Math.max(0, inWindow.length - 1));
}

/**
 * Whether a new run may start while `activeRuns` are active, and which of
 * them to stop first. Also used for on-demand firings, which follow the same
 * policy.
 */
export function concurrencyVerdict(
  policy: ConcurrencyPolicy,
  activeRuns: readonly string[],
): { start: boolean; replace: readonly string[] } {
  if (activeRuns.length === 0) return { start: true, replace: [] };
  switch (policy) {
    case 'Allow':
      return { start: true, replace: [] };
    case 'Replace':
      return { start: true, replace: [...activeRuns] };
    case 'Forbid':
      return { start: false, replace: [] };
  }
}
