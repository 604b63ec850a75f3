// What a TraceTrigger's schedule and fire annotation ask for at one moment,
// and what its runs look like: pure functions of the trigger, the TraceJobs
// it owns (as the cache shows them), the Nodes and the time. The controller
// (controller/tracetrigger-fleet.ts) carries out the plan: it fires through
// the one firing path, stops replaced runs, deletes old runs and writes the
// status.
//
// Exactly once, from the cluster's state alone:
// - a run's id comes from what fired (the scheduled time, the annotation
//   value) and its TraceJobs' names from (trigger uid, run id, node), so
//   deciding again after a crash re-creates only the missing TraceJobs;
// - the TraceJobs are created before status records the scheduled time or
//   the handled annotation value, so a crash in between decides the same
//   run again rather than losing it;
// - status.runs is a projection of the TraceJobs (their run label), so it
//   cannot disagree with them; a run whose TraceJobs the cache does not show
//   yet is kept from the last status for a short while.
import type { TraceResult } from '../tracejob/result.ts';
import { TRIGGER_LIMITS, FIRE_ANNOTATION_KEY } from './constants.ts';
import { selectFleet, selectorProblems, type FleetNode, type FleetSelection } from './fleet.ts';
import { mergeRunResults, type NodeTracePhase } from './merge.ts';
import { annotationRunId, scheduledTimeOfRun, scheduleRunId } from './run.ts';
import type { RunResult } from './run-result.ts';
import { concurrencyVerdict, decideSchedule, parseSchedule, type ConcurrencyPolicy } from './schedule.ts';
import type { FiringSource, Run, TraceTrigger, TriggerCounts } from './schema.ts';

/** One TraceJob of a run, as the controller reads it from its cache. */
export interface RunTraceJobFacts {
  name: string;
  runId: string;
  by: FiringSource;
  node: string;
  /** metadata.creationTimestamp in ms. */
  createdAt: number;
  phase?: NodeTracePhase;
  result?: TraceResult;
  message?: string;
}

export type RunPhase = 'Running' | 'Succeeded' | 'PartiallyFailed' | 'Failed';

export interface RunView {
  id: string;
  by: FiringSource;
  /** The scheduled time of a schedule run, else when its first TraceJob was created (ms). */
  time: number;
  traceJobs: RunTraceJobFacts[];
  phase: RunPhase;
  result: RunResult;
  /** True when this entry comes from the last status only (the cache has none of its TraceJobs). */
  fromStatus?: boolean;
}

/** How long a run recorded in status but absent from the cache is believed (the cache lags behind creates). */
export const CACHE_LAG_MS = 2 * 60_000;

export function runPhaseOf(result: RunResult): RunPhase {
  if (!result.complete) return 'Running';
  if (result.nodes.failed === 0) return 'Succeeded';
  return result.nodes.contributed === 0 ? 'Failed' : 'PartiallyFailed';
}

export const isFinishedRun = (run: RunView): boolean => run.phase !== 'Running';

/** The runs of a trigger, newest first, from its TraceJobs plus recent runs of the last status not cached yet. */
export function groupRuns(traceJobs: readonly RunTraceJobFacts[], previous: readonly Run[], now: number): RunView[] {
  const byRun = new Map<string, RunTraceJobFacts[]>();
  for (const tj of traceJobs) {
    const list = byRun.get(tj.runId);
    if (list === undefined) byRun.set(tj.runId, [tj]);
    else list.push(tj);
  }
  const runs: RunView[] = [];
  for (const [id, list] of byRun) {
    const result = mergeRunResults(
      list.map((tj) => ({
        node: tj.node,
        traceJob: tj.name,
        ...(tj.phase === undefined ? {} : { phase: tj.phase }),
        ...(tj.result === undefined ? {} : { result: tj.result }),
        ...(tj.message === undefined ? {} : { message: tj.message }),
      })),
    );
    const first = list.reduce((a, b) => (b.createdAt < a.createdAt ? b : a));
    runs.push({
      id,
      by: first.by,
      time: scheduledTimeOfRun(id)?.getTime() ?? first.createdAt,
      traceJobs: [...list].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
      phase: runPhaseOf(result),
      result,
    });
  }
  for (const run of previous) {
    if (byRun.has(run.id) || run.phase !== 'Running') continue;
    const time = Date.parse(run.time);
    if (Number.isNaN(time) || now - time > CACHE_LAG_MS) continue;
    runs.push({
      id: run.id,
      by: run.by,
      time,
      traceJobs: [],
      phase: 'Running',
      result: run.result ?? mergeRunResults([]),
      fromStatus: true,
    });
  }
  return runs.sort((a, b) => b.time - a.time || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** Finished runs beyond the history limits, oldest first deleted: successful and failed runs counted apart. */
export function runsToDelete(
  runs: readonly RunView[],
  spec: Pick<TraceTrigger['spec'], 'successfulRunsHistoryLimit' | 'failedRunsHistoryLimit'>,
): RunView[] {
  const keepSucceeded = spec.successfulRunsHistoryLimit ?? TRIGGER_LIMITS.defaultSuccessfulHistory;
  const keepFailed = spec.failedRunsHistoryLimit ?? TRIGGER_LIMITS.defaultFailedHistory;
  const finished = runs.filter((r) => isFinishedRun(r) && r.fromStatus !== true);
  const succeeded = finished.filter((r) => r.phase === 'Succeeded');
  const failed = finished.filter((r) => r.phase !== 'Succeeded');
  return [...succeeded.slice(keepSucceeded), ...failed.slice(keepFailed)].sort((a, b) => a.time - b.time);
}

/** status.runs: the newest runs, bounded, each with its per-node phases and merged result. */
export function runsStatus(runs: readonly RunView[]): Run[] {
  return runs.slice(0, TRIGGER_LIMITS.runs).map((run) => ({
    id: run.id,
    time: rfc3339(run.time),
    by: run.by,
    phase: run.phase,
    traceJobs: run.traceJobs.slice(0, TRIGGER_LIMITS.runTraceJobs).map((tj) => ({
      name: tj.name,
      node: tj.node,
      ...(tj.phase === undefined ? {} : { phase: tj.phase }),
    })),
    result: run.result,
  }));
}

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export type CountDelta = Partial<Record<keyof TriggerCounts, number>>;

export interface PlannedFiring {
  source: 'schedule' | 'annotation';
  runId: string;
  nodes: string[];
  /** Runs to stop first (concurrencyPolicy Replace). */
  replace: string[];
}

export interface PlanEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** The TargetsSelected condition after this plan, when the plan selected (or failed to select) nodes. */
export interface SelectionCondition {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface FleetPlan {
  fire?: PlannedFiring;
  /** Status fields to record after the firing (or instead of one), guarded by what the plan read. */
  record: { lastScheduleTime?: string; lastHandledFire?: string; counts: CountDelta };
  /** What the plan read, so the status write can tell whether another write got there first. */
  read: { lastScheduleTime?: string; lastHandledFire?: string };
  selection?: SelectionCondition;
  events: PlanEvent[];
  /** When to look again for the schedule; undefined: only on a change. */
  requeueAt?: Date;
  /** A spec problem the schedule has (shown as a condition by the caller). */
  problem?: { field: string; message: string };
}

export interface PlanInput {
  trigger: TraceTrigger;
  now: Date;
  runs: readonly RunView[];
  nodes: readonly FleetNode[];
  operatorMaxNodes?: number;
}

const activeRunIds = (runs: readonly RunView[], except: string): string[] =>
  runs.filter((r) => !isFinishedRun(r) && r.id !== except).map((r) => r.id);

function select(input: PlanInput): FleetSelection {
  const spec = input.trigger.spec;
  return selectFleet(input.nodes, spec.nodeSelector ?? {}, {
    maxNodes: spec.maxNodes ?? TRIGGER_LIMITS.defaultMaxNodes,
    ...(input.operatorMaxNodes === undefined ? {} : { operatorMaxNodes: input.operatorMaxNodes }),
  });
}

function refused(selection: Extract<FleetSelection, { ok: false }>, what: string): PlanEvent {
  return { type: 'Warning', reason: selection.reason, message: `${what} created no TraceJob: ${selection.message}` };
}

/** The plan of one reconcile: at most one firing (the schedule's first, then the annotation's). */
export function planFleet(input: PlanInput): FleetPlan {
  const { trigger, now } = input;
  const status = trigger.status ?? {};
  const plan: FleetPlan = { record: { counts: {} }, read: {}, events: [] };
  if (status.lastScheduleTime !== undefined) plan.read.lastScheduleTime = status.lastScheduleTime;
  if (status.lastHandledFire !== undefined) plan.read.lastHandledFire = status.lastHandledFire;
  const policy: ConcurrencyPolicy = trigger.spec.concurrencyPolicy ?? 'Forbid';

  if (trigger.spec.schedule !== undefined) {
    planSchedule(input, plan, policy);
    if (plan.fire !== undefined) {
      // The annotation is looked at in the next reconcile, with this run active.
      plan.requeueAt = new Date(now.getTime() + 1000);
      return plan;
    }
  }
  planAnnotation(input, plan, policy);
  return plan;
}

function planSchedule(input: PlanInput, plan: FleetPlan, policy: ConcurrencyPolicy): void {
  const { trigger, now } = input;
  const spec = trigger.spec;
  const parsed = parseSchedule(spec.schedule ?? '', spec.timeZone);
  if (!parsed.ok) {
    plan.problem = { field: parsed.field, message: parsed.message };
    return;
  }
  const last = trigger.status?.lastScheduleTime;
  const createdAt = Date.parse(trigger.metadata.creationTimestamp ?? '');
  const due = parsed.schedule.latest(now);
  const dueRun = due === undefined ? '' : scheduleRunId(due);
  const decision = decideSchedule({
    schedule: parsed.schedule,
    now,
    ...(last === undefined ? {} : { lastScheduleTime: new Date(last) }),
    createdAt: new Date(Number.isNaN(createdAt) ? now.getTime() : createdAt),
    ...(spec.startingDeadlineSeconds === undefined ? {} : { startingDeadlineSeconds: spec.startingDeadlineSeconds }),
    suspend: spec.suspend === true,
    concurrencyPolicy: policy,
    // A run already started for the due time (a crash before status recorded it) is continued, not waited for.
    activeRuns: activeRunIds(input.runs, dueRun),
  });
  if ('requeueAt' in decision && decision.requeueAt !== undefined) plan.requeueAt = decision.requeueAt;
  const when = (d: Date): string =>
    `${rfc3339(d.getTime())} (${parsed.schedule.expression} in ${parsed.schedule.timeZone})`;
  switch (decision.action) {
    case 'idle':
    case 'suspended':
      return;
    case 'forbidden':
      plan.events.push({
        type: 'Normal',
        reason: 'RunForbidden',
        message: `schedule time ${when(decision.scheduledTime)} waits: run ${decision.active.join(', ')} is still active and concurrencyPolicy is Forbid.`,
      });
      return;
    case 'tooLate':
      plan.record.lastScheduleTime = rfc3339(decision.scheduledTime.getTime());
      plan.record.counts.startingDeadline = 1;
      if (decision.missed > 0) plan.record.counts.missedSchedules = decision.missed;
      plan.events.push({
        type: 'Warning',
        reason: 'MissedSchedule',
        message: `schedule time ${when(decision.scheduledTime)} was not started: it is more than startingDeadlineSeconds (${spec.startingDeadlineSeconds ?? 0}) late${decision.missed > 0 ? `; ${decision.missed} earlier time(s) were missed too` : ''}.`,
      });
      return;
    case 'start': {
      const runId = scheduleRunId(decision.scheduledTime);
      plan.record.lastScheduleTime = rfc3339(decision.scheduledTime.getTime());
      if (decision.missed > 0) {
        plan.record.counts.missedSchedules = decision.missed;
        plan.events.push({
          type: 'Warning',
          reason: 'MissedSchedule',
          message: `${decision.missed} schedule time(s) before ${when(decision.scheduledTime)} passed while the operator was not running them; only the latest is started.`,
        });
      }
      fanOut(input, plan, 'schedule', runId, [...decision.replace], `schedule time ${when(decision.scheduledTime)}`);
      return;
    }
  }
}

function planAnnotation(input: PlanInput, plan: FleetPlan, policy: ConcurrencyPolicy): void {
  const { trigger } = input;
  const value = trigger.metadata.annotations?.[FIRE_ANNOTATION_KEY];
  if (value === undefined || value === trigger.status?.lastHandledFire) return;
  const what = `annotation ${FIRE_ANNOTATION_KEY}=${JSON.stringify(value.slice(0, 100))}`;
  if (trigger.spec.suspend === true) {
    plan.record.lastHandledFire = value;
    plan.record.counts.suspended = 1;
    plan.events.push({ type: 'Normal', reason: 'Suppressed', message: `${what} did not fire: spec.suspend is true.` });
    return;
  }
  const runId = annotationRunId(value);
  const verdict = concurrencyVerdict(policy, activeRunIds(input.runs, runId));
  if (!verdict.start) {
    plan.events.push({
      type: 'Normal',
      reason: 'RunForbidden',
      message: `${what} waits: run ${activeRunIds(input.runs, runId).join(', ')} is still active and concurrencyPolicy is Forbid.`,
    });
    return;
  }
  plan.record.lastHandledFire = value;
  fanOut(input, plan, 'annotation', runId, [...verdict.replace], what);
}

function fanOut(
  input: PlanInput,
  plan: FleetPlan,
  source: 'schedule' | 'annotation',
  runId: string,
  replace: string[],
  what: string,
): void {
  if (input.trigger.spec.nodeSelector === undefined) {
    plan.record.counts.noNodes = 1;
    plan.selection = {
      status: 'False',
      reason: 'NoNodeSelector',
      message: `${what} has no nodes to trace: set spec.nodeSelector (an empty selector {} selects every node).`,
    };
    plan.events.push({ type: 'Warning', reason: 'NoNodeSelector', message: plan.selection.message });
    return;
  }
  const selection = select(input);
  if (!selection.ok) {
    plan.record.counts[selection.reason === 'TooManyNodes' ? 'tooManyNodes' : 'noNodes'] = 1;
    plan.selection = { status: 'False', reason: selection.reason, message: selection.message };
    plan.events.push(refused(selection, what));
    return;
  }
  // Counted with the status write that records the time or value, which happens once per run.
  plan.record.counts.runs = 1;
  if (replace.length > 0) plan.record.counts.replaced = replace.length;
  plan.fire = { source, runId, nodes: selection.nodes, replace };
  plan.selection = {
    status: 'True',
    reason: 'Selected',
    message: `run ${runId} traces ${selection.nodes.length} node(s)${selection.notReady > 0 ? `; ${selection.notReady} matching node(s) not Ready were left out` : ''}.`,
  };
  plan.events.push({
    type: 'Normal',
    reason: 'RunStarted',
    message: `${what} started run ${runId} on ${selection.nodes.length} node(s)${replace.length > 0 ? `, replacing ${replace.join(', ')}` : ''}.`,
  });
}

/** What the schema cannot judge in the schedule and selector fields: the cron expression, the zone, the operators. */
export function fleetSpecProblems(spec: TraceTrigger['spec']): { field: string; reason: string; message: string }[] {
  const problems: { field: string; reason: string; message: string }[] = [];
  if (spec.schedule !== undefined) {
    const parsed = parseSchedule(spec.schedule, spec.timeZone);
    if (!parsed.ok)
      problems.push({ field: parsed.field, reason: 'InvalidSchedule', message: `${parsed.field}: ${parsed.message}` });
  }
  if (spec.nodeSelector !== undefined) {
    for (const p of selectorProblems(spec.nodeSelector))
      problems.push({ field: p.field, reason: 'InvalidNodeSelector', message: `${p.field}: ${p.message}` });
  }
  return problems;
}
