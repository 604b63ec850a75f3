// Metrics of alert-triggered tracing: webhook requests by answer, TraceJobs
// created by source, and firings not turned into TraceJobs by reason
// (deduplicated deliveries and each suppression reason). Zero-filled, so a
// rate() over them works from the first scrape.
import { Counter, type Registry } from 'prom-client';
import {
  FIRING_SOURCES,
  SUPPRESSION_REASONS,
  type FiringSource,
  type SuppressionReason,
} from '../tracetrigger/index.ts';

import { NOTIFICATION_RESULTS, type NotificationResult } from '../webhook/alertmanager-receiver.ts';

export interface TriggerMetrics {
  notification(result: NotificationResult): void;
  created(source: FiringSource): void;
  deduplicated(source: FiringSource): void;
  suppressed(source: FiringSource, reason: SuppressionReason): void;
  stopped(): void;
}

export function registerTriggerMetrics(registry: Registry): TriggerMetrics {
  const notifications = new Counter({
    name: 'trace_operator_alert_notifications_total',
    help: 'Alertmanager webhook requests received, by how they were answered (accepted 200, malformed 400, unauthenticated 401, forbidden 403, not_found 404, method_not_allowed 405, too_large 413, trigger_not_ready 422, unavailable 503).',
    labelNames: ['result'],
    registers: [registry],
  });
  const created = new Counter({
    name: 'trace_operator_triggered_tracejobs_total',
    help: 'TraceJobs created by TraceTriggers, by what fired them.',
    labelNames: ['source'],
    registers: [registry],
  });
  const deduplicated = new Counter({
    name: 'trace_operator_trigger_deduplicated_total',
    help: 'Firings whose TraceJob already existed (repeated deliveries), by source.',
    labelNames: ['source'],
    registers: [registry],
  });
  const suppressed = new Counter({
    name: 'trace_operator_trigger_suppressions_total',
    help: 'Firings of a target that created no TraceJob, by source and reason (cooldown, maxActive, suspended, rateLimited, unresolved).',
    labelNames: ['source', 'reason'],
    registers: [registry],
  });
  const stopped = new Counter({
    name: 'trace_operator_trigger_stops_total',
    help: 'TraceJobs stopped because their alert resolved (stopOnResolved).',
    registers: [registry],
  });
  for (const result of NOTIFICATION_RESULTS) notifications.inc({ result }, 0);
  for (const source of FIRING_SOURCES) {
    created.inc({ source }, 0);
    deduplicated.inc({ source }, 0);
    for (const reason of SUPPRESSION_REASONS) suppressed.inc({ source, reason }, 0);
  }
  return {
    notification: (result) => notifications.inc({ result }),
    created: (source) => created.inc({ source }),
    deduplicated: (source) => deduplicated.inc({ source }),
    suppressed: (source, reason) => suppressed.inc({ source, reason }),
    stopped: () => stopped.inc(),
  };
}
