// From what the controller observes (the Job, its pod, the runner's result)
// to the TraceJob's phase, conditions, node and times. Pure: the controller
// passes the objects from its cache and writes the result to status.
//
// Guarantees: a state with finished: true never turns back into a running
// one for the same inputs that made it finished (the Job and pod only move
// forward); a missing Job after it was created is reported, not hidden.
import type { V1Job, V1JobCondition, V1Node, V1Pod, V1ContainerStatus } from '@kubernetes/client-node';
import { CONDITION_TYPES as C, REASONS, type ConditionUpdate } from './conditions.ts';
import type { Phase, TraceJob } from './schema.ts';
import type { TraceResult } from './result.ts';
import { timeString } from './time.ts';
import { LIMITS } from './constants.ts';
import { describePodCreateFailure } from './pod-create-failure.ts';

/**
 * What the controller observed of a trace that has not finished yet. A
 * finished TraceJob's status is final: do not derive it again (the Job may
 * be gone by then, which would read as JobDeleted).
 */
export interface ObservedTrace {
  /** The Job kubectl-trace-<id>, when it exists. */
  job?: V1Job | undefined;
  /** The Job's pod, when it exists (with backoffLimit 0 there is at most one). */
  pod?: V1Pod | undefined;
  /** The runner's parsed result, when the trace ended and it could be read. */
  result?: TraceResult | undefined;
  /** True when the operator created the Job earlier (status.jobName is set), so its absence means it was deleted. */
  jobCreated?: boolean | undefined;
  /** The Job controller's latest FailedCreate Event for the Job, when it could not create the pod. */
  podCreateFailure?: { message: string } | undefined;
  /** The Node the pod is bound to, when it has waited there a while without running (see awaitsPodStart). */
  podNode?: V1Node | undefined;
  /** spec.startTimeoutSeconds (default LIMITS.defaultStartTimeoutSeconds). */
  startTimeoutSeconds?: number | undefined;
  /** The time now; without it no start timeout applies. */
  now?: Date | undefined;
}

export interface DerivedState {
  phase: Phase;
  /** Conditions to set with setCondition (types from CONDITION_TYPES). */
  conditions: ConditionUpdate[];
  node?: string;
  startTime?: string;
  completionTime?: string;
  /** True for Succeeded and Failed: the trace will not run again. */
  finished: boolean;
  /** Look again after this long even if nothing changes (a start timeout is running, a pod is awaited). */
  recheckAfterMs?: number;
  /** The trace failed before it started: suspend the Job so that it never creates or runs the pod later. */
  suspendJob?: boolean;
}

/** How often a Job without a pod is looked at again (the Job controller's refusals are only Events). */
export const POD_CREATE_RECHECK_MS = 3_000;

// Waiting reasons the kubelet reports that keep a trace from starting.
const WAITING_PROBLEMS = new Set<string>([
  REASONS.ImagePullBackOff,
  REASONS.ErrImagePull,
  REASONS.InvalidImageName,
  REASONS.CreateContainerError,
  REASONS.CreateContainerConfigError,
  'ErrImageNeverPull',
  'RunContainerError',
  'CrashLoopBackOff',
]);

const RESULT_FAILURES: Partial<Record<TraceResult['outcome'], string>> = {
  CompileError: REASONS.CompileError,
  AttachError: REASONS.AttachError,
  Error: REASONS.TraceError,
};

function jobCondition(job: V1Job, type: string): V1JobCondition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

function mainStatus(pod: V1Pod | undefined): V1ContainerStatus | undefined {
  return pod?.status?.containerStatuses?.[0];
}

function terminatedOf(pod: V1Pod | undefined) {
  return mainStatus(pod)?.state?.terminated;
}

function describeTermination(pod: V1Pod | undefined): string {
  const t = terminatedOf(pod);
  if (t === undefined) return '';
  const detail =
    t.message === undefined || t.message.trim() === '' ? '' : `: ${t.message.trim().split('\n').slice(-3).join(' ')}`;
  return ` The trace container exited with code ${t.exitCode}${t.reason === undefined ? '' : ` (${t.reason})`}${detail}.`;
}

function times(observed: ObservedTrace): { startTime?: string; completionTime?: string } {
  const { job, pod, result } = observed;
  const status = mainStatus(pod);
  const startTime =
    result?.startedAt ??
    timeString(status?.state?.running?.startedAt) ??
    timeString(status?.state?.terminated?.startedAt) ??
    timeString(job?.status?.startTime);
  const failed = job === undefined ? undefined : jobCondition(job, 'Failed');
  const completionTime =
    result?.finishedAt ??
    timeString(status?.state?.terminated?.finishedAt) ??
    timeString(job?.status?.completionTime) ??
    timeString(failed?.lastTransitionTime);
  return {
    ...(startTime === undefined ? {} : { startTime }),
    ...(completionTime === undefined ? {} : { completionTime }),
  };
}

function finished(
  phase: 'Succeeded' | 'Failed',
  reason: string,
  message: string,
  observed: ObservedTrace,
): DerivedState {
  const node = observed.pod?.spec?.nodeName;
  const t = times(observed);
  return {
    phase,
    conditions: [
      { type: C.Running, status: 'False', reason: REASONS.Finished, message: 'The trace has ended.' },
      { type: phase === 'Succeeded' ? C.Succeeded : C.Failed, status: 'True', reason, message },
    ],
    ...(node === undefined || node === '' ? {} : { node }),
    ...t,
    finished: true,
  };
}

function succeeded(observed: ObservedTrace): DerivedState {
  const outcome = observed.result?.outcome;
  const reason =
    outcome === 'DeadlineReached'
      ? REASONS.DeadlineReached
      : outcome === 'Stopped'
        ? REASONS.Stopped
        : REASONS.Completed;
  const how =
    reason === REASONS.DeadlineReached
      ? 'ran until its deadline'
      : reason === REASONS.Stopped
        ? 'was stopped on request (spec.stop)'
        : 'ended';
  return finished(
    'Succeeded',
    reason,
    `The trace ${how}; its maps are in status.result and its full output in status.output.`,
    observed,
  );
}

function failed(observed: ObservedTrace, jobReason: string | undefined, jobMessage: string | undefined): DerivedState {
  const { pod, result } = observed;
  const resultReason = result === undefined ? undefined : RESULT_FAILURES[result.outcome];
  if (resultReason !== undefined && result !== undefined) {
    const what =
      resultReason === REASONS.CompileError
        ? 'bpftrace rejected the program; fix spec.program'
        : resultReason === REASONS.AttachError
          ? 'bpftrace could not attach a probe; check the probe exists on this kernel (tracepoints: `bpftrace -l`)'
          : 'the trace failed';
    return finished(
      'Failed',
      resultReason,
      `${what}${result.message === undefined ? '' : `: ${result.message}`} (exit code ${result.exitCode}).`,
      observed,
    );
  }
  if (terminatedOf(pod)?.reason === REASONS.OOMKilled) {
    return finished(
      'Failed',
      REASONS.OOMKilled,
      `The trace container ran out of memory and was killed; reduce the size of the program's maps or the trace's duration.${describeTermination(pod)}`,
      observed,
    );
  }
  if (pod?.status?.reason === REASONS.Evicted) {
    return finished(
      'Failed',
      REASONS.Evicted,
      `The trace pod was evicted from its node: ${pod.status.message ?? 'no message'}.`,
      observed,
    );
  }
  if (jobReason === REASONS.DeadlineExceeded) {
    return finished(
      'Failed',
      REASONS.DeadlineExceeded,
      `The trace did not finish within deadline + deadlineGracePeriod and the Job was stopped; bpftrace may not have printed its maps. Raise spec.deadlineGracePeriod if printing the maps takes long.${describeTermination(pod)}`,
      observed,
    );
  }
  const reason = jobReason === undefined || jobReason === '' ? REASONS.PodFailed : jobReason;
  const base =
    jobMessage === undefined || jobMessage === '' ? 'The trace Job failed.' : `The trace Job failed: ${jobMessage}.`;
  return finished(
    'Failed',
    reason,
    `${base}${describeTermination(pod)} See \`kubectl logs\` of the pod for bpftrace's output.`,
    observed,
  );
}

/** True for the phases a trace never leaves: Succeeded and Failed. */
export function isFinishedPhase(phase: string | undefined): phase is Extract<Phase, 'Succeeded' | 'Failed'> {
  return phase === 'Succeeded' || phase === 'Failed';
}

/** True once the operator created the trace's Job and named it in the status. */
export function isStarted(traceJob: TraceJob): boolean {
  const jobName = traceJob.status?.jobName;
  return jobName !== undefined && jobName !== '';
}

function pending(conditions: ConditionUpdate[], node?: string): DerivedState {
  return { phase: 'Pending', conditions, ...(node === undefined || node === '' ? {} : { node }), finished: false };
}

function jobDeleted(observed: ObservedTrace): DerivedState {
  const state = finished(
    'Failed',
    REASONS.JobDeleted,
    'The trace Job was deleted before the trace finished; a trace is never started twice. Delete and re-create the TraceJob to trace again.',
    observed,
  );
  state.conditions.unshift({
    type: C.JobCreated,
    status: 'False',
    reason: REASONS.JobDeleted,
    message: 'The Job was deleted by someone other than the operator.',
  });
  return state;
}

/** The terminal state when the Job or its pod says the trace ended; undefined while it has not. */
function ended(observed: ObservedTrace, job: V1Job): DerivedState | undefined {
  const { pod, result } = observed;
  const resultFailed = result !== undefined && RESULT_FAILURES[result.outcome] !== undefined;
  if (jobCondition(job, 'Complete') !== undefined)
    return resultFailed ? failed(observed, undefined, undefined) : succeeded(observed);
  const jobFailed = jobCondition(job, 'Failed');
  if (jobFailed !== undefined) return failed(observed, jobFailed.reason, jobFailed.message);
  // The pod can end before the Job controller records it.
  if (pod?.status?.phase === 'Succeeded')
    return resultFailed ? failed(observed, undefined, undefined) : succeeded(observed);
  if (pod?.status?.phase === 'Failed') return failed(observed, pod.status.reason, pod.status.message);
  return undefined;
}

/**
 * The state of a Job whose pod was not seen: not created yet, refused by the
 * API server, or created and not started (the controller sees a pod that is
 * still Pending only once it is late: podStartIsLate).
 */
function withoutPod(observed: ObservedTrace): DerivedState {
  const failure = observed.podCreateFailure;
  if (failure === undefined) {
    return {
      ...pending([
        {
          type: C.Running,
          status: 'False',
          reason: REASONS.Pending,
          message: 'Waiting for the trace pod to be created and to start.',
        },
      ]),
      recheckAfterMs: hasActivePod(observed.job)
        ? untilPodStartIsLate(observed.job, observed.now, observed.startTimeoutSeconds)
        : POD_CREATE_RECHECK_MS,
    };
  }
  const problem = describePodCreateFailure(failure.message);
  if (problem.permanent) {
    const state = finished('Failed', problem.reason, problem.message, observed);
    state.suspendJob = true;
    return state;
  }
  return {
    ...pending([{ type: C.Running, status: 'False', reason: problem.reason, message: problem.message }]),
    recheckAfterMs: POD_CREATE_RECHECK_MS,
  };
}

function scheduledCondition(node: string): ConditionUpdate {
  return { type: C.Scheduled, status: 'True', reason: REASONS.Scheduled, message: `The trace pod is on node ${node}.` };
}

/** Pending while the scheduler has not placed the pod; undefined once it has. */
function unscheduled(pod: V1Pod): DerivedState | undefined {
  const node = pod.spec?.nodeName;
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status !== 'False' && node !== undefined && node !== '') return undefined;
  const reason = scheduled?.reason ?? REASONS.Pending;
  const message =
    reason === REASONS.Unschedulable
      ? `The trace pod cannot be scheduled on its node: ${scheduled?.message ?? 'no message'}. Check the node exists, is Ready and has room for the pod.`
      : `The trace pod is waiting to be scheduled${scheduled?.message === undefined ? '' : `: ${scheduled.message}`}.`;
  return pending([
    { type: C.Scheduled, status: 'False', reason, message },
    { type: C.Running, status: 'False', reason: REASONS.Pending, message: 'The trace pod is not scheduled yet.' },
  ]);
}

/** The Running=False condition of a container that cannot start (an image that cannot be pulled, ...), if any. */
function containerProblem(pod: V1Pod): ConditionUpdate | undefined {
  for (const [statuses, which, field] of [
    [pod.status?.initContainerStatuses ?? [], 'init container (it fetches kernel headers)', 'spec.initImageNameTag'],
    [pod.status?.containerStatuses ?? [], 'trace container', 'spec.imageNameTag'],
  ] as const) {
    for (const status of statuses) {
      const waiting = status.state?.waiting;
      if (waiting?.reason !== undefined && WAITING_PROBLEMS.has(waiting.reason)) {
        return {
          type: C.Running,
          status: 'False',
          reason: waiting.reason,
          message: `The ${which} cannot start (${waiting.reason}) with image ${status.image}${waiting.message === undefined ? '' : `: ${waiting.message}`}. Check ${field} and that the node can pull the image.`,
        };
      }
    }
  }
  return undefined;
}

/** Running=False with NodeNotReady when the pod's node is known and not Ready (its kubelet will not start the pod). */
function nodeProblem(node: V1Node | undefined, name: string): ConditionUpdate | undefined {
  if (node === undefined) return undefined;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return undefined;
  const why =
    ready === undefined ? 'it has never reported its status' : (ready.message ?? ready.reason ?? 'no message');
  return {
    type: C.Running,
    status: 'False',
    reason: REASONS.NodeNotReady,
    message: `The trace pod is on node ${name}, which is not Ready (${why}): its kubelet cannot start the pod. Check the node; the trace fails at spec.startTimeoutSeconds.`,
  };
}

/** A scheduled pod: Running once the trace container runs, else Pending with what it waits for. */
function onNode(pod: V1Pod, node: string, podNode: V1Node | undefined): DerivedState {
  const problem =
    containerProblem(pod) ?? (mainStatus(pod)?.state?.running === undefined ? nodeProblem(podNode, node) : undefined);
  if (problem !== undefined) return pending([scheduledCondition(node), problem], node);
  const running = mainStatus(pod)?.state?.running;
  if (running !== undefined) {
    const startTime = timeString(running.startedAt);
    return {
      phase: 'Running',
      conditions: [
        scheduledCondition(node),
        { type: C.Running, status: 'True', reason: REASONS.Running, message: `bpftrace is running on node ${node}.` },
      ],
      node,
      ...(startTime === undefined ? {} : { startTime }),
      finished: false,
    };
  }
  const initializing = (pod.status?.initContainerStatuses ?? []).some((s) => s.state?.terminated === undefined);
  // Nothing changes on a pod whose kubelet never starts it: look again, to check its node (awaitsPodStart).
  return withRecheck(
    POD_START_NODE_CHECK_MS,
    pending(
      [
        scheduledCondition(node),
        initializing
          ? {
              type: C.Running,
              status: 'False',
              reason: REASONS.Initializing,
              message: 'The init container is preparing kernel headers.',
            }
          : {
              type: C.Running,
              status: 'False',
              reason: REASONS.ContainerCreating,
              message: 'The trace container is being created.',
            },
      ],
      node,
    ),
  );
}

function withRecheck(ms: number, state: DerivedState): DerivedState {
  return { ...state, recheckAfterMs: ms };
}

/** The phase, conditions, node and times of a trace from its Job, pod and result, before any start timeout. */
function deriveFromObjects(observed: ObservedTrace): DerivedState {
  const { job, pod } = observed;
  if (job === undefined) return observed.jobCreated === true ? jobDeleted(observed) : pending([]);
  const end = ended(observed, job);
  if (end !== undefined) return end;
  if (pod === undefined) return withoutPod(observed);
  return unscheduled(pod) ?? onNode(pod, pod.spec?.nodeName ?? '', observed.podNode);
}

/**
 * A trace still Pending once the start timeout has passed fails with
 * StartTimeout, saying what it was waiting for; before that, the state says
 * when to look again.
 */
function applyStartTimeout(state: DerivedState, observed: ObservedTrace): DerivedState {
  const created = Date.parse(timeString(observed.job?.metadata?.creationTimestamp) ?? '');
  if (state.phase !== 'Pending' || observed.now === undefined || Number.isNaN(created)) return state;
  const timeout = observed.startTimeoutSeconds ?? LIMITS.defaultStartTimeoutSeconds;
  const remaining = created + timeout * 1000 - observed.now.getTime();
  if (remaining > 0) return { ...state, recheckAfterMs: Math.min(state.recheckAfterMs ?? remaining, remaining) };
  const waiting = state.conditions.find((c) => c.type === C.Running && c.status === 'False');
  const scheduling = state.conditions.find((c) => c.type === C.Scheduled && c.status === 'False');
  const why = scheduling ?? waiting;
  const failedState = finished(
    'Failed',
    REASONS.StartTimeout,
    `The trace pod did not start within ${timeout}s (spec.startTimeoutSeconds)${why === undefined ? '' : `: ${why.reason}: ${why.message}`} The Job was suspended so the trace never starts late; fix the cause and create a new TraceJob.`,
    observed,
  );
  failedState.conditions.unshift(...state.conditions.filter((c) => c.type === C.Scheduled));
  failedState.suspendJob = true;
  return failedState;
}

/**
 * True when the Job has had time to create its pod and has none: only then
 * is it worth asking for the Job controller's FailedCreate Events (on the
 * happy path the pod appears within a second, and no read is made).
 */
export function awaitsPodCreation(job: V1Job | undefined, pod: V1Pod | undefined, now: Date): boolean {
  const created = Date.parse(timeString(job?.metadata?.creationTimestamp) ?? '');
  return (
    job !== undefined &&
    pod === undefined &&
    !hasActivePod(job) &&
    !Number.isNaN(created) &&
    now.getTime() - created >= POD_CREATE_RECHECK_MS
  );
}

/** True when the Job controller counts a pod of the Job that has not ended (created, maybe not started). */
function hasActivePod(job: V1Job | undefined): boolean {
  return (job?.status?.active ?? 0) > 0;
}

/**
 * How long after its Job was created a pod that has not started is looked
 * at. The controller's pod watch selects pods that are no longer Pending:
 * on the happy path a pod runs within a second or two, and the events of
 * its start (created, scheduled, ...) were half of the pod events the
 * manager received (bench/README.md, 2026-12-07, night).
 */
export const POD_START_LATE_MS = 5_000;

/** How often a late pod that still has not started is read again (the watch does not see it change). */
export const POD_START_POLL_MS = 10_000;

function startLateAfterMs(startTimeoutSeconds: number | undefined): number {
  return Math.min(POD_START_LATE_MS, (startTimeoutSeconds ?? LIMITS.defaultStartTimeoutSeconds) * 1000);
}

function untilPodStartIsLate(job: V1Job | undefined, now: Date | undefined, startTimeoutSeconds?: number): number {
  const created = Date.parse(timeString(job?.metadata?.creationTimestamp) ?? '');
  if (now === undefined || Number.isNaN(created)) return POD_START_POLL_MS;
  const remaining = created + startLateAfterMs(startTimeoutSeconds) - now.getTime();
  return remaining > 0 ? remaining : POD_START_POLL_MS;
}

/**
 * True when the Job has a pod that has not ended, the watch has not shown it
 * running, and the Job is older than POD_START_LATE_MS (or the start
 * timeout, when shorter): time to read the pod and say what it waits for.
 */
export function podStartIsLate(job: V1Job | undefined, now: Date, startTimeoutSeconds?: number): boolean {
  const created = Date.parse(timeString(job?.metadata?.creationTimestamp) ?? '');
  return (
    hasActivePod(job) && !Number.isNaN(created) && now.getTime() - created >= startLateAfterMs(startTimeoutSeconds)
  );
}

/** How long a bound pod may wait before its Node is looked at (a kubelet normally starts it within seconds). */
export const POD_START_NODE_CHECK_MS = 10_000;

/** True when the pod is bound to a node and has waited there a while without running: worth a look at the Node. */
export function awaitsPodStart(pod: V1Pod | undefined, now: Date): boolean {
  const created = Date.parse(timeString(pod?.metadata?.creationTimestamp) ?? '');
  const bound = pod?.spec?.nodeName !== undefined && pod.spec.nodeName !== '';
  return (
    bound &&
    pod?.status?.phase === 'Pending' &&
    mainStatus(pod)?.state?.running === undefined &&
    !Number.isNaN(created) &&
    now.getTime() - created >= POD_START_NODE_CHECK_MS
  );
}

/** The final state of a TraceJob whose spec.stop was true before it started: nothing was created, nothing ran. */
export function stoppedBeforeStart(): DerivedState {
  const message =
    'spec.stop was true before the trace started, so no Job was created and nothing was traced. Create a new TraceJob without spec.stop to trace.';
  return {
    phase: 'Failed',
    conditions: [
      { type: C.Running, status: 'False', reason: REASONS.StoppedBeforeStart, message: 'The trace never started.' },
      { type: C.Failed, status: 'True', reason: REASONS.StoppedBeforeStart, message },
    ],
    finished: true,
  };
}

/** The phase, conditions, node and times of a trace from its Job, pod and result. */
export function deriveTraceState(observed: ObservedTrace): DerivedState {
  return applyStartTimeout(deriveFromObjects(observed), observed);
}

/**
 * When a finished TraceJob with spec.ttlSecondsAfterFinished should be
 * deleted: status.completionTime + ttl. Undefined when there is no TTL or
 * the trace has not finished.
 */
export function ttlExpiry(traceJob: TraceJob): Date | undefined {
  const ttl = traceJob.spec.ttlSecondsAfterFinished;
  const done = isFinishedPhase(traceJob.status?.phase);
  const completed = traceJob.status?.completionTime;
  if (ttl === undefined || !done || completed === undefined) return undefined;
  const at = Date.parse(completed);
  return Number.isNaN(at) ? undefined : new Date(at + ttl * 1000);
}
