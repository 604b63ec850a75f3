// The targets of a fleet firing: the Ready Nodes spec.nodeSelector selects,
// refused as a whole when they are more than the cap. Pure.
//
// The label selector is matched here rather than with a library: the
// semantics are the four operators of metav1.LabelSelector (apimachinery's
// labels.Selector), a dozen lines, and @kubernetes/client-node has no
// matcher. An empty selector selects every node, as in Kubernetes.
import type { V1Node } from '@kubernetes/client-node';
import type { LabelSelectorRequirement, NodeSelector } from './schema.ts';

/** A selector problem, as a field path and what to fix. */
export interface SelectorProblem {
  field: string;
  message: string;
}

/** What the API server's own LabelSelector validation would refuse, since the CRD schema cannot say it. */
export function selectorProblems(selector: NodeSelector, field = 'spec.nodeSelector'): SelectorProblem[] {
  const problems: SelectorProblem[] = [];
  (selector.matchExpressions ?? []).forEach((req, i) => {
    const values = req.values ?? [];
    const at = `${field}.matchExpressions[${i}]`;
    if ((req.operator === 'In' || req.operator === 'NotIn') && values.length === 0) {
      problems.push({ field: `${at}.values`, message: `operator ${req.operator} needs at least one value.` });
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && values.length > 0) {
      problems.push({ field: `${at}.values`, message: `operator ${req.operator} takes no values; remove them.` });
    }
  });
  return problems;
}

function requirementMatches(req: LabelSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, req.key);
  const value = labels[req.key];
  switch (req.operator) {
    case 'In':
      return has && value !== undefined && (req.values ?? []).includes(value);
    case 'NotIn':
      return !has || value === undefined || !(req.values ?? []).includes(value);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** True when `labels` satisfy every matchLabels pair and every matchExpression. */
export function selectorMatches(selector: NodeSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((req) => requirementMatches(req, labels));
}

/** A Node is Ready when its Ready condition is True (what `kubectl get nodes` shows). */
export function isNodeReady(node: V1Node): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** What fleet selection reads of a Node. */
export interface FleetNode {
  name: string;
  labels: Readonly<Record<string, string>>;
  ready: boolean;
}

export function fleetNodeOf(node: V1Node): FleetNode {
  return { name: node.metadata?.name ?? '', labels: node.metadata?.labels ?? {}, ready: isNodeReady(node) };
}

export interface FleetLimits {
  /** spec.maxNodes (its default applied by the caller). */
  maxNodes: number;
  /** The operator-wide cap (--max-fleet-nodes); undefined: none. */
  operatorMaxNodes?: number;
}

export type FleetSelection =
  | {
      ok: true;
      /** Selected Ready nodes by name, sorted. */
      nodes: string[];
      /** Nodes the selector matched that are not Ready (left out). */
      notReady: number;
    }
  | {
      ok: false;
      reason: 'TooManyNodes' | 'NoNodes';
      /** Ready nodes the selector matched. */
      matched: number;
      notReady: number;
      limit: number;
      message: string;
    };

/** The cap in force: the smaller of spec.maxNodes and the operator's flag. */
export function effectiveNodeCap(limits: FleetLimits): { limit: number; by: 'spec.maxNodes' | 'operator' } {
  const op = limits.operatorMaxNodes;
  return op !== undefined && op < limits.maxNodes
    ? { limit: op, by: 'operator' }
    : { limit: limits.maxNodes, by: 'spec.maxNodes' };
}

/** The Ready nodes `selector` selects, or why there are none to trace. */
export function selectFleet(nodes: readonly FleetNode[], selector: NodeSelector, limits: FleetLimits): FleetSelection {
  const ready: string[] = [];
  let notReady = 0;
  for (const node of nodes) {
    if (node.name === '' || !selectorMatches(selector, node.labels)) continue;
    if (node.ready) ready.push(node.name);
    else notReady++;
  }
  ready.sort();
  const { limit, by } = effectiveNodeCap(limits);
  const notReadyNote = notReady > 0 ? ` (${notReady} more matched but are not Ready)` : '';
  if (ready.length > limit) {
    const fix =
      by === 'operator'
        ? "narrow spec.nodeSelector; the operator's --max-fleet-nodes is the limit"
        : 'narrow spec.nodeSelector or raise spec.maxNodes';
    return {
      ok: false,
      reason: 'TooManyNodes',
      matched: ready.length,
      notReady,
      limit,
      message: `spec.nodeSelector matches ${ready.length} Ready nodes${notReadyNote}, more than the limit of ${limit} (${by}); nothing was created: ${fix}.`,
    };
  }
  if (ready.length === 0) {
    return {
      ok: false,
      reason: 'NoNodes',
      matched: 0,
      notReady,
      limit,
      message: `spec.nodeSelector matches no Ready node${notReadyNote}; check the labels with \`kubectl get nodes --show-labels\`.`,
    };
  }
  return { ok: true, nodes: ready, notReady };
}
