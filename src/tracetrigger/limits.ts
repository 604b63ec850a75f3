// The limits a firing goes through, as pure functions of the state the
// cluster holds: the trigger's TraceJobs (name, target hash, creation time,
// finished or not) and the creation times of every triggered TraceJob in
// the last minute (for --max-triggered-per-minute). The caller builds that
// state from its watch cache plus the TraceJobs it created a moment ago (the
// cache may not have them yet), so nothing here depends on memory that a
// restart would lose.
import { TRIGGER_LIMITS, type SuppressionReason } from './constants.ts';
import type { TraceTriggerSpec } from './schema.ts';

export interface KnownTraceJob {
  name: string;
  targetHash: string | undefined;
  /** Milliseconds since the epoch. */
  createdAt: number;
  finished: boolean;
}

export type Decision = 'create' | 'deduplicated' | SuppressionReason;

export interface TriggerLimitState {
  /** This trigger's TraceJobs by name. */
  readonly traceJobs: Map<string, KnownTraceJob>;
  /** Creation times (ms) of all triggered TraceJobs of the operator, any order. */
  readonly recentCreations: number[];
}

export interface LimitInput {
  now: number;
  spec: Pick<TraceTriggerSpec, 'suspend' | 'cooldownSeconds' | 'maxActive'>;
  /** Operator-wide cap per rolling minute; undefined: no cap. */
  maxPerMinute: number | undefined;
  applyCooldown: boolean;
  /** Apply spec.maxActive (default true; fleet runs are held by concurrencyPolicy instead). */
  applyMaxActive?: boolean;
  /** Apply maxPerMinute (default true). */
  applyRateLimit?: boolean;
}

export const RATE_WINDOW_MS = 60_000;

/** The decision for one target of a firing whose TraceJob would be named `name`. */
export function decide(name: string, targetHashValue: string, input: LimitInput, state: TriggerLimitState): Decision {
  if (state.traceJobs.has(name)) return 'deduplicated';
  if (input.spec.suspend === true) return 'suspended';
  const cooldownMs = (input.spec.cooldownSeconds ?? TRIGGER_LIMITS.defaultCooldownSeconds) * 1000;
  if (input.applyCooldown && cooldownMs > 0) {
    for (const tj of state.traceJobs.values())
      if (tj.targetHash === targetHashValue && input.now - tj.createdAt < cooldownMs) return 'cooldown';
  }
  if (input.applyMaxActive !== false) {
    const maxActive = input.spec.maxActive ?? TRIGGER_LIMITS.defaultMaxActive;
    let active = 0;
    for (const tj of state.traceJobs.values()) if (!tj.finished) active++;
    if (active >= maxActive) return 'maxActive';
  }
  if (input.maxPerMinute !== undefined && input.applyRateLimit !== false) {
    const since = input.now - RATE_WINDOW_MS;
    const recent = state.recentCreations.filter((t) => t > since).length;
    if (recent >= input.maxPerMinute) return 'rateLimited';
  }
  return 'create';
}

/** Records a creation in the state, so the next decision of the same firing sees it. */
export function recordCreation(state: TriggerLimitState, created: KnownTraceJob): void {
  state.traceJobs.set(created.name, created);
  state.recentCreations.push(created.createdAt);
}

export interface FinishedTraceJob {
  name: string;
  targetHash: string | undefined;
  createdAt: number;
  phase: 'Succeeded' | 'Failed';
}

/**
 * The finished TraceJobs to delete for the history limits: per phase the
 * oldest beyond the limit, except any still inside its target's cooldown
 * (it is the record the cooldown is judged from) or the newest of its target.
 */
export function historyToDelete(
  finished: readonly FinishedTraceJob[],
  spec: Pick<TraceTriggerSpec, 'successfulRunsHistoryLimit' | 'failedRunsHistoryLimit' | 'cooldownSeconds'>,
  now: number,
  newestPerTarget: ReadonlyMap<string, string>,
): string[] {
  const cooldownMs = (spec.cooldownSeconds ?? TRIGGER_LIMITS.defaultCooldownSeconds) * 1000;
  const out: string[] = [];
  for (const [phase, limit] of [
    ['Succeeded', spec.successfulRunsHistoryLimit ?? TRIGGER_LIMITS.defaultSuccessfulHistory],
    ['Failed', spec.failedRunsHistoryLimit ?? TRIGGER_LIMITS.defaultFailedHistory],
  ] as const) {
    const ofPhase = finished
      .filter((f) => f.phase === phase)
      .sort((a, b) => b.createdAt - a.createdAt || a.name.localeCompare(b.name));
    for (const f of ofPhase.slice(limit)) {
      if (now - f.createdAt < cooldownMs) continue;
      if (f.targetHash !== undefined && newestPerTarget.get(f.targetHash) === f.name) continue;
      out.push(f.name);
    }
  }
  return out;
}
