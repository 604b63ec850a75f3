// Which node or pod an alert is about, from its labels. Node alerts name
// their node in different labels depending on how the metric was scraped:
// `node` (relabelled, kube-state-metrics), `instance` (the scrape address:
// a host, host:port or ip:port) or `kubernetes_node` (older service
// discovery relabelling). Each configured label is tried in order and its
// value matched against Node names, kubernetes.io/hostname labels and
// InternalIPs; the first that names an existing Node wins. Pod alerts name
// a pod by namespace + pod (+ container).
import { isDnsLabel, isDnsSubdomain } from '../tracejob/formats.ts';
import { DEFAULT_NODE_LABELS, DEFAULT_POD_LABELS } from './constants.ts';
import { nodeTargetKey, podTargetKey, type TargetKey } from './names.ts';
import type { AlertSource } from './schema.ts';

/** What target resolution needs of a Node. */
export interface NodeFacts {
  name: string;
  hostnameLabel?: string | undefined;
  internalIPs: readonly string[];
}

export type Target =
  | { kind: 'node'; nodeName: string; key: TargetKey }
  | { kind: 'pod'; namespace: string; pod: string; container?: string; key: TargetKey };

export type TargetResolution =
  { ok: true; target: Target; label: string } | { ok: false; message: string; seen: Record<string, string> };

/** Looks nodes up by name, hostname label and InternalIP. */
export class NodeIndex {
  readonly #byName = new Map<string, NodeFacts>();
  readonly #byHostname = new Map<string, NodeFacts>();
  /** null: more than one Node has this InternalIP, so the IP names none of them. */
  readonly #byIP = new Map<string, NodeFacts | null>();

  constructor(nodes: Iterable<NodeFacts>) {
    for (const node of nodes) {
      this.#byName.set(node.name, node);
      if (node.hostnameLabel !== undefined && !this.#byHostname.has(node.hostnameLabel))
        this.#byHostname.set(node.hostnameLabel, node);
      for (const ip of node.internalIPs)
        this.#byIP.set(ip.toLowerCase(), this.#byIP.has(ip.toLowerCase()) ? null : node);
    }
  }

  get size(): number {
    return this.#byName.size;
  }

  /** The node a label value names: name, hostname label or InternalIP, of the value or its host part. */
  find(value: string): NodeFacts | undefined {
    for (const candidate of hostCandidates(value)) {
      const found =
        this.#byName.get(candidate) ??
        this.#byHostname.get(candidate) ??
        this.#byIP.get(candidate.toLowerCase()) ??
        undefined;
      if (found !== undefined) return found;
    }
    return undefined;
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }
}

/** The value itself, then its host part when it is host:port, [v6]:port or ip:port. */
export function hostCandidates(value: string): string[] {
  const trimmed = value.trim();
  const out = [trimmed];
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(trimmed);
  if (bracketed?.[1] !== undefined) out.push(bracketed[1]);
  else {
    const hostPort = /^([^:]+):(\d{1,5})$/.exec(trimmed);
    if (hostPort?.[1] !== undefined) out.push(hostPort[1]);
  }
  return out;
}

function describeSeen(seen: Record<string, string>): string {
  const entries = Object.entries(seen);
  return entries.length === 0
    ? 'none of them was set'
    : entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
}

/** Resolves the node an alert names (targetKind Node). */
export function resolveNodeFromLabels(
  labels: Readonly<Record<string, string>>,
  alert: Pick<AlertSource, 'nodeLabels'>,
  nodes: NodeIndex,
): TargetResolution {
  const tried = alert.nodeLabels ?? DEFAULT_NODE_LABELS;
  const seen: Record<string, string> = {};
  for (const label of tried) {
    const value = labels[label];
    if (value === undefined || value === '') continue;
    seen[label] = value;
    const node = nodes.find(value);
    if (node !== undefined)
      return { ok: true, label, target: { kind: 'node', nodeName: node.name, key: nodeTargetKey(node.name) } };
  }
  const invalid = Object.entries(seen)
    .filter(([, v]) => hostCandidates(v).every((c) => !isDnsSubdomain(c) && !/^[0-9a-fA-F.:]+$/.test(c)))
    .map(([k]) => k);
  const why =
    invalid.length > 0
      ? ` (${invalid.join(', ')} ${invalid.length === 1 ? 'is' : 'are'} not a valid node name, host or IP)`
      : '';
  return {
    ok: false,
    seen,
    message: `no node matches the alert's labels ${tried.join(', ')}: ${describeSeen(seen)}${why}; set spec.alert.nodeLabels to the label that holds the node name, or relabel the alert so one of them does`,
  };
}

/** Resolves the pod an alert names (targetKind Pod); the pod must be in the trigger's namespace. */
export function resolvePodFromLabels(
  labels: Readonly<Record<string, string>>,
  alert: Pick<AlertSource, 'podLabels'>,
  triggerNamespace: string,
): TargetResolution {
  const names = { ...DEFAULT_POD_LABELS, ...(alert.podLabels ?? {}) };
  const seen: Record<string, string> = {};
  for (const label of [names.namespace, names.pod, names.container])
    if (labels[label] !== undefined && labels[label] !== '') seen[label] = labels[label] ?? '';
  const namespace = labels[names.namespace] ?? '';
  const pod = labels[names.pod] ?? '';
  const container = labels[names.container];
  const fail = (why: string): TargetResolution => ({
    ok: false,
    seen,
    message: `the alert names no pod to trace (labels ${names.namespace}, ${names.pod}, ${names.container}: ${describeSeen(seen)}): ${why}`,
  });
  if (pod === '') return fail(`label ${names.pod} is missing; set spec.alert.podLabels.pod to the label that holds it`);
  if (!isDnsSubdomain(pod)) return fail(`${JSON.stringify(pod)} is not a valid pod name`);
  if (namespace !== '' && namespace !== triggerNamespace)
    return fail(
      `the pod is in namespace ${namespace}, but a TraceJob traces pods of its own namespace; create the trigger in ${namespace}`,
    );
  if (container !== undefined && container !== '' && !isDnsLabel(container))
    return fail(`${JSON.stringify(container)} is not a valid container name`);
  const withContainer = container !== undefined && container !== '' ? container : undefined;
  return {
    ok: true,
    label: names.pod,
    target: {
      kind: 'pod',
      namespace: triggerNamespace,
      pod,
      ...(withContainer === undefined ? {} : { container: withContainer }),
      key: podTargetKey(triggerNamespace, pod, withContainer),
    },
  };
}

export function resolveTargetFromLabels(
  labels: Readonly<Record<string, string>>,
  alert: AlertSource,
  triggerNamespace: string,
  nodes: NodeIndex,
): TargetResolution {
  return (alert.targetKind ?? 'Node') === 'Pod'
    ? resolvePodFromLabels(labels, alert, triggerNamespace)
    : resolveNodeFromLabels(labels, alert, nodes);
}
