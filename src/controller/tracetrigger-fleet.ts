// The schedule and fire-annotation sources of a TraceTrigger, and its runs:
// called by the TraceTrigger reconciler once per reconcile. It reads the
// trigger's run TraceJobs and the Nodes from the caches, asks the pure plan
// (tracetrigger/fleet-plan.ts) what is due, and carries it out in the order
// that makes a crash harmless: stop replaced runs, fire through the one
// firing path (create-if-absent, deterministic names), delete runs beyond the
// history limits, then record in status what was handled (the schedule time,
// the annotation value, counters) together with the runs and their merged
// results, guarded by what the plan read so nothing is counted twice.
import { API_GROUP_VERSION, isFinishedPhase, setCondition, type TraceResult } from '../tracejob/index.ts';
import {
  FIRED_BY_LABEL_KEY,
  nodeTargetKey,
  TRIGGER_KIND,
  type Firing,
  type FiringSource,
  type TraceTrigger,
  type TraceTriggerStatus,
} from '../tracetrigger/index.ts';
import {
  groupRuns,
  planFleet,
  runsStatus,
  runsToDelete,
  type FleetPlan,
  type RunTraceJobFacts,
  type RunView,
} from '../tracetrigger/fleet-plan.ts';
import type { NodeTracePhase } from '../tracetrigger/merge.ts';
import { mergeRunResults } from '../tracetrigger/merge.ts';
import { RUN_LABEL_KEY } from '../tracetrigger/run.ts';
import type { Logger } from '../runtime/logger.ts';
import type { FiringPath, FiringSummary, TriggerEvents } from './tracetrigger-firing.ts';
import type { CachedTriggeredJob, TriggerCaches } from './tracetrigger-caches.ts';
import type { TriggerApi } from './tracetrigger-kube-api.ts';
import { addCounts, type TriggerStatusWriter } from './tracetrigger-status.ts';

/** Condition type saying whether the last schedule or annotation firing found its nodes. */
export const TARGETS_SELECTED_CONDITION = 'TargetsSelected';

export interface FleetContext {
  caches: Pick<TriggerCaches, 'traceJobsOf' | 'nodes'>;
  api: Pick<TriggerApi, 'stopTraceJob' | 'deleteTraceJob'>;
  firing: Pick<FiringPath, 'fire'>;
  status: TriggerStatusWriter;
  events: TriggerEvents;
  logger: Logger;
  now: () => Date;
  /** --max-fleet-nodes; undefined: only spec.maxNodes caps a run. */
  operatorMaxNodes?: number | undefined;
}

const PHASES: ReadonlySet<string> = new Set(['Pending', 'Running', 'Succeeded', 'Failed']);

/** A run TraceJob of the cache as the plan reads it; undefined for TraceJobs that belong to no run. */
export function runFactsOf(tj: CachedTriggeredJob): (RunTraceJobFacts & { uid?: string }) | undefined {
  const runId = tj.metadata.labels?.[RUN_LABEL_KEY];
  if (runId === undefined || tj.metadata.deletionTimestamp !== undefined) return undefined;
  const by = tj.metadata.labels?.[FIRED_BY_LABEL_KEY];
  const phase = tj.status?.phase;
  const facts: RunTraceJobFacts & { uid?: string } = {
    name: tj.metadata.name,
    runId,
    by: by === 'alert' || by === 'annotation' ? by : 'schedule',
    node: tj.spec.hostname ?? '',
    createdAt: Date.parse(tj.metadata.creationTimestamp ?? '') || 0,
  };
  if (phase !== undefined && PHASES.has(phase)) facts.phase = phase as NodeTracePhase;
  if (tj.status?.result !== undefined) facts.result = tj.status.result as TraceResult;
  if (tj.status?.failure !== undefined) facts.message = tj.status.failure;
  if (tj.metadata.uid !== undefined) facts.uid = tj.metadata.uid;
  return facts;
}

/** Does the schedule and annotation work of one reconcile; resolves with when to look again (ms), if ever. */
export async function reconcileFleet(trigger: TraceTrigger, ctx: FleetContext): Promise<number | undefined> {
  const spec = trigger.spec;
  const hasFleetWork =
    spec.schedule !== undefined ||
    trigger.metadata.annotations?.['observe.alexeldeib.xyz/fire'] !== undefined ||
    (trigger.status?.runs?.length ?? 0) > 0;
  const facts = ctx.caches
    .traceJobsOf(trigger.metadata.uid ?? '')
    .map(runFactsOf)
    .filter((f) => f !== undefined);
  if (!hasFleetWork && facts.length === 0) return undefined;

  const namespace = trigger.metadata.namespace ?? 'default';
  const name = trigger.metadata.name;
  const now = ctx.now();
  const runs = groupRuns(facts, trigger.status?.runs ?? [], now.getTime());
  const nodes = ctx.caches.nodes().map((n) => ({ name: n.facts.name, labels: n.labels, ready: n.ready }));
  const plan = planFleet({
    trigger,
    now,
    runs,
    nodes,
    ...(ctx.operatorMaxNodes === undefined ? {} : { operatorMaxNodes: ctx.operatorMaxNodes }),
  });

  let summary: FiringSummary | undefined;
  if (plan.fire !== undefined) {
    await stopRuns(trigger, runs, plan.fire.replace, ctx);
    const firing: Firing = {
      source: plan.fire.source,
      runId: plan.fire.runId,
      cooldown: false,
      maxActive: false,
      rateLimit: false,
      items: plan.fire.nodes.map((node) => ({
        key: plan.fire?.runId ?? '',
        resolution: {
          ok: true,
          label: 'nodeSelector',
          target: { kind: 'node', nodeName: node, key: nodeTargetKey(node) },
        },
      })),
    };
    // Throws when the API server fails part-way: nothing is recorded, and the retry decides the same run.
    summary = await ctx.firing.fire(trigger, firing);
  }

  const doomed = runsToDelete(runs, spec);
  for (const run of doomed) {
    for (const tj of run.traceJobs as (RunTraceJobFacts & { uid?: string })[]) {
      if (tj.uid === undefined) continue;
      await ctx.api.deleteTraceJob(namespace, tj.name, tj.uid);
    }
    ctx.logger.info('deleted a finished run beyond the history limit', {
      tracetrigger: `${namespace}/${name}`,
      run: run.id,
      traceJobs: run.traceJobs.length,
    });
  }
  const gone = new Set(doomed.map((r) => r.id));
  const kept = withFiredRun(
    runs.filter((r) => !gone.has(r.id)),
    plan,
    summary,
    now.getTime(),
  );

  await ctx.status.update(namespace, name, (status) => applyPlan(status, plan, kept, now));
  const involved = { apiVersion: API_GROUP_VERSION, kind: TRIGGER_KIND, metadata: trigger.metadata };
  for (const e of plan.events) ctx.events.eventAbout(involved, e.type, e.reason, e.message);
  if (plan.problem !== undefined) ctx.logger.debug('trigger schedule problem', { problem: plan.problem.message });
  return plan.requeueAt === undefined ? undefined : Math.max(0, plan.requeueAt.getTime() - now.getTime());
}

/** The runs with the one just fired, which the cache may not show yet. */
function withFiredRun(runs: RunView[], plan: FleetPlan, summary: FiringSummary | undefined, now: number): RunView[] {
  const fired = plan.fire;
  if (fired === undefined || summary === undefined || runs.some((r) => r.id === fired.runId)) return runs;
  const traceJobs: RunTraceJobFacts[] = [...summary.created, ...summary.deduplicated].map((c) => ({
    name: c.name,
    runId: fired.runId,
    by: fired.source as FiringSource,
    node: c.target.replace(/^node\//, ''),
    createdAt: now,
  }));
  const result = mergeRunResults(traceJobs.map((tj) => ({ node: tj.node, traceJob: tj.name })));
  return [{ id: fired.runId, by: fired.source, time: now, traceJobs, phase: 'Running' as const, result }, ...runs];
}

/** Sets spec.stop on the unfinished TraceJobs of the replaced runs (their maps are kept). */
async function stopRuns(trigger: TraceTrigger, runs: readonly RunView[], ids: readonly string[], ctx: FleetContext) {
  const namespace = trigger.metadata.namespace ?? 'default';
  for (const id of ids) {
    const run = runs.find((r) => r.id === id);
    for (const tj of run?.traceJobs ?? []) {
      if (isFinishedPhase(tj.phase)) continue;
      await ctx.api.stopTraceJob(namespace, tj.name);
    }
  }
}

/** The status change of one reconcile: what was handled (once), the runs, the selection condition. */
export function applyPlan(
  status: TraceTriggerStatus,
  plan: FleetPlan,
  runs: readonly RunView[],
  now: Date,
): TraceTriggerStatus {
  const next: TraceTriggerStatus = { ...status };
  const { record, read } = plan;
  // Only the write that moves a field from what the plan read counts: a second writer finds it moved.
  let handled = false;
  if (record.lastScheduleTime !== undefined && next.lastScheduleTime === read.lastScheduleTime) {
    next.lastScheduleTime = record.lastScheduleTime;
    handled = true;
  }
  if (record.lastHandledFire !== undefined && next.lastHandledFire === read.lastHandledFire) {
    next.lastHandledFire = record.lastHandledFire;
    handled = true;
  }
  if (handled) addCounts(next, record.counts);
  const projected = runsStatus(runs);
  if (projected.length > 0 || next.runs !== undefined) next.runs = projected;
  if (plan.selection !== undefined && handled) {
    next.conditions = setCondition(next.conditions, { type: TARGETS_SELECTED_CONDITION, ...plan.selection }, now);
  }
  return next;
}
