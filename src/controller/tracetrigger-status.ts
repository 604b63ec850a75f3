// The only writer of TraceTrigger status. The firing path (counters, last
// firing) and the reconciler (conditions, active TraceJobs) both change it,
// so every change is a function applied to the freshly read object and
// written with its resourceVersion (a PUT of /status); a conflict re-reads
// and re-applies. Changes to one trigger run one at a time in this process.
import { setCondition, type ConditionUpdate } from '../tracejob/index.ts';
import type { TraceTrigger, TraceTriggerStatus, TriggerCounts } from '../tracetrigger/index.ts';
import { isConflict } from '../runtime/api-error.ts';
import type { Logger } from '../runtime/logger.ts';
import type { TriggerApi } from './tracetrigger-kube-api.ts';

const MAX_ATTEMPTS = 6;

export type StatusChange = (status: TraceTriggerStatus, trigger: TraceTrigger) => TraceTriggerStatus;

export class TriggerStatusWriter {
  readonly #api: TriggerApi;
  readonly #log: Logger;
  readonly #chains = new Map<string, Promise<unknown>>();

  constructor(options: { api: TriggerApi; logger: Logger }) {
    this.#api = options.api;
    this.#log = options.logger;
  }

  /** Applies `change` to the trigger's current status; resolves with the stored trigger (undefined if it is gone). */
  update(namespace: string, name: string, change: StatusChange): Promise<TraceTrigger | undefined> {
    const key = `${namespace}/${name}`;
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#apply(namespace, name, change));
    this.#chains.set(key, next);
    void next
      .finally(() => {
        if (this.#chains.get(key) === next) this.#chains.delete(key);
      })
      .catch(() => undefined);
    return next;
  }

  async #apply(namespace: string, name: string, change: StatusChange): Promise<TraceTrigger | undefined> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.#api.getTrigger(namespace, name);
      if (current === undefined) return undefined;
      const before = current.status ?? {};
      const after = change(structuredClone(before), current);
      if (JSON.stringify(after) === JSON.stringify(before)) return current;
      try {
        return await this.#api.replaceTriggerStatus({ ...current, status: after });
      } catch (error) {
        if (!isConflict(error) || attempt >= MAX_ATTEMPTS) throw error;
        this.#log.debug('trigger status conflict: re-reading', { trigger: `${namespace}/${name}`, attempt });
      }
    }
  }
}

/** Adds `delta` to status.counts. */
export function addCounts(status: TraceTriggerStatus, delta: Partial<Record<keyof TriggerCounts, number>>): void {
  const counts: TriggerCounts = { ...(status.counts ?? {}) };
  for (const [key, value] of Object.entries(delta) as [keyof TriggerCounts, number][]) {
    if (value === 0) continue;
    counts[key] = (counts[key] ?? 0) + value;
  }
  status.counts = counts;
}

export function withCondition(
  status: TraceTriggerStatus,
  update: ConditionUpdate,
  now: Date,
  generation?: number,
): TraceTriggerStatus {
  return { ...status, conditions: setCondition(status.conditions, update, now, generation) };
}
