// From an Alertmanager notification to firings of one trigger: the alerts
// that match spec.alert.matchers, each resolved to its target; firing alerts
// become items of an 'alert' firing, resolved ones (for stopOnResolved) the
// names of the TraceJobs they started. Pure: the node index is passed in.
import { alertFiringKey, traceJobName } from './names.ts';
import { matchesAll, type Matcher } from './matchers.ts';
import type { Firing, FiringItem } from './firing.ts';
import type { TraceTrigger } from './schema.ts';
import { resolveTargetFromLabels, type NodeIndex } from './target.ts';
import { DEFAULT_NODE_LABELS, TRIGGER_LIMITS } from './constants.ts';
import { selectFleet, type FleetNode } from './fleet.ts';
import { nodeTargetKey } from './names.ts';

/** The Nodes with labels and readiness, for alerts that name no node on a trigger with a nodeSelector (issue 14). */
export interface AlertFleet {
  nodes: readonly FleetNode[];
  operatorMaxNodes?: number | undefined;
}

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
  fleet?: AlertFleet,
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
    const fleetResolutions = fleet === undefined ? undefined : fanOutResolutions(trigger, alert, fleet);
    if (fleetResolutions !== undefined) {
      for (const resolution of fleetResolutions) {
        if (alert.status === 'resolved') {
          if (alertSpec.stopOnResolved === true && resolution.ok)
            stop.push(traceJobName(identity, key, resolution.target.key));
          continue;
        }
        items.push({ key, resolution, alert: alertFacts(alert) });
      }
      continue;
    }
    const resolution = resolveTargetFromLabels(alert.labels, alertSpec, namespace, nodes);
    if (alert.status === 'resolved') {
      if (alertSpec.stopOnResolved === true && resolution.ok)
        stop.push(traceJobName(identity, key, resolution.target.key));
      continue;
    }
    items.push({ key, resolution, alert: alertFacts(alert) });
  }
  return { firing: { source: 'alert', items }, matched, ignored, stop };
}

function alertFacts(alert: NotifiedAlert): FiringItem['alert'] {
  return {
    alertname: alert.labels['alertname'] ?? '',
    fingerprint: alert.fingerprint,
    startsAt: alert.startsAt,
    summary: alert.annotations?.['summary'] ?? alert.annotations?.['description'],
    generatorURL: alert.generatorURL,
  };
}

/**
 * An alert that names no node (none of the node labels is set) on a Node
 * trigger with spec.nodeSelector targets the selected Ready nodes, one item
 * each; undefined when the alert names a node (it then targets only that
 * node, resolved as usual) or the trigger has no selector. A selection over
 * the cap is one unresolved item saying so.
 */
function fanOutResolutions(
  trigger: TraceTrigger,
  alert: NotifiedAlert,
  fleet: AlertFleet,
): FiringItem['resolution'][] | undefined {
  const alertSpec = trigger.spec.alert;
  const selector = trigger.spec.nodeSelector;
  if (alertSpec === undefined || selector === undefined || (alertSpec.targetKind ?? 'Node') !== 'Node')
    return undefined;
  const nodeLabels = alertSpec.nodeLabels ?? DEFAULT_NODE_LABELS;
  if (nodeLabels.some((l) => (alert.labels[l] ?? '') !== '')) return undefined;
  const selection = selectFleet(fleet.nodes, selector, {
    maxNodes: trigger.spec.maxNodes ?? TRIGGER_LIMITS.defaultMaxNodes,
    ...(fleet.operatorMaxNodes === undefined ? {} : { operatorMaxNodes: fleet.operatorMaxNodes }),
  });
  if (!selection.ok)
    return [{ ok: false, message: `the alert names no node, and ${selection.message}`, seen: alert.labels }];
  return selection.nodes.map((node) => ({
    ok: true as const,
    label: 'nodeSelector',
    target: { kind: 'node' as const, nodeName: node, key: nodeTargetKey(node) },
  }));
}
