// The TraceJob reconciler: a level-triggered function from the TraceJob's
// current state (read from the caches) to the writes that make the world
// match it. It never learns why it runs, so every step is idempotent:
// deterministic names, create-if-absent, and a status write only when the
// status actually changes (a restart over settled TraceJobs writes nothing).
//
// The create path is three writes: the program ConfigMap, the Job, and one
// status write (id, Job name, phase, conditions) announced by one Event.
// status.id is the TraceJob's metadata.uid (a UUID, unique and stable) unless
// a status already holds an id, which is never changed. Nothing needs
// persisting before the creates: every name derives from the id, so a crash
// between the writes leaves objects the next reconcile finds again
// (create-if-absent), never an orphan or a duplicate (they are owned by the
// TraceJob, too).
//
// Guarantees: a trace whose Job was created is never started again (a
// vanished Job is reported); the output of a finished pod is read before the
// terminal phase is written.
// A status write that loses the optimistic-lock race (409) is requeued at
// once and logged at debug: the cache lagged a write, nothing failed.
import type { V1Job, V1Node, V1Pod } from '@kubernetes/client-node';
import {
  buildOutputConfigMap,
  awaitsPodCreation,
  awaitsPodStart,
  buildTraceObjects,
  CONDITION_TYPES as C,
  deriveTraceState,
  findCondition,
  formatValidationErrors,
  isFinishedPhase,
  isStarted,
  isStartProblem,
  jsonEqual,
  POD_START_POLL_MS,
  podStartIsLate,
  REASONS,
  resolveNodeTarget,
  resolvePodTarget,
  resolveProgram,
  setCondition,
  specAppliedCondition,
  stopRequestPatch,
  stoppedBeforeStart,
  toRfc3339,
  traceIdOf,
  traceObjectName,
  ttlExpiry,
  validateTraceJob,
  type ConditionUpdate,
  type ResolvedTarget,
  type TraceJob,
  type TraceJobStatus,
  type ValidationError,
} from '../tracejob/index.ts';
import { captureOutput, isTerminated } from './output-capture.ts';
import { isConflict } from '../runtime/api-error.ts';
import { Action, type ReconcileContext } from '../runtime/controller.ts';
import type { Logger } from '../runtime/logger.ts';
import { splitKey } from '../runtime/objects.ts';
import type { EventType, TraceJobReconcilerDeps } from './reconcile-deps.ts';
import { deliverStop, FAST_STOP_OFF, STOP_EXEC_ATTEMPTS, STOP_EXEC_RETRY_MS, stopCondition } from './stop-delivery.ts';

/** One reconcile: the dependencies plus the runtime's per-reconcile logger (bound to key and reconcileID) and signal. */
interface Scope extends TraceJobReconcilerDeps {
  readonly log: Logger;
  readonly signal: AbortSignal;
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

/**
 * A status write lost the optimistic-lock race (409 Conflict): the cached
 * TraceJob is older than the stored one. The normal outcome of a cache that
 * lags a write, not an error: the reconcile is run again on fresh data.
 */
class StatusConflict extends Error {
  constructor(cause: unknown) {
    super('the TraceJob changed since it was read; reconciling again', { cause });
    this.name = 'StatusConflict';
  }
}

/** How long to wait for the cache to show our own status write before reconciling on what it has. */
const CACHE_LAG_RETRY_MS = 100;
const CACHE_LAG_MAX_MS = 5_000;
const MAX_REMEMBERED_WRITES = 10_000;

function rememberWrite(r: Scope, before: TraceJob): void {
  const uid = before.metadata.uid;
  const from = before.metadata.resourceVersion;
  if (r.statusWrites === undefined || uid === undefined || from === undefined) return;
  if (r.statusWrites.size >= MAX_REMEMBERED_WRITES) r.statusWrites.delete(r.statusWrites.keys().next().value ?? '');
  r.statusWrites.set(uid, { from, at: r.now().getTime() });
}

/**
 * True when the cached TraceJob is still the version our last status write
 * replaced: a reconcile on it would redo that write and get a 409. (A
 * reconcile queued by our own Job's watch event often runs that early.)
 */
function cacheLagsOwnWrite(r: Scope, traceJob: TraceJob): boolean {
  const uid = traceJob.metadata.uid;
  const written = uid === undefined ? undefined : r.statusWrites?.get(uid);
  if (uid === undefined || written === undefined) return false;
  if (traceJob.metadata.resourceVersion === written.from && r.now().getTime() - written.at < CACHE_LAG_MAX_MS)
    return true;
  r.statusWrites?.delete(uid);
  return false;
}

/** Writes the draft when it differs from what is stored, then emits its events. Returns the stored object. */
async function commit(r: Scope, traceJob: TraceJob, draft: StatusDraft): Promise<TraceJob> {
  draft.observed();
  let stored = traceJob;
  if (!jsonEqual(draft.status, traceJob.status ?? {})) {
    try {
      stored = await r.api.replaceStatus({ ...traceJob, status: draft.status }, r.signal);
    } catch (error) {
      throw isConflict(error) ? new StatusConflict(error) : error;
    }
    rememberWrite(r, traceJob);
  }
  for (const e of draft.events) r.events.event(stored, e.type, e.reason, e.message);
  return stored;
}

/** Rejects a TraceJob that has not started: phase Failed, condition Accepted=False, a Warning Event. */
async function reject(
  r: Scope,
  traceJob: TraceJob,
  draft: StatusDraft,
  errors: readonly ValidationError[],
): Promise<Action> {
  const first = errors[0];
  if (traceJob.status?.phase !== 'Failed') r.log.info('rejecting TraceJob', { reason: first?.reason });
  draft.status.phase = 'Failed';
  draft.condition(
    { type: C.Accepted, status: 'False', reason: first?.reason ?? 'Invalid', message: formatValidationErrors(errors) },
    'Warning',
  );
  await commit(r, traceJob, draft);
  // A rejected TraceJob is looked at again when its spec changes (a watch event), not before.
  return Action.awaitChange();
}

async function resolveTarget(
  r: Scope,
  traceJob: TraceJob,
): Promise<{ target?: ResolvedTarget; error?: ValidationError; retry?: boolean }> {
  const spec = traceJob.spec;
  if (spec.targetPod !== undefined) {
    // The target pod is anyone's, so not cached: one GET when the trace starts.
    const pod = await r.api.getPod(traceJob.metadata.namespace ?? '', spec.targetPod.name, r.signal);
    const nodeName = pod?.spec?.nodeName;
    const node = nodeName === undefined || nodeName === '' ? undefined : await nodeNamed(r, nodeName);
    const resolution = resolvePodTarget(spec.targetPod, pod, node);
    if (resolution.ok) return { target: resolution.target };
    // A pod that is still starting may become traceable; one that ended or does not exist will not.
    const starting = pod !== undefined && (pod.status?.phase === 'Pending' || pod.status?.phase === undefined);
    return { error: resolution.error, retry: starting };
  }
  const hostname = spec.hostname ?? '';
  // From the Node cache; only a miss (a Node added a moment ago, or none) asks the API server before rejecting.
  let node = r.caches.nodeByHostname(hostname);
  if (node === undefined) node = await r.api.getNode(hostname, r.signal);
  if (node === undefined) node = (await r.api.listNodesWithHostname(hostname, r.signal))[0];
  const resolution = resolveNodeTarget(hostname, node);
  return resolution.ok ? { target: resolution.target } : { error: resolution.error };
}

/** The Node named `name`: from the Node cache, or with one GET when the cache has not seen it (yet). */
async function nodeNamed(r: Scope, name: string): Promise<V1Node | undefined> {
  return r.caches.node(name) ?? (await r.api.getNode(name, r.signal));
}

/** Creates the program ConfigMap and the Job of a TraceJob that has an id and has not started. */
async function start(r: Scope, traceJob: TraceJob, draft: StatusDraft): Promise<Action> {
  const namespace = traceJob.metadata.namespace ?? '';
  const resolved = await resolveTarget(r, traceJob);
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
      await commit(r, traceJob, draft);
      return Action.requeue(POD_TARGET_RETRY_MS);
    }
    return reject(r, traceJob, draft, [error]);
  }
  let programText: string | undefined;
  if (traceJob.spec.programFrom !== undefined) {
    const ref = traceJob.spec.programFrom.configMapKeyRef;
    const program = resolveProgram(traceJob, await r.api.getConfigMap(namespace, ref.name, r.signal));
    if (!program.ok) return reject(r, traceJob, draft, [program.error]);
    programText = program.program;
  }

  const objects = buildTraceObjects(traceJob, resolved.target, r.settings, programText);
  const name = objects.job.metadata?.name ?? '';
  // After a crash (or a cache that lags our own status write) the objects may
  // exist: a cached Job means both do (the ConfigMap goes first), so no second
  // POST then; ConfigMaps are not cached, and a POST of one that exists is
  // answered AlreadyExists and changes nothing.
  if (r.caches.job(namespace, name) === undefined) {
    await r.api.createConfigMap(objects.configMap, r.signal);
    if ((await r.api.createJob(objects.job, r.signal)) === 'created') {
      r.metrics?.started();
      r.log.info('created trace Job', { job: name, node: resolved.target.nodeName, id: traceJob.status?.id });
    }
  }

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
  // What following the new Job would say until the Job controller acts, so that reconcile writes nothing.
  for (const update of deriveTraceState({ job: objects.job, pod: undefined, jobCreated: true }).conditions)
    draft.condition(update);
  await commit(r, traceJob, draft);
  return Action.awaitChange();
}

function newestPod(pods: readonly V1Pod[]): V1Pod | undefined {
  return pods[0];
}

/** Follows a started trace: phase and conditions from its Job and pod, output capture, stop requests, spec drift. */
async function follow(r: Scope, traceJob: TraceJob, draft: StatusDraft): Promise<Action> {
  const namespace = traceJob.metadata.namespace ?? '';
  const id = traceJob.status?.id ?? '';
  const jobName = traceJob.status?.jobName ?? traceObjectName(id);
  let job: V1Job | undefined = r.caches.job(namespace, jobName);
  // The cache may not have seen a Job created moments ago; ask the API server before calling it deleted.
  if (job === undefined) job = await r.api.getJob(namespace, jobName, r.signal);
  const now = r.now();
  // The pod cache holds pods that are no longer Pending; one still starting is read only once it is late.
  const cachedPod = newestPod(r.caches.podsOfTrace(namespace, id));
  const startingPod =
    cachedPod === undefined && podStartIsLate(job, now, traceJob.spec.startTimeoutSeconds)
      ? newestPod(await r.api.listPodsOfTrace(namespace, id, r.signal))
      : undefined;
  const pod = cachedPod ?? startingPod;

  reportSpecDrift(traceJob, job, draft);
  if (isFinishedPhase(traceJob.status?.phase) && traceJob.status?.completionTime !== undefined) {
    return ttlAction(r, await commit(r, traceJob, draft));
  }

  let result = traceJob.status?.result;
  if (pod !== undefined && isTerminated(pod)) {
    const captured = await captureOutput(r.api, pod, r.signal);
    const uid = traceJob.metadata.uid ?? '';
    if (captured.text === undefined && r.logReadFailures !== undefined) {
      const failures = (r.logReadFailures.get(uid) ?? 0) + 1;
      r.logReadFailures.set(uid, failures);
      if (failures < LOG_READ_ATTEMPTS) return Action.requeue(LOG_READ_RETRY_MS * failures);
    }
    r.logReadFailures?.delete(uid);
    result = captured.result ?? result;
    if (captured.result !== undefined) draft.status.result = captured.result;
    if (captured.text !== undefined) {
      const output = buildOutputConfigMap(traceJob, captured.text);
      await r.api.createConfigMap(output.configMap, r.signal);
      draft.status.output = output.reference;
      r.metrics?.captured('kept');
      draft.condition({
        type: OUTPUT_CAPTURED,
        status: 'True',
        reason: 'Captured',
        message: `The text output is kept in ConfigMap ${output.reference.configMapName}${output.reference.truncated ? ' (truncated to its end)' : ''}.`,
      });
    } else {
      r.metrics?.captured('logs-unavailable');
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

  const podCreateFailure = awaitsPodCreation(job, pod, now)
    ? await r.api.latestPodCreateFailure(namespace, jobName, r.signal)
    : undefined;
  const podNode = awaitsPodStart(pod, now) ? await nodeNamed(r, pod?.spec?.nodeName ?? '') : undefined;
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
  if (derived.suspendJob === true) await r.api.suspendJob(namespace, jobName, r.signal);
  draft.status.phase = derived.phase;
  if (derived.node !== undefined) draft.status.node = derived.node;
  if (derived.startTime !== undefined) draft.status.startTime = derived.startTime;
  if (derived.completionTime !== undefined) draft.status.completionTime = derived.completionTime;
  else if (derived.finished) draft.status.completionTime = toRfc3339(now);
  for (const update of derived.conditions) {
    // One Event per transition a person reads: the start (above), the end and a start problem; running is a condition only.
    const announce =
      update.type === C.Succeeded || update.type === C.Failed || update.type === C.JobCreated || isStartProblem(update);
    draft.condition(
      update,
      announce ? (update.type === C.Failed || update.status === 'False' ? 'Warning' : 'Normal') : undefined,
    );
  }

  const stopRetryMs =
    !derived.finished && traceJob.spec.stop === true ? await requestStop(r, traceJob, pod, draft) : undefined;
  const stored = await commit(r, traceJob, draft);
  if (derived.finished) {
    r.stopExecAttempts?.delete(traceJob.metadata.uid ?? '');
    return ttlAction(r, stored);
  }
  // The watch does not see a starting pod change: read it again while it has not started.
  const startPollMs = startingPod === undefined ? Infinity : POD_START_POLL_MS;
  const recheckMs = Math.min(derived.recheckAfterMs ?? Infinity, stopRetryMs ?? Infinity, startPollMs);
  return recheckMs === Infinity ? Action.awaitChange() : Action.requeue(recheckMs);
}

/**
 * Passes spec.stop to a running trace: the stop key in its program ConfigMap
 * (durable, and the fallback), then the fast path through pods/exec
 * (stop-delivery.ts). Returns when to try the fast path again, if it should be.
 */
async function requestStop(
  r: Scope,
  traceJob: TraceJob,
  pod: V1Pod | undefined,
  draft: StatusDraft,
): Promise<number | undefined> {
  const namespace = traceJob.metadata.namespace ?? '';
  const name = traceObjectName(traceJob.status?.id ?? '');
  if (!r.caches.stopRequested(namespace, name)) {
    await r.api.mergePatchConfigMap(namespace, name, stopRequestPatch(r.now()), r.signal);
  }
  if (findCondition(traceJob.status?.conditions, C.StopRequested)?.reason === REASONS.StopDelivered) return undefined;
  if (r.stopExec === false) {
    draft.condition(stopCondition(FAST_STOP_OFF, name), 'Normal');
    return undefined;
  }
  const uid = traceJob.metadata.uid ?? '';
  const attempts = r.stopExecAttempts?.get(uid) ?? 0;
  if (attempts >= STOP_EXEC_ATTEMPTS) return undefined;

  const delivery = await deliverStop(r.api, pod, name, r.signal);
  const condition = stopCondition(delivery, name);
  if (delivery.path === 'exec') {
    r.stopExecAttempts?.delete(uid);
    r.metrics?.stopExec('delivered');
    draft.condition(condition, 'Normal');
    return undefined;
  }
  if (delivery.next === 'pod-change') {
    draft.condition(condition, 'Normal');
    return undefined;
  }
  r.metrics?.stopExec(delivery.forbidden === true ? 'refused' : 'failed');
  r.log.info('the fast stop did not reach the runner; the ConfigMap fallback will stop the trace', {
    why: delivery.why,
  });
  const tried = delivery.next === 'never' ? STOP_EXEC_ATTEMPTS : attempts + 1;
  r.stopExecAttempts?.set(uid, tried);
  draft.condition(condition, 'Warning');
  return tried < STOP_EXEC_ATTEMPTS ? STOP_EXEC_RETRY_MS : undefined;
}

/** Reports a spec changed after the Job was created; the condition appears only once there is something to say. */
function reportSpecDrift(traceJob: TraceJob, job: V1Job | undefined, draft: StatusDraft): void {
  const update = specAppliedCondition(traceJob.spec, job);
  if (update.status === 'True' && findCondition(draft.status.conditions, C.SpecApplied) === undefined) return;
  draft.condition(update, update.status === 'False' ? 'Warning' : undefined);
}

/** Finishes a TraceJob whose spec.stop was true before it started, without creating anything. */
async function stopBeforeStart(r: Scope, traceJob: TraceJob, draft: StatusDraft): Promise<Action> {
  const state = stoppedBeforeStart();
  draft.status.phase = state.phase;
  draft.status.completionTime ??= toRfc3339(r.now());
  for (const update of state.conditions) draft.condition(update, update.type === C.Failed ? 'Normal' : undefined);
  return ttlAction(r, await commit(r, traceJob, draft));
}

/** Deletes a finished TraceJob once its time-to-live has passed, or says when to look again. */
async function ttlAction(r: Scope, traceJob: TraceJob): Promise<Action> {
  const expiry = ttlExpiry(traceJob);
  if (expiry === undefined) return Action.awaitChange();
  const remaining = expiry.getTime() - r.now().getTime();
  if (remaining > 0) return Action.requeue(remaining);
  r.log.info('deleting TraceJob: its time-to-live after finishing has passed');
  r.events.event(
    traceJob,
    'Normal',
    'Expired',
    `Deleting the TraceJob ${traceJob.spec.ttlSecondsAfterFinished ?? 0}s after its trace finished (spec.ttlSecondsAfterFinished).`,
  );
  await r.api.deleteTraceJob(
    traceJob.metadata.namespace ?? '',
    traceJob.metadata.name,
    traceJob.metadata.uid ?? '',
    r.signal,
  );
  return Action.awaitChange();
}

/**
 * Reconciles the TraceJob named by `ctx.key` ("namespace/name"). The runtime's
 * context brings the logger (bound to key and reconcileID) and the signal
 * every API call takes.
 */
export async function reconcileTraceJob(deps: TraceJobReconcilerDeps, ctx: ReconcileContext): Promise<Action> {
  const { namespace = '', name } = splitKey(ctx.key);
  const r: Scope = { ...deps, log: ctx.log, signal: ctx.signal };
  try {
    return await reconcileOnce(r, namespace, name);
  } catch (error) {
    if (!(error instanceof StatusConflict)) throw error;
    r.log.debug('status write conflicted (409): requeued to reconcile on the newer TraceJob', {
      retries: ctx.retries,
    });
    r.metrics?.statusConflict();
    return Action.requeue();
  }
}

async function reconcileOnce(r: Scope, namespace: string, name: string): Promise<Action> {
  const traceJob = r.caches.traceJob(namespace, name);
  // A TraceJob being deleted is left to the garbage collector, which removes what it owns.
  if (traceJob === undefined || (traceJob.metadata as { deletionTimestamp?: unknown }).deletionTimestamp !== undefined)
    return Action.awaitChange();
  if (cacheLagsOwnWrite(r, traceJob)) return Action.requeue(CACHE_LAG_RETRY_MS);
  if (isStarted(traceJob)) return follow(r, traceJob, new StatusDraft(traceJob, r.now()));

  // spec.stop cannot be set back to false: a TraceJob stopped before it started never starts.
  if (traceJob.spec.stop === true) return stopBeforeStart(r, traceJob, new StatusDraft(traceJob, r.now()));

  // A rejected TraceJob stays rejected until its spec changes: a resync or a
  // restart must not start it behind its owner's back (say, once a missing node appears).
  if (traceJob.status?.phase === 'Failed' && traceJob.status.observedGeneration === traceJob.metadata.generation)
    return Action.awaitChange();

  const draft = new StatusDraft(traceJob, r.now());
  if (r.allowedNamespaces !== undefined && !r.allowedNamespaces.has(namespace)) {
    return reject(r, traceJob, draft, [
      {
        field: 'metadata.namespace',
        reason: 'NamespaceNotAllowed',
        message: `the operator does not run traces in namespace ${namespace}; create the TraceJob in one of: ${[...r.allowedNamespaces].sort().join(', ')}`,
      },
    ]);
  }
  const validation = validateTraceJob(traceJob, r.settings);
  if (!validation.ok) return reject(r, traceJob, draft, validation.errors);
  // The validated object carries the defaults (deadline, grace period) the mapping needs.
  const valid: TraceJob = { ...validation.traceJob, metadata: traceJob.metadata, status: traceJob.status };

  const id = traceIdOf(traceJob);
  if (id === undefined)
    return reject(r, traceJob, draft, [
      { field: 'metadata.uid', reason: 'Invalid', message: 'the TraceJob has no metadata.uid to derive its id from' },
    ]);
  draft.status.id = id;
  return start(r, { ...valid, status: { ...traceJob.status, id } }, draft);
}
