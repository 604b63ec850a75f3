// TraceJob-specific metrics, next to controller-runtime's: how many TraceJobs
// are in each phase (read from the cache at scrape time, so it is never stale),
// and counters of traces started, of outputs captured, of fast stops and of
// status write conflicts.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TraceJob } from '../tracejob/index.ts';

const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;

export interface TraceJobMetrics {
  started(): void;
  captured(outcome: 'kept' | 'logs-unavailable'): void;
  /** A status write answered 409 Conflict (the cache lagged a write); the reconcile was requeued. */
  statusConflict(): void;
  /** A fast-stop attempt (pods/exec, stop-delivery.ts) and how it went. */
  stopExec(outcome: 'delivered' | 'refused' | 'failed'): void;
}

export function registerTraceJobMetrics(registry: Registry, traceJobs: () => Iterable<TraceJob>): TraceJobMetrics {
  new Gauge({
    name: 'trace_operator_tracejobs',
    help: 'TraceJobs by status.phase ("" for ones the operator has not looked at yet).',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>([...PHASES, ''].map((p) => [p, 0]));
      for (const tj of traceJobs()) {
        const phase = tj.status?.phase ?? '';
        counts.set(phase, (counts.get(phase) ?? 0) + 1);
      }
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
  const started = new Counter({
    name: 'trace_operator_traces_started_total',
    help: 'Trace Jobs created.',
    registers: [registry],
  });
  const captured = new Counter({
    name: 'trace_operator_outputs_captured_total',
    help: 'Finished traces whose output was read, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const conflicts = new Counter({
    name: 'trace_operator_status_conflicts_total',
    help: 'TraceJob status writes answered 409 Conflict (an older cached copy); each is requeued at once.',
    registers: [registry],
  });
  const stopExecs = new Counter({
    name: 'trace_operator_stop_execs_total',
    help: 'Fast stops run in trace pods through pods/exec, by outcome: delivered, refused (403: RBAC lacks pods/exec) or failed (the exec or the command failed); a stop not delivered waits for the ConfigMap fallback.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of ['delivered', 'refused', 'failed']) stopExecs.inc({ outcome }, 0);
  captured.inc({ outcome: 'kept' }, 0);
  captured.inc({ outcome: 'logs-unavailable' }, 0);
  return {
    started: () => started.inc(),
    captured: (outcome) => captured.inc({ outcome }),
    statusConflict: () => conflicts.inc(),
    stopExec: (outcome) => stopExecs.inc({ outcome }),
  };
}
