// The resolved target of a trace: the node it runs on and, for pod targets,
// the container whose PID the runner substitutes for $container_pid. The
// controller reads the Node from its Node cache, and a target Pod with one
// GET when the trace starts (anyone's pod, so not cached), and calls these
// pure functions; the mapping takes their result.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { HOSTNAME_LABEL_KEY } from './constants.ts';
import type { TraceJobSpec } from './schema.ts';
import type { ValidationError } from './validation-error.ts';

export type ResolvedTarget =
  | {
      kind: 'node';
      /** metadata.name of the Node. */
      nodeName: string;
      /** Value of the Node's kubernetes.io/hostname label (used for node affinity). */
      hostnameLabel: string;
    }
  | {
      kind: 'pod';
      nodeName: string;
      hostnameLabel: string;
      podUID: string;
      containerName: string;
      /** As the kubelet reports it, e.g. containerd://<hex>; the mapping strips the runtime prefix. */
      containerID: string;
    };

export type TargetResolution = { ok: true; target: ResolvedTarget } | { ok: false; error: ValidationError };

export const TARGET_REASONS = {
  NodeNotFound: 'NodeNotFound',
  PodNotFound: 'PodNotFound',
  PodNotScheduled: 'PodNotScheduled',
  PodNotRunning: 'PodNotRunning',
  ContainerNotFound: 'ContainerNotFound',
  ContainerNotRunning: 'ContainerNotRunning',
} as const;

/**
 * The Node a spec.hostname names: the Node whose metadata.name equals it,
 * else the Node whose kubernetes.io/hostname label equals it (the two differ
 * on some clouds; kubectl-trace issue #173).
 */
export function findNodeByHostname(nodes: readonly V1Node[], hostname: string): V1Node | undefined {
  return (
    nodes.find((n) => n.metadata?.name === hostname) ??
    nodes.find((n) => n.metadata?.labels?.[HOSTNAME_LABEL_KEY] === hostname)
  );
}

/** The hostname label value of a Node, or its name when the label is missing. */
export function hostnameLabelOf(node: V1Node): string {
  return node.metadata?.labels?.[HOSTNAME_LABEL_KEY] ?? node.metadata?.name ?? '';
}

/** Resolves a node target. `node` is undefined when no Node matched spec.hostname. */
export function resolveNodeTarget(hostname: string, node: V1Node | undefined): TargetResolution {
  const nodeName = node?.metadata?.name;
  if (node === undefined || nodeName === undefined) {
    return {
      ok: false,
      error: {
        field: 'spec.hostname',
        reason: TARGET_REASONS.NodeNotFound,
        message: `no node named ${JSON.stringify(hostname)} (by name or kubernetes.io/hostname label); check \`kubectl get nodes\` and set spec.hostname to one of them.`,
      },
    };
  }
  return { ok: true, target: { kind: 'node', nodeName, hostnameLabel: hostnameLabelOf(node) } };
}

/**
 * Resolves a pod target from the Pod and the Node it runs on. The pod must be
 * running and the container started, because the runner needs the
 * container's ID to find its PID.
 */
export function resolvePodTarget(
  targetPod: NonNullable<TraceJobSpec['targetPod']>,
  pod: V1Pod | undefined,
  node: V1Node | undefined,
): TargetResolution {
  const fail = (reason: string, field: string, message: string): TargetResolution => ({
    ok: false,
    error: { field, reason, message },
  });
  if (pod === undefined) {
    return fail(
      TARGET_REASONS.PodNotFound,
      'spec.targetPod.name',
      `no pod named ${JSON.stringify(targetPod.name)} in the TraceJob's namespace; check \`kubectl get pods\`.`,
    );
  }
  const nodeName = pod.spec?.nodeName;
  if (nodeName === undefined || nodeName === '') {
    return fail(
      TARGET_REASONS.PodNotScheduled,
      'spec.targetPod.name',
      `pod ${targetPod.name} is not scheduled to a node yet; the trace starts when it is.`,
    );
  }
  if (node === undefined || node.metadata?.name !== nodeName) {
    return fail(
      TARGET_REASONS.NodeNotFound,
      'spec.targetPod.name',
      `pod ${targetPod.name} runs on node ${nodeName}, which was not found.`,
    );
  }
  const uid = pod.metadata?.uid;
  if (pod.status?.phase !== 'Running' || uid === undefined) {
    return fail(
      TARGET_REASONS.PodNotRunning,
      'spec.targetPod.name',
      `pod ${targetPod.name} is ${pod.status?.phase ?? 'in an unknown phase'}, not Running; the trace starts when it runs.`,
    );
  }
  const containers = pod.spec?.containers ?? [];
  const containerName = targetPod.container ?? containers[0]?.name;
  if (containerName === undefined || !containers.some((c) => c.name === containerName)) {
    const names = containers.map((c) => c.name).join(', ');
    return fail(
      TARGET_REASONS.ContainerNotFound,
      'spec.targetPod.container',
      `pod ${targetPod.name} has no container ${JSON.stringify(containerName ?? '')}; its containers are: ${names}.`,
    );
  }
  const status = pod.status.containerStatuses?.find((s) => s.name === containerName);
  const containerID = status?.containerID;
  if (status?.state?.running === undefined || containerID === undefined || containerID === '') {
    return fail(
      TARGET_REASONS.ContainerNotRunning,
      'spec.targetPod.container',
      `container ${containerName} of pod ${targetPod.name} is not running; the trace starts when it runs.`,
    );
  }
  return {
    ok: true,
    target: { kind: 'pod', nodeName, hostnameLabel: hostnameLabelOf(node), podUID: uid, containerName, containerID },
  };
}

/** The container ID without its runtime prefix: 'containerd://abc' -> 'abc'. */
export function stripRuntimePrefix(containerID: string): string {
  const index = containerID.indexOf('://');
  return index === -1 ? containerID : containerID.slice(index + 3);
}
