// The one firing path of every TraceTrigger source (alerts here; schedules,
// the fire annotation and fleet runs call it the same way): a Firing's items
// -> deterministic TraceJob names -> the limits (suspend, cooldown per
// target, maxActive, the operator-wide rate cap) -> create-if-absent ->
// counters in status, metrics and Events. Decisions are taken one firing at
// a time in this process, from the watch cache of the triggers' TraceJobs
// plus the ones created a moment ago (which the cache may not show yet), so
// a burst cannot overshoot a limit; after a restart the cache's first list
// holds the same facts, so nothing is forgotten.
import {
  buildTriggeredTraceJob,
  decide,
  recordCreation,
  targetHash,
  traceJobName,
  TARGET_LABEL_KEY,
  type Firing,
  type FiringSource,
  type KnownTraceJob,
  type SuppressionReason,
  type Target,
  type TraceTrigger,
  type TriggerLimitState,
} from '../tracetrigger/index.ts';
import { isForbidden, isInvalid } from '../runtime/api-error.ts';
import type { Logger } from '../runtime/logger.ts';
import type { InvolvedObject } from './events.ts';
import type { EventType } from './reconcile-deps.ts';
import type { CachedTriggeredJob, TriggerCaches } from './tracetrigger-caches.ts';
import type { TriggerApi } from './tracetrigger-kube-api.ts';
import type { TriggerMetrics } from './tracetrigger-metrics.ts';
import { addCounts, withCondition, type TriggerStatusWriter } from './tracetrigger-status.ts';
import { API_GROUP_VERSION, isFinishedPhase } from '../tracejob/index.ts';
import { TRIGGER_KIND } from '../tracetrigger/index.ts';
import { errorMessage } from '../error-message.ts';

export interface FiredTarget {
  name: string;
  target: string;
}

export interface Suppressed {
  reason: SuppressionReason;
  key: string;
  target?: string;
  message?: string;
}

/** What one firing did; the webhook returns it as JSON. */
export interface FiringSummary {
  trigger: string;
  source: FiringSource;
  created: FiredTarget[];
  deduplicated: FiredTarget[];
  suppressed: Suppressed[];
  /** Targets whose TraceJob the API server refused (e.g. admission); not retried. */
  rejected: { target: string; message: string }[];
  stopped: string[];
}

export interface TriggerEvents {
  eventAbout(object: InvolvedObject, type: EventType, reason: string, message: string): void;
}

export interface FiringPathOptions {
  api: TriggerApi;
  caches: Pick<TriggerCaches, 'traceJobsOf' | 'allTriggeredJobs'>;
  status: TriggerStatusWriter;
  events: TriggerEvents;
  metrics: TriggerMetrics;
  logger: Logger;
  now?: () => Date;
  /** --max-triggered-per-minute; undefined for no cap. */
  maxPerMinute?: number | undefined;
}

/** Extra counters a source adds to the status write of its firing. */
export interface FiringExtras {
  notifications?: number;
  alerts?: number;
  /** TraceJobs to stop (alert resolved, stopOnResolved). */
  stop?: string[];
}

const OVERLAY_MS = 10 * 60_000;
/** TraceJob creates of one firing in flight at once. */
const CREATE_CONCURRENCY = 8;

interface Plan {
  summary: FiringSummary;
  creates: { name: string; target: string; traceJob: ReturnType<typeof buildTriggeredTraceJob> }[];
  now: Date;
}

const isFinished = (tj: CachedTriggeredJob): boolean =>
  isFinishedPhase(tj.status?.phase) || tj.metadata.deletionTimestamp !== undefined;

export class FiringPath {
  readonly #o: FiringPathOptions;
  readonly #now: () => Date;
  /** TraceJobs created (or found to exist) by this process recently: name -> facts, with the trigger uid. */
  readonly #recent = new Map<string, KnownTraceJob & { triggerUid: string }>();
  #lock: Promise<unknown> = Promise.resolve();

  constructor(options: FiringPathOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Fires `firing` for `trigger`; rejects (with the summary so far as `cause`) when the API server fails. */
  fire(trigger: TraceTrigger, firing: Firing, extras: FiringExtras = {}): Promise<FiringSummary> {
    // Decisions run one firing at a time (each sees the TraceJobs the previous ones reserved); the creates
    // and the status write that follow run outside the lock, so a burst of notifications pipelines.
    const decided = this.#lock.catch(() => undefined).then(() => this.#decide(trigger, firing));
    this.#lock = decided;
    return decided.then(async (plan) => {
      const { summary, statusWritten, failure } = await this.#execute(trigger, firing, extras, plan);
      await statusWritten;
      if (failure !== undefined)
        throw new Error(`firing ${summary.trigger} stopped: the API server failed: ${String(failure)}`, {
          cause: failure,
        });
      return summary;
    });
  }

  #state(triggerUid: string, now: number): TriggerLimitState {
    for (const [name, entry] of this.#recent) if (now - entry.createdAt > OVERLAY_MS) this.#recent.delete(name);
    const traceJobs = new Map<string, KnownTraceJob>();
    for (const tj of this.#o.caches.traceJobsOf(triggerUid)) {
      traceJobs.set(tj.metadata.name, {
        name: tj.metadata.name,
        targetHash: tj.metadata.labels?.[TARGET_LABEL_KEY],
        createdAt: Date.parse(tj.metadata.creationTimestamp ?? '') || now,
        finished: isFinished(tj),
      });
    }
    const recentCreations: number[] = [];
    const cached = new Set<string>();
    for (const tj of this.#o.caches.allTriggeredJobs()) {
      cached.add(`${tj.metadata.namespace ?? ''}/${tj.metadata.name}`);
      const at = Date.parse(tj.metadata.creationTimestamp ?? '');
      if (!Number.isNaN(at)) recentCreations.push(at);
    }
    for (const [key, entry] of this.#recent) {
      if (entry.triggerUid === triggerUid && !traceJobs.has(entry.name)) traceJobs.set(entry.name, entry);
      if (!cached.has(key)) recentCreations.push(entry.createdAt);
    }
    return { traceJobs, recentCreations };
  }

  #decide(trigger: TraceTrigger, firing: Firing): Plan {
    const namespace = trigger.metadata.namespace ?? 'default';
    const name = trigger.metadata.name;
    const uid = trigger.metadata.uid ?? '';
    const source = firing.source;
    const nowDate = this.#now();
    const now = nowDate.getTime();
    const summary: FiringSummary = {
      trigger: `${namespace}/${name}`,
      source,
      created: [],
      deduplicated: [],
      suppressed: [],
      rejected: [],
      stopped: [],
    };
    const state = this.#state(uid, now);
    const creates: Plan['creates'] = [];
    for (const item of firing.items) {
      const resolution = item.resolution;
      if (!resolution.ok) {
        summary.suppressed.push({ reason: 'unresolved', key: item.key, message: resolution.message });
        this.#o.metrics.suppressed(source, 'unresolved');
        continue;
      }
      const target: Target = resolution.target;
      const tjName = traceJobName({ name, uid }, item.key, target.key);
      const hash = targetHash(target.key);
      const decision = decide(
        tjName,
        hash,
        {
          now,
          spec: trigger.spec,
          maxPerMinute: this.#o.maxPerMinute,
          applyCooldown: firing.cooldown !== false,
          applyMaxActive: firing.maxActive !== false,
          applyRateLimit: firing.rateLimit !== false,
        },
        state,
      );
      if (decision === 'deduplicated') {
        summary.deduplicated.push({ name: tjName, target: target.key });
        this.#o.metrics.deduplicated(source);
        continue;
      }
      if (decision !== 'create') {
        summary.suppressed.push({ reason: decision, key: item.key, target: target.key });
        this.#o.metrics.suppressed(source, decision);
        continue;
      }
      // Reserved now, so the next decision (of this firing or the next) counts it; released if the create fails.
      const known = { name: tjName, targetHash: hash, createdAt: now, finished: false };
      recordCreation(state, known);
      this.#recent.set(`${namespace}/${tjName}`, { ...known, triggerUid: uid });
      creates.push({
        name: tjName,
        target: target.key,
        traceJob: buildTriggeredTraceJob(trigger, source, tjName, { ...item, resolution }, firing.runId),
      });
    }
    return { summary, creates, now: nowDate };
  }

  async #execute(
    trigger: TraceTrigger,
    firing: Firing,
    extras: FiringExtras,
    plan: Plan,
  ): Promise<{ summary: FiringSummary; statusWritten: Promise<void>; failure: unknown }> {
    const { summary, creates, now: nowDate } = plan;
    const namespace = trigger.metadata.namespace ?? 'default';
    const name = trigger.metadata.name;
    const source = firing.source;
    let failure: unknown;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(CREATE_CONCURRENCY, creates.length) }, async () => {
        while (next < creates.length) {
          const create = creates[next++];
          if (create === undefined) break;
          try {
            const outcome = await this.#o.api.createTraceJob(create.traceJob);
            if (outcome === 'exists') {
              summary.deduplicated.push({ name: create.name, target: create.target });
              this.#o.metrics.deduplicated(source);
            } else {
              summary.created.push({ name: create.name, target: create.target });
              this.#o.metrics.created(source);
            }
          } catch (error) {
            this.#recent.delete(`${namespace}/${create.name}`);
            if (isInvalid(error) || isForbidden(error))
              summary.rejected.push({
                target: create.target,
                message: errorMessage(error),
              });
            else failure ??= error;
          }
        }
      }),
    );
    if (failure === undefined) await this.#stop(trigger, extras.stop ?? [], summary);
    this.#record(trigger, summary, item0Alertname(firing));
    const statusWritten = this.#o.status
      .update(namespace, name, (status) => {
        addCounts(status, {
          notifications: extras.notifications ?? 0,
          alerts: extras.alerts ?? 0,
          fired: summary.created.length,
          deduplicated: summary.deduplicated.length,
          stopped: summary.stopped.length,
          ...countReasons(summary.suppressed),
        });
        if (summary.created.length > 0)
          status.lastFired = {
            time: nowDate.toISOString().replace(/\.\d{3}Z$/, 'Z'),
            by: source,
            run: firing.runId ?? firing.items.find((i) => i.resolution.ok)?.key ?? '',
            traceJobs: summary.created.slice(0, 100).map((c) => c.name),
          };
        const unresolved = summary.suppressed.filter((s) => s.reason === 'unresolved');
        if (firing.items.length > 0) {
          return withCondition(
            status,
            unresolved.length > 0
              ? {
                  type: 'Unresolved',
                  status: 'True',
                  reason: 'TargetNotFound',
                  message: unresolved[0]?.message ?? 'an alert named no node or pod',
                }
              : {
                  type: 'Unresolved',
                  status: 'False',
                  reason: 'Resolved',
                  message: 'the last alerts named existing targets',
                },
            nowDate,
          );
        }
        return status;
      })
      .then(
        () => undefined,
        (error: unknown) => {
          // The counters are best effort; the TraceJobs (the state that matters) exist.
          this.#o.logger.warn('could not update trigger status after a firing', {
            trigger: summary.trigger,
            error: errorMessage(error),
          });
        },
      );
    return { summary, statusWritten, failure };
  }

  async #stop(trigger: TraceTrigger, names: readonly string[], summary: FiringSummary): Promise<void> {
    if (names.length === 0) return;
    const namespace = trigger.metadata.namespace ?? 'default';
    const owned = new Map(this.#o.caches.traceJobsOf(trigger.metadata.uid ?? '').map((tj) => [tj.metadata.name, tj]));
    for (const name of names) {
      const tj = owned.get(name);
      if (tj === undefined || isFinished(tj) || tj.spec.stop === true) continue;
      if ((await this.#o.api.stopTraceJob(namespace, name)) === 'stopped') {
        summary.stopped.push(name);
        this.#o.metrics.stopped();
      }
    }
  }

  #record(trigger: TraceTrigger, summary: FiringSummary, alertname: string | undefined): void {
    const involved: InvolvedObject = {
      apiVersion: API_GROUP_VERSION,
      kind: TRIGGER_KIND,
      metadata: trigger.metadata,
    };
    const why = alertname === undefined ? summary.source : `alert ${alertname}`;
    for (const c of summary.created)
      this.#o.events.eventAbout(involved, 'Normal', 'Fired', `created TraceJob ${c.name} for ${c.target} (${why})`);
    const byReason = new Map<SuppressionReason, Suppressed[]>();
    for (const s of summary.suppressed) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s]);
    for (const [reason, list] of byReason) {
      if (reason === 'unresolved') {
        this.#o.events.eventAbout(
          involved,
          'Warning',
          'Unresolved',
          `${list.length} firing(s) of ${why} created no TraceJob: ${list[0]?.message ?? ''}`,
        );
        continue;
      }
      const targets = list
        .slice(0, 5)
        .map((s) => s.target ?? s.key)
        .join(', ');
      this.#o.events.eventAbout(
        involved,
        'Normal',
        'Suppressed',
        `${list.length} firing(s) of ${why} suppressed (${reason}${reasonHint(reason)}): ${targets}${list.length > 5 ? ', ...' : ''}`,
      );
    }
    for (const r of summary.rejected)
      this.#o.events.eventAbout(
        involved,
        'Warning',
        'CreateRejected',
        `TraceJob for ${r.target} was refused: ${r.message}`,
      );
    for (const name of summary.stopped)
      this.#o.events.eventAbout(involved, 'Normal', 'Stopped', `stopped TraceJob ${name}: its alert resolved`);
  }
}

function item0Alertname(firing: Firing): string | undefined {
  return firing.items.find((i) => i.alert !== undefined)?.alert?.alertname;
}

function reasonHint(reason: SuppressionReason): string {
  switch (reason) {
    case 'cooldown':
      return ': the target was traced within spec.cooldownSeconds';
    case 'maxActive':
      return ': spec.maxActive TraceJobs are unfinished';
    case 'suspended':
      return ': spec.suspend is true';
    case 'rateLimited':
      return ': the operator-wide --max-triggered-per-minute was reached';
    default:
      return '';
  }
}

function countReasons(list: readonly Suppressed[]): Partial<Record<SuppressionReason, number>> {
  const out: Partial<Record<SuppressionReason, number>> = {};
  for (const s of list) out[s.reason] = (out[s.reason] ?? 0) + 1;
  return out;
}
