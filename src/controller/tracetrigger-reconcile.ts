// The TraceTrigger reconciler: a plain function from a trigger's key and a
// context to an Action. It judges the spec (Ready condition, naming the
// webhook path), lists the trigger's unfinished TraceJobs in status.active,
// and deletes finished TraceJobs beyond the history limits, oldest first,
// keeping those the cooldown is still judged from. Firing happens elsewhere
// (the webhook, and issue 14's schedule and annotation sources), through
// tracetrigger-firing.ts.
import { API_GROUP_VERSION, isFinishedPhase, type OperatorSettings } from '../tracejob/index.ts';
import {
  historyToDelete,
  TARGET_ANNOTATION_KEY,
  TARGET_LABEL_KEY,
  TRIGGER_KIND,
  TRIGGER_LIMITS,
  validateTraceTrigger,
  type ActiveTraceJob,
  type FinishedTraceJob,
  type Matcher,
  type TraceTrigger,
} from '../tracetrigger/index.ts';
import { Action } from '../runtime/controller.ts';
import type { Logger } from '../runtime/logger.ts';
import { webhookPath } from '../webhook/alertmanager-receiver.ts';
import type { TriggerEvents } from './tracetrigger-firing.ts';
import type { CachedTriggeredJob, TriggerCaches } from './tracetrigger-caches.ts';
import type { TriggerApi } from './tracetrigger-kube-api.ts';
import { withCondition, type TriggerStatusWriter } from './tracetrigger-status.ts';
import { reconcileFleet, type FleetContext } from './tracetrigger-fleet.ts';
import { RUN_LABEL_KEY } from '../tracetrigger/run.ts';

export interface TriggerReconcileContext {
  caches: Pick<TriggerCaches, 'trigger' | 'traceJobsOf'>;
  api: Pick<TriggerApi, 'deleteTraceJob'>;
  status: TriggerStatusWriter;
  events: TriggerEvents;
  settings: OperatorSettings;
  allowedNamespaces?: ReadonlySet<string> | undefined;
  now: () => Date;
  logger: Logger;
  /** The schedule and fire-annotation sources and the runs (issue 14); absent: alerts only. */
  fleet?: FleetContext | undefined;
}

export type Readiness = { ok: true; matchers: Matcher[] } | { ok: false; reason: string; message: string };

/** Whether a trigger can fire, and its parsed matchers. */
export function triggerReadiness(
  trigger: TraceTrigger,
  settings: OperatorSettings,
  allowedNamespaces: ReadonlySet<string> | undefined,
): Readiness {
  const namespace = trigger.metadata.namespace ?? 'default';
  if (allowedNamespaces !== undefined && !allowedNamespaces.has(namespace))
    return {
      ok: false,
      reason: 'NamespaceNotAllowed',
      message: `the operator does not run traces in namespace ${namespace} (its --namespaces flag); move the trigger or ask the operator's admin`,
    };
  const validation = validateTraceTrigger(trigger, settings);
  if (!validation.ok)
    return {
      ok: false,
      reason: validation.problems[0]?.reason ?? 'InvalidSpec',
      message: validation.problems.map((p) => p.message).join('; '),
    };
  return { ok: true, matchers: validation.matchers };
}

const finishedPhase = (tj: CachedTriggeredJob): 'Succeeded' | 'Failed' | undefined => {
  const phase = tj.status?.phase;
  return isFinishedPhase(phase) ? phase : undefined;
};

export async function reconcileTraceTrigger(
  namespace: string,
  name: string,
  ctx: TriggerReconcileContext,
): Promise<Action> {
  const trigger = ctx.caches.trigger(namespace, name);
  if (trigger === undefined || trigger.metadata.deletionTimestamp !== undefined) return Action.awaitChange();
  const now = ctx.now();
  const readiness = triggerReadiness(trigger, ctx.settings, ctx.allowedNamespaces);
  const owned = ctx.caches
    .traceJobsOf(trigger.metadata.uid ?? '')
    .filter((tj) => tj.metadata.deletionTimestamp === undefined)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
  const active: ActiveTraceJob[] = owned
    .filter((tj) => finishedPhase(tj) === undefined)
    .slice(-TRIGGER_LIMITS.activeEntries)
    .map((tj) => ({
      name: tj.metadata.name,
      ...(tj.metadata.annotations?.[TARGET_ANNOTATION_KEY] === undefined
        ? {}
        : { target: tj.metadata.annotations[TARGET_ANNOTATION_KEY] }),
      phase: tj.status?.phase ?? 'Pending',
    }));

  // History: finished TraceJobs beyond the limits, oldest first.
  const finished: FinishedTraceJob[] = [];
  const newestPerTarget = new Map<string, string>();
  for (const tj of owned) {
    // TraceJobs of schedule and annotation runs are kept and deleted by run (tracetrigger-fleet.ts).
    if (tj.metadata.labels?.[RUN_LABEL_KEY] !== undefined) continue;
    const hash = tj.metadata.labels?.[TARGET_LABEL_KEY];
    if (hash !== undefined) newestPerTarget.set(hash, tj.metadata.name);
    const phase = finishedPhase(tj);
    if (phase !== undefined)
      finished.push({
        name: tj.metadata.name,
        targetHash: hash,
        createdAt: Date.parse(tj.metadata.creationTimestamp ?? '') || now.getTime(),
        phase,
      });
  }
  const toDelete = new Set(historyToDelete(finished, trigger.spec, now.getTime(), newestPerTarget));
  for (const tj of owned) {
    if (!toDelete.has(tj.metadata.name) || tj.metadata.uid === undefined) continue;
    await ctx.api.deleteTraceJob(namespace, tj.metadata.name, tj.metadata.uid);
    ctx.logger.info('deleted a finished TraceJob beyond the history limit', {
      tracetrigger: `${namespace}/${name}`,
      tracejob: tj.metadata.name,
    });
  }

  const path = trigger.spec.alert === undefined ? undefined : webhookPath(namespace, name);
  await ctx.status.update(namespace, name, (status, current) => {
    const next = withCondition(
      status,
      readiness.ok
        ? {
            type: 'Ready',
            status: 'True',
            reason: 'Valid',
            message:
              path === undefined
                ? 'the trigger is valid; it has no spec.alert, so only its schedule or the fire annotation start traces'
                : `the trigger is valid; Alertmanager fires it with POST ${path} on the manager's webhook`,
          }
        : { type: 'Ready', status: 'False', reason: readiness.reason, message: readiness.message },
      now,
      current.metadata.generation,
    );
    if (current.metadata.generation !== undefined) next.observedGeneration = current.metadata.generation;
    if (path === undefined) delete next.webhookPath;
    else next.webhookPath = path;
    next.active = active;
    return next;
  });
  if (!readiness.ok)
    ctx.events.eventAbout(
      { apiVersion: API_GROUP_VERSION, kind: TRIGGER_KIND, metadata: trigger.metadata },
      'Warning',
      readiness.reason,
      readiness.message,
    );

  const fleetMs = readiness.ok && ctx.fleet !== undefined ? await reconcileFleet(trigger, ctx.fleet) : undefined;

  // Finished TraceJobs kept back by their cooldown: look again when the first of them expires.
  const cooldownMs = (trigger.spec.cooldownSeconds ?? TRIGGER_LIMITS.defaultCooldownSeconds) * 1000;
  const waiting = finished
    .map((f) => f.createdAt + cooldownMs - now.getTime())
    .filter((ms) => ms > 0)
    .map((ms) => Math.min(ms + 1000, 3_600_000))
    // The schedule's next time, a little after it so that it is due when looked at.
    .concat(fleetMs === undefined ? [] : [Math.min(fleetMs + 250, 3_600_000)])
    .sort((a, b) => a - b);
  return waiting[0] === undefined ? Action.awaitChange() : Action.requeue(waiting[0]);
}
