// The condition types and reasons a TraceJob's status uses, and a pure
// helper that sets one condition the way meta.SetStatusCondition does in Go
// (lastTransitionTime changes only when the status changes).
import type { Condition, ConditionStatus } from './schema.ts';
import { toRfc3339 } from './time.ts';

/** Condition types, in the order they usually become True over a trace's life. */
export const CONDITION_TYPES = {
  /** The spec passed validation (False: the reason names what is wrong; no Job is created). */
  Accepted: 'Accepted',
  /** The program ConfigMap and the Job exist (False with JobDeleted when someone deleted the Job). */
  JobCreated: 'JobCreated',
  /** The trace pod was bound to its node (False with Unschedulable). */
  Scheduled: 'Scheduled',
  /** bpftrace is running (False while waiting, e.g. ImagePullBackOff, or after the end with Finished). */
  Running: 'Running',
  /** The trace ended and its output was kept. */
  Succeeded: 'Succeeded',
  /** The trace failed; the reason says why (CompileError, OOMKilled, DeadlineExceeded, ...). */
  Failed: 'Failed',
  /** spec.stop was set and the stop request was passed to the runner (the reason says how). */
  StopRequested: 'StopRequested',
  /** False with SpecChangedAfterStart when the spec changed after the Job was created (a trace is never re-run). */
  SpecApplied: 'SpecApplied',
} as const;
export type ConditionType = (typeof CONDITION_TYPES)[keyof typeof CONDITION_TYPES];

/** Reasons set by this package; the controller may add its own (CamelCase). */
export const REASONS = {
  Valid: 'Valid',
  Created: 'Created',
  JobDeleted: 'JobDeleted',
  Pending: 'Pending',
  Scheduled: 'Scheduled',
  Unschedulable: 'Unschedulable',
  ContainerCreating: 'ContainerCreating',
  Initializing: 'Initializing',
  Running: 'Running',
  Finished: 'Finished',
  Completed: 'Completed',
  DeadlineReached: 'DeadlineReached',
  Stopped: 'Stopped',
  CompileError: 'CompileError',
  AttachError: 'AttachError',
  TraceError: 'TraceError',
  ImagePullBackOff: 'ImagePullBackOff',
  ErrImagePull: 'ErrImagePull',
  InvalidImageName: 'InvalidImageName',
  CreateContainerError: 'CreateContainerError',
  CreateContainerConfigError: 'CreateContainerConfigError',
  OOMKilled: 'OOMKilled',
  DeadlineExceeded: 'DeadlineExceeded',
  BackoffLimitExceeded: 'BackoffLimitExceeded',
  PodFailed: 'PodFailed',
  Evicted: 'Evicted',
  /** The stop is in the program ConfigMap; the trace container has not started (the runner reads the key when it does). */
  StopRequested: 'StopRequested',
  /** The runner got the stop at once, through pods/exec. */
  StopDelivered: 'StopDelivered',
  /** The fast path was refused or failed: the stop waits for the kubelet to copy the ConfigMap's stop key into the pod. */
  StopWaitsForKubelet: 'StopWaitsForKubelet',
  SpecChangedAfterStart: 'SpecChangedAfterStart',
  SpecApplied: 'SpecApplied',
  /** The pod did not start within spec.startTimeoutSeconds. */
  StartTimeout: 'StartTimeout',
  /** Admission (Pod Security, a webhook) refused the trace pod. */
  PodForbidden: 'PodForbidden',
  ServiceAccountNotFound: 'ServiceAccountNotFound',
  QuotaExceeded: 'QuotaExceeded',
  /** The Job controller could not create the pod for another reason. */
  PodCreateFailed: 'PodCreateFailed',
  /** The pod is bound to a node that is not Ready. */
  NodeNotReady: 'NodeNotReady',
  /** spec.stop was true before the trace started: nothing was created. */
  StoppedBeforeStart: 'StoppedBeforeStart',
} as const;

/** A condition to set, without the bookkeeping fields setCondition fills in. */
export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

const MAX_MESSAGE = 32768;

/**
 * Returns a new conditions list with `update` applied: a new condition is
 * appended; an existing one of the same type keeps its lastTransitionTime
 * unless its status changes. `now` is injected so the result is deterministic.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: Date,
  observedGeneration?: number,
): Condition[] {
  const list = conditions === undefined ? [] : [...conditions];
  const index = list.findIndex((c) => c.type === update.type);
  const existing = index === -1 ? undefined : list[index];
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message.length > MAX_MESSAGE ? `${update.message.slice(0, MAX_MESSAGE - 3)}...` : update.message,
    lastTransitionTime:
      existing !== undefined && existing.status === update.status ? existing.lastTransitionTime : toRfc3339(now),
    ...(observedGeneration === undefined ? {} : { observedGeneration }),
  };
  if (index === -1) list.push(next);
  else list[index] = next;
  return list;
}

// Running/Scheduled reasons of a trace that waits as it should (no one needs telling).
const ROUTINE_WAITS: ReadonlySet<string> = new Set([
  REASONS.Pending,
  REASONS.ContainerCreating,
  REASONS.Initializing,
  REASONS.Finished,
  REASONS.Running,
  REASONS.Scheduled,
]);

/**
 * True for a Running or Scheduled condition that says why a trace cannot
 * start (Unschedulable, ImagePullBackOff, ServiceAccountNotFound, ...):
 * worth an Event, not only a condition.
 */
export function isStartProblem(update: ConditionUpdate): boolean {
  return (
    (update.type === CONDITION_TYPES.Running || update.type === CONDITION_TYPES.Scheduled) &&
    update.status === 'False' &&
    !ROUTINE_WAITS.has(update.reason)
  );
}

/** The condition of `type`, if present. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True when the condition of `type` is present with status True. */
export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}
