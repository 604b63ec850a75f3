// From an Alertmanager notification to firings of one trigger: the alerts
// that match spec.alert.matchers, each resolved to its target; firing alerts
// become items of an 'alert' firing, resolved ones (for stopOnResolved) the
// names of the TraceJobs they started. Pure: the node index is passed in.
import { alertFiringKey, traceJobName } from './names.ts';
import { matchesAll, type Matcher } from './matchers.ts';
import type { Firing, FiringItem } from './firing.ts';
import type { TraceTrigger } from './schema.ts';
import { resolveTargetFromLabels, type NodeIndex } from './target.ts';

/** The parts of a webhook alert this needs (src/webhook validates the whole payload). */
export interface NotifiedAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations?: Record<string, string> | undefined;
  startsAt: string;
  generatorURL?: string | undefined;
  fingerprint: string;
}

export interface AlertPlan {
  /** The 'alert' firing of the matching firing alerts (possibly with unresolved items). */
  firing: Firing;
  /** Alerts that matched the matchers (firing or resolved). */
  matched: number;
  /** Alerts that did not match the matchers (ignored, counted in the summary). */
  ignored: number;
  /** TraceJobs to stop because their alert resolved (stopOnResolved). */
  stop: string[];
}

export function planAlertNotification(
  trigger: TraceTrigger,
  matchers: readonly Matcher[],
  alerts: readonly NotifiedAlert[],
  nodes: NodeIndex,
): AlertPlan {
  const alertSpec = trigger.spec.alert;
  const items: FiringItem[] = [];
  const stop: string[] = [];
  let matched = 0;
  let ignored = 0;
  const namespace = trigger.metadata.namespace ?? 'default';
  const identity = { name: trigger.metadata.name, uid: trigger.metadata.uid ?? '' };
  for (const alert of alerts) {
    if (alertSpec === undefined || !matchesAll(matchers, alert.labels)) {
      ignored++;
      continue;
    }
    matched++;
    const key = alertFiringKey(alert.fingerprint, alert.startsAt);
    const resolution = resolveTargetFromLabels(alert.labels, alertSpec, namespace, nodes);
    if (alert.status === 'resolved') {
      if (alertSpec.stopOnResolved === true && resolution.ok)
        stop.push(traceJobName(identity, key, resolution.target.key));
      continue;
    }
    items.push({
      key,
      resolution,
      alert: {
        alertname: alert.labels['alertname'] ?? '',
        fingerprint: alert.fingerprint,
        startsAt: alert.startsAt,
        summary: alert.annotations?.['summary'] ?? alert.annotations?.['description'],
        generatorURL: alert.generatorURL,
      },
    });
  }
  return { firing: { source: 'alert', items }, matched, ignored, stop };
}
