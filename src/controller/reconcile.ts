// The TraceJob reconciler: a level-triggered function from the TraceJob's
// current state (read from the caches) to the writes that make the world
// match it. It never learns why it runs, so every step is idempotent:
// deterministic names, create-if-absent, and a status write only when the
// status actually changes (a restart over settled TraceJobs writes nothing).
//
// Guarantees: status.id is persisted before anything is created; a trace
// whose Job was created is never started again (a vanished Job is reported);
// the output of a finished pod is read before the terminal phase is written.
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import {
  buildOutputConfigMap,
  awaitsPodCreation,
  awaitsPodStart,
  buildTraceObjects,
  canonicalJson,
  CONDITION_TYPES as C,
  deriveTraceState,
  findCondition,
  formatValidationErrors,
  isFinishedPhase,
  isStartProblem,
  isStopRequested,
  REASONS,
  resolveNodeTarget,
  resolvePodTarget,
  resolveProgram,
  setCondition,
  specAppliedCondition,
  stopRequestPatch,
  stoppedBeforeStart,
  toRfc3339,
  traceObjectName,
  ttlExpiry,
  validateTraceJob,
  type ConditionUpdate,
  type OperatorSettings,
  type ResolvedTarget,
  type TraceJob,
  type TraceJobStatus,
  type ValidationError,
} from '../tracejob/index.ts';
import { captureOutput, isTerminated } from './output-capture.ts';
import { Action } from '../runtime/controller.ts';
import type { EventRecorder, EventType, TraceJobApi, TraceJobCaches } from './reconcile-deps.ts';
import type { TraceJobMetrics } from './tracejob-metrics.ts';

export interface ReconcileContext {
  caches: TraceJobCaches;
  api: TraceJobApi;
  events: EventRecorder;
  settings: OperatorSettings;
  /** Namespaces TraceJobs may run in; undefined allows all. */
  allowedNamespaces?: ReadonlySet<string> | undefined;
  newId: () => string;
  now: () => Date;
  metrics?: TraceJobMetrics;
  /**
   * Failed log reads per TraceJob uid: a finished pod's log is read again a
   * few times before the trace is finished without its text (a kubelet can
   * be briefly unreachable; the pod and its log stay until the Job goes).
   */
  logReadFailures?: Map<string, number>;
}

/** How often, and how far apart, a finished pod's log is read before giving up on the text. */
export const LOG_READ_ATTEMPTS = 3;
export const LOG_READ_RETRY_MS = 1_000;

/** Condition the controller adds about the kept output. */
export const OUTPUT_CAPTURED = 'OutputCaptured';

const POD_TARGET_RETRY_MS = 5_000;

/** Accumulates the next status and the events announcing what changed. */
class StatusDraft {
  readonly status: TraceJobStatus;
  readonly #events: { type: EventType; reason: string; message: string }[] = [];
  readonly #generation: number | undefined;
  readonly #now: Date;

  constructor(traceJob: TraceJob, now: Date) {
    this.status = structuredClone(traceJob.status ?? {});
    this.#generation = traceJob.metadata.generation;
    this.#now = now;
  }

  /** Sets a condition; announces it with an Event when its status or reason changes. */
  condition(update: ConditionUpdate, event?: EventType): void {
    const before = findCondition(this.status.conditions, update.type);
    this.status.conditions = setCondition(this.status.conditions, update, this.#now, this.#generation);
    const changed = before === undefined || before.status !== update.status || before.reason !== update.reason;
    if (changed && event !== undefined)
      this.#events.push({ type: event, reason: update.reason, message: update.message });
  }

  observed(): void {
    if (this.#generation !== undefined) this.status.observedGeneration = this.#generation;
  }

  get events(): readonly { type: EventType; reason: string; message: string }[] {
    return this.#events;
  }
}

/** Writes the draft when it differs from what is stored, then emits its events. Returns the stored object. */
async function commit(ctx: ReconcileContext, traceJob: TraceJob, draft: StatusDraft): Promise<TraceJob> {
  draft.observed();
  let stored = traceJob;
  if (canonicalJson(draft.status) !== canonicalJson(traceJob.status ?? {})) {
    stored = await ctx.api.replaceStatus({ ...traceJob, status: draft.status });
  }
  for (const e of draft.events) ctx.events.event(stored, e.type, e.reason, e.message);
  return stored;
}

/** Rejects a TraceJob that has not started: phase Failed, condition Accepted=False, a Warning Event. */
async function reject(
  ctx: ReconcileContext,
  traceJob: TraceJob,
  draft: StatusDraft,
  errors: readonly ValidationError[],
): Promise<Action> {
  const first = errors[0];
  draft.status.phase = 'Failed';
  draft.condition(
    { type: C.Accepted, status: 'False', reason: first?.reason ?? 'Invalid', message: formatValidationErrors(errors) },
    'Warning',
  );
  await commit(ctx, traceJob, draft);
  // A rejected TraceJob is looked at again when its spec changes (a watch event), not before.
  return Action.awaitChange();
}

async function resolveTarget(
  ctx: ReconcileContext,
  traceJob: TraceJob,
): Promise<{ target?: ResolvedTarget; error?: ValidationError; retry?: boolean }> {
  const spec = traceJob.spec;
  if (spec.targetPod !== undefined) {
    const pod = await ctx.api.getPod(traceJob.metadata.namespace ?? '', spec.targetPod.name);
    const nodeName = pod?.spec?.nodeName;
    const node = nodeName === undefined || nodeName === '' ? undefined : await ctx.api.getNode(nodeName);
    const resolution = resolvePodTarget(spec.targetPod, pod, node);
    if (resolution.ok) return { target: resolution.target };
    // A pod that is still starting may become traceable; one that ended or does not exist will not.
    const starting = pod !== undefined && (pod.status?.phase === 'Pending' || pod.status?.phase === undefined);
    return { error: resolution.error, retry: starting };
  }
  const hostname = spec.hostname ?? '';
  let node = await ctx.api.getNode(hostname);
  if (node === undefined) node = (await ctx.api.listNodesWithHostname(hostname))[0];
  const resolution = resolveNodeTarget(hostname, node);
  return resolution.ok ? { target: resolution.target } : { error: resolution.error };
}

/** Creates the program ConfigMap and the Job of a TraceJob that has an id and has not started. */
async function start(ctx: ReconcileContext, traceJob: TraceJob, draft: StatusDraft): Promise<Action> {
  const namespace = traceJob.metadata.namespace ?? '';
  const resolved = await resolveTarget(ctx, traceJob);
  if (resolved.target === undefined) {
    const error = resolved.error ?? {
      field: 'spec',
      reason: 'TargetNotFound',
      message: 'the trace target could not be resolved',
    };
    if (resolved.retry === true) {
      draft.status.phase = 'Pending';
      draft.condition(
        {
          type: C.Accepted,
          status: 'Unknown',
          reason: error.reason,
          message: `${error.message} Waiting for the pod to start.`,
        },
        'Normal',
      );
      await commit(ctx, traceJob, draft);
      return Action.requeue(POD_TARGET_RETRY_MS);
    }
    return reject(ctx, traceJob, draft, [error]);
  }
  let programText: string | undefined;
  if (traceJob.spec.programFrom !== undefined) {
    const ref = traceJob.spec.programFrom.configMapKeyRef;
    const program = resolveProgram(traceJob, await ctx.api.getConfigMap(namespace, ref.name));
    if (!program.ok) return reject(ctx, traceJob, draft, [program.error]);
    programText = program.program;
  }

  const objects = buildTraceObjects(traceJob, resolved.target, ctx.settings, programText);
  await ctx.api.createConfigMap(objects.configMap);
  if ((await ctx.api.createJob(objects.job)) === 'created') ctx.metrics?.started();

  const name = objects.job.metadata?.name ?? '';
  draft.status.jobName = name;
  draft.status.node = resolved.target.nodeName;
  draft.status.phase = 'Pending';
  draft.condition({
    type: C.Accepted,
    status: 'True',
    reason: REASONS.Valid,
    message: 'The spec is valid and its target was found.',
  });
  draft.condition(
    {
      type: C.JobCreated,
      status: 'True',
      reason: REASONS.Created,
      message: `Created ConfigMap and Job ${name} for node ${resolved.target.nodeName}; attach with: kubectl trace attach ${traceJob.status?.id ?? ''}`,
    },
    'Normal',
  );
  await commit(ctx, traceJob, draft);
  return Action.awaitChange();
}

function newestPod(pods: readonly V1Pod[]): V1Pod | undefined {
  return pods[0];
}

/** Follows a started trace: phase and conditions from its Job and pod, output capture, stop requests, spec drift. */
async function follow(ctx: ReconcileContext, traceJob: TraceJob, draft: StatusDraft): Promise<Action> {
  const namespace = traceJob.metadata.namespace ?? '';
  const id = traceJob.status?.id ?? '';
  const jobName = traceJob.status?.jobName ?? traceObjectName(id);
  let job: V1Job | undefined = ctx.caches.job(namespace, jobName);
  // The cache may not have seen a Job created moments ago; ask the API server before calling it deleted.
  if (job === undefined) job = await ctx.api.getJob(namespace, jobName);
  const pod = newestPod(ctx.caches.podsOfTrace(namespace, id));

  reportSpecDrift(traceJob, job, draft);
  if (isFinishedPhase(traceJob.status?.phase) && traceJob.status?.completionTime !== undefined) {
    return ttlAction(ctx, await commit(ctx, traceJob, draft));
  }

  let result = traceJob.status?.result;
  if (pod !== undefined && isTerminated(pod)) {
    const captured = await captureOutput(ctx.api, pod);
    const uid = traceJob.metadata.uid ?? '';
    if (captured.text === undefined && ctx.logReadFailures !== undefined) {
      const failures = (ctx.logReadFailures.get(uid) ?? 0) + 1;
      ctx.logReadFailures.set(uid, failures);
      if (failures < LOG_READ_ATTEMPTS) return Action.requeue(LOG_READ_RETRY_MS * failures);
    }
    ctx.logReadFailures?.delete(uid);
    result = captured.result ?? result;
    if (captured.result !== undefined) draft.status.result = captured.result;
    if (captured.text !== undefined) {
      const output = buildOutputConfigMap(traceJob, captured.text);
      await ctx.api.createConfigMap(output.configMap);
      draft.status.output = output.reference;
      ctx.metrics?.captured('kept');
      draft.condition({
        type: OUTPUT_CAPTURED,
        status: 'True',
        reason: 'Captured',
        message: `The text output is kept in ConfigMap ${output.reference.configMapName}${output.reference.truncated ? ' (truncated to its end)' : ''}.`,
      });
    } else {
      ctx.metrics?.captured('logs-unavailable');
      draft.condition(
        {
          type: OUTPUT_CAPTURED,
          status: 'False',
          reason: 'LogsUnavailable',
          message: `The trace pod's log could not be read (${captured.logError ?? 'unknown reason'}); only the result from its termination message is kept (tried ${LOG_READ_ATTEMPTS} times).`,
        },
        'Warning',
      );
    }
  }

  const now = ctx.now();
  const podCreateFailure = awaitsPodCreation(job, pod, now)
    ? await ctx.api.latestPodCreateFailure(namespace, jobName)
    : undefined;
  const podNode = awaitsPodStart(pod, now) ? await ctx.api.getNode(pod?.spec?.nodeName ?? '') : undefined;
  const derived = deriveTraceState({
    job,
    pod,
    result,
    jobCreated: true,
    podCreateFailure,
    podNode,
    startTimeoutSeconds: traceJob.spec.startTimeoutSeconds,
    now,
  });
  // A trace that failed before it started must not start later (a service account created, a node back).
  if (derived.suspendJob === true) await ctx.api.suspendJob(namespace, jobName);
  draft.status.phase = derived.phase;
  if (derived.node !== undefined) draft.status.node = derived.node;
  if (derived.startTime !== undefined) draft.status.startTime = derived.startTime;
  if (derived.completionTime !== undefined) draft.status.completionTime = derived.completionTime;
  else if (derived.finished) draft.status.completionTime = toRfc3339(ctx.now());
  for (const update of derived.conditions) {
    const announce =
      update.type === C.Succeeded ||
      update.type === C.Failed ||
      update.type === C.JobCreated ||
      (update.type === C.Running && update.status === 'True') ||
      isStartProblem(update);
    draft.condition(
      update,
      announce ? (update.type === C.Failed || update.status === 'False' ? 'Warning' : 'Normal') : undefined,
    );
  }

  if (!derived.finished && traceJob.spec.stop === true) await requestStop(ctx, traceJob, draft);
  const stored = await commit(ctx, traceJob, draft);
  if (derived.finished) return ttlAction(ctx, stored);
  return derived.recheckAfterMs === undefined ? Action.awaitChange() : Action.requeue(derived.recheckAfterMs);
}

async function requestStop(ctx: ReconcileContext, traceJob: TraceJob, draft: StatusDraft): Promise<void> {
  const namespace = traceJob.metadata.namespace ?? '';
  const name = traceObjectName(traceJob.status?.id ?? '');
  if (!isStopRequested(ctx.caches.configMap(namespace, name))) {
    await ctx.api.mergePatchConfigMap(namespace, name, stopRequestPatch(ctx.now()));
  }
  draft.condition(
    {
      type: C.StopRequested,
      status: 'True',
      reason: REASONS.StopRequested,
      message:
        'Asked the runner to stop: bpftrace gets SIGINT, prints its maps and the output is kept. The kubelet passes the request on within about a minute.',
    },
    'Normal',
  );
}

/** Reports a spec changed after the Job was created; the condition appears only once there is something to say. */
function reportSpecDrift(traceJob: TraceJob, job: V1Job | undefined, draft: StatusDraft): void {
  const update = specAppliedCondition(traceJob.spec, job);
  if (update.status === 'True' && findCondition(draft.status.conditions, C.SpecApplied) === undefined) return;
  draft.condition(update, update.status === 'False' ? 'Warning' : undefined);
}

/** Finishes a TraceJob whose spec.stop was true before it started, without creating anything. */
async function stopBeforeStart(ctx: ReconcileContext, traceJob: TraceJob, draft: StatusDraft): Promise<Action> {
  const state = stoppedBeforeStart();
  draft.status.phase = state.phase;
  draft.status.completionTime ??= toRfc3339(ctx.now());
  for (const update of state.conditions) draft.condition(update, update.type === C.Failed ? 'Normal' : undefined);
  return ttlAction(ctx, await commit(ctx, traceJob, draft));
}

/** Deletes a finished TraceJob once its time-to-live has passed, or says when to look again. */
async function ttlAction(ctx: ReconcileContext, traceJob: TraceJob): Promise<Action> {
  const expiry = ttlExpiry(traceJob);
  if (expiry === undefined) return Action.awaitChange();
  const remaining = expiry.getTime() - ctx.now().getTime();
  if (remaining > 0) return Action.requeue(remaining);
  ctx.events.event(
    traceJob,
    'Normal',
    'Expired',
    `Deleting the TraceJob ${traceJob.spec.ttlSecondsAfterFinished ?? 0}s after its trace finished (spec.ttlSecondsAfterFinished).`,
  );
  await ctx.api.deleteTraceJob(traceJob.metadata.namespace ?? '', traceJob.metadata.name, traceJob.metadata.uid ?? '');
  return Action.awaitChange();
}

/** Reconciles the TraceJob `namespace/name`. */
export async function reconcileTraceJob(namespace: string, name: string, ctx: ReconcileContext): Promise<Action> {
  let traceJob = ctx.caches.traceJob(namespace, name);
  // A TraceJob being deleted is left to the garbage collector, which removes what it owns.
  if (traceJob === undefined || (traceJob.metadata as { deletionTimestamp?: unknown }).deletionTimestamp !== undefined)
    return Action.awaitChange();
  const started = traceJob.status?.jobName !== undefined && traceJob.status.jobName !== '';
  if (started) return follow(ctx, traceJob, new StatusDraft(traceJob, ctx.now()));

  // spec.stop cannot be set back to false: a TraceJob stopped before it started never starts.
  if (traceJob.spec.stop === true) return stopBeforeStart(ctx, traceJob, new StatusDraft(traceJob, ctx.now()));

  // A rejected TraceJob stays rejected until its spec changes: a resync or a
  // restart must not start it behind its owner's back (say, once a missing node appears).
  if (traceJob.status?.phase === 'Failed' && traceJob.status.observedGeneration === traceJob.metadata.generation)
    return Action.awaitChange();

  const draft = new StatusDraft(traceJob, ctx.now());
  if (ctx.allowedNamespaces !== undefined && !ctx.allowedNamespaces.has(namespace)) {
    return reject(ctx, traceJob, draft, [
      {
        field: 'metadata.namespace',
        reason: 'NamespaceNotAllowed',
        message: `the operator does not run traces in namespace ${namespace}; create the TraceJob in one of: ${[...ctx.allowedNamespaces].sort().join(', ')}`,
      },
    ]);
  }
  const validation = validateTraceJob(traceJob, ctx.settings);
  if (!validation.ok) return reject(ctx, traceJob, draft, validation.errors);
  // The validated object carries the defaults (deadline, grace period) the mapping needs.
  const valid: TraceJob = { ...validation.traceJob, metadata: traceJob.metadata, status: traceJob.status };

  if (traceJob.status?.id === undefined || traceJob.status.id === '') {
    // Persist the id before creating anything, so a crash here cannot leave objects no TraceJob points to.
    draft.status.id = ctx.newId();
    draft.status.phase = 'Pending';
    draft.condition({ type: C.Accepted, status: 'True', reason: REASONS.Valid, message: 'The spec is valid.' });
    traceJob = await commit(ctx, traceJob, draft);
    return start(
      ctx,
      { ...valid, metadata: traceJob.metadata, status: traceJob.status },
      new StatusDraft(traceJob, ctx.now()),
    );
  }
  return start(ctx, valid, draft);
}
