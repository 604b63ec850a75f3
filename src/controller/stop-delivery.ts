// How a stop reaches a running trace. Every stop the operator makes (spec.stop,
// a TraceTrigger's stopOnResolved, the dashboard's Stop button: all set
// spec.stop) takes two paths:
//
//   1. The stop key in the program ConfigMap, written first: the durable
//      request, and the fallback. The runner polls the mounted file, which the
//      kubelet refreshes only at its next pod sync (a minute on a stock
//      kubelet, plus jitter: p50 54 s, max 83 s in `npm run bench`).
//   2. The fast path: `trace-operator stop --request` run in the trace
//      container through pods/exec, which signals the runner at once (p50
//      243 ms from spec.stop to the runner done, same bench). A repeat is
//      harmless.
//
// The StopRequested condition says which path carried the stop and, for the
// fallback, why the fast path was not taken.
import type { V1Pod } from '@kubernetes/client-node';
import { isForbidden } from '../runtime/api-error.ts';
import {
  CONDITION_TYPES as C,
  REASONS,
  STOP_NOT_RUNNING_EXIT,
  STOP_REQUEST_COMMAND,
  type ConditionUpdate,
} from '../tracejob/index.ts';
import type { TraceJobApi } from './reconcile-deps.ts';
import { errorMessage } from '../error-message.ts';

/** Fast-path attempts per TraceJob (per manager process) before the stop is left to the fallback. */
export const STOP_EXEC_ATTEMPTS = 3;
export const STOP_EXEC_RETRY_MS = 1_000;
/** The exec runs a short command; a kubelet that does not answer in this time leaves the stop to the fallback. */
export const STOP_EXEC_TIMEOUT_MS = 10_000;

export type StopDelivery =
  | { path: 'exec'; pod: string; detail: string }
  | {
      path: 'configmap';
      why: string;
      /**
       * When the fast path may work: once the pod changes (its container has
       * not started; no exec was made), on a retry (the exec failed or found
       * no runner yet), or never (RBAC refused it).
       */
      next: 'pod-change' | 'retry' | 'never';
      /** The API server refused the exec (403): RBAC lacks pods/exec. */
      forbidden?: true;
    };

/** What a manager started with --stop-exec=false does: leave every stop to the ConfigMap. */
export const FAST_STOP_OFF: StopDelivery = {
  path: 'configmap',
  why: 'the fast stop is turned off (--stop-exec=false)',
  next: 'never',
};

/** True when the pod's container `name` is running: only then can a command run in it. */
function containerRunning(pod: V1Pod | undefined, name: string): boolean {
  return pod?.status?.containerStatuses?.some((c) => c.name === name && c.state?.running !== undefined) === true;
}

/** Runs the stop request in the trace container; says how it went. Never throws for a refusal or a failed exec. */
export async function deliverStop(
  api: Pick<TraceJobApi, 'execInPod'>,
  pod: V1Pod | undefined,
  container: string,
  signal?: AbortSignal,
): Promise<StopDelivery> {
  const namespace = pod?.metadata?.namespace ?? '';
  const name = pod?.metadata?.name ?? '';
  if (pod === undefined || !containerRunning(pod, container))
    return { path: 'configmap', why: 'the trace container is not running yet', next: 'pod-change' };
  let result;
  try {
    result = await api.execInPod(namespace, name, container, STOP_REQUEST_COMMAND, STOP_EXEC_TIMEOUT_MS, signal);
  } catch (error) {
    if (signal?.aborted === true) throw error;
    if (isForbidden(error))
      return {
        path: 'configmap',
        why: `the manager may not run commands in pod ${name} (get and create on pods/exec are not both granted in namespace ${namespace}: ${errorMessage(error)}); config/rbac/role.yaml grants them`,
        next: 'never',
        forbidden: true,
      };
    return { path: 'configmap', why: `pods/exec in pod ${name} failed: ${errorMessage(error)}`, next: 'retry' };
  }
  const said = (result.stdout + result.stderr).trim().replace(/^trace-operator stop: /, '');
  if (result.exitCode === 0) return { path: 'exec', pod: name, detail: said };
  return {
    path: 'configmap',
    why: `'${STOP_REQUEST_COMMAND.join(' ')}' in pod ${name} exited ${result.exitCode}${said === '' ? '' : ` (${said})`}`,
    next: result.exitCode === STOP_NOT_RUNNING_EXIT ? 'retry' : 'never',
  };
}

/** The StopRequested condition for a delivery; `configMap` names the program ConfigMap that holds the request. */
export function stopCondition(delivery: StopDelivery, configMap: string): ConditionUpdate {
  if (delivery.path === 'exec')
    return {
      type: C.StopRequested,
      status: 'True',
      reason: REASONS.StopDelivered,
      message: `Stopped through pods/exec in pod ${delivery.pod} (${delivery.detail}); the output is kept.`,
    };
  const wait = `the kubelet passes it to the runner at its next pod sync (within about a minute on a stock kubelet), then bpftrace gets SIGINT, prints its maps and the output is kept`;
  if (delivery.next === 'pod-change')
    return {
      type: C.StopRequested,
      status: 'True',
      reason: REASONS.StopRequested,
      message: `The stop request is in ConfigMap ${configMap}; the trace container is not running yet: it is stopped through pods/exec once it runs, or ${wait}.`,
    };
  return {
    type: C.StopRequested,
    status: 'True',
    reason: REASONS.StopWaitsForKubelet,
    message: `Not stopped at once: ${delivery.why}. The stop request is in ConfigMap ${configMap}: ${wait}.`,
  };
}
