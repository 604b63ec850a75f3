// The only writer of TraceTrigger status. The firing path (counters, last
// firing) and the reconciler (conditions, active TraceJobs) both change it,
// so every change is a function applied to the freshly read object and
// written with its resourceVersion (a PUT of /status); a conflict re-reads
// and re-applies. Changes to one trigger are written one batch at a time in
// this process; changes that queue up behind a write go into the next one.
import { setCondition, type ConditionUpdate } from '../tracejob/index.ts';
import type { TraceTrigger, TraceTriggerStatus, TriggerCounts } from '../tracetrigger/index.ts';
import { isConflict } from '../runtime/api-error.ts';
import type { Logger } from '../runtime/logger.ts';
import type { TriggerApi } from './tracetrigger-kube-api.ts';

const MAX_ATTEMPTS = 6;

export type StatusChange = (status: TraceTriggerStatus, trigger: TraceTrigger) => TraceTriggerStatus;

interface Waiting {
  change: StatusChange;
  resolve: (trigger: TraceTrigger | undefined) => void;
  reject: (error: unknown) => void;
}

export class TriggerStatusWriter {
  readonly #api: TriggerApi;
  readonly #log: Logger;
  /** Per trigger: the changes waiting for the next write, and whether a write is running. */
  readonly #pending = new Map<string, { changes: Waiting[]; running: boolean }>();

  constructor(options: { api: TriggerApi; logger: Logger }) {
    this.#api = options.api;
    this.#log = options.logger;
  }

  /**
   * Applies `change` to the trigger's current status; resolves with the stored trigger (undefined if it is gone).
   * Changes that arrive while a write runs are applied together in the next one (one read and one write for
   * a burst of firings).
   */
  update(namespace: string, name: string, change: StatusChange): Promise<TraceTrigger | undefined> {
    const key = `${namespace}/${name}`;
    return new Promise((resolve, reject) => {
      let entry = this.#pending.get(key);
      if (entry === undefined) {
        entry = { changes: [], running: false };
        this.#pending.set(key, entry);
      }
      entry.changes.push({ change, resolve, reject });
      if (!entry.running) void this.#drain(key, namespace, name, entry);
    });
  }

  async #drain(
    key: string,
    namespace: string,
    name: string,
    entry: { changes: Waiting[]; running: boolean },
  ): Promise<void> {
    entry.running = true;
    while (entry.changes.length > 0) {
      const batch = entry.changes.splice(0);
      try {
        const stored = await this.#apply(namespace, name, (status, trigger) =>
          batch.reduce((acc, w) => w.change(acc, trigger), status),
        );
        for (const w of batch) w.resolve(stored);
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    entry.running = false;
    this.#pending.delete(key);
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
