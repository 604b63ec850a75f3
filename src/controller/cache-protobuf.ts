// The trace pods, Jobs and ConfigMaps as the cache keeps them, read straight
// from the protobuf watch stream (runtime/watch-protobuf.ts says why): the
// same fields, in the same JSON form, as trimPod, trimJob and trimConfigMap
// in caches.ts make from the JSON one, so the reconciler cannot tell them apart
// (test/integration/cache-protobuf.test.ts compares the two on real
// objects). Field numbers from k8s.io/api's core/v1 and batch/v1
// generated.proto. What JSON omits when empty is left out; a zero time is
// null, as in JSON.
import type { KubeObject } from '../runtime/objects.ts';
import { type ProtoReader, readObjectMeta, readTime } from '../runtime/protobuf-reader.ts';
import { STOP_KEY } from '../tracejob/index.ts';

type Fields = Record<string, unknown>;

/**
 * Reads a string field into `out[key]` unless it is empty (JSON's omitempty).
 * The fields read so repeat across pods and Jobs, so they are kept once each.
 */
function text(reader: ProtoReader, out: Fields, key: string): void {
  const value = reader.sharedString();
  if (value !== '') out[key] = value;
}

function readContainer(container: ProtoReader): Fields {
  const out: Fields = { name: '' };
  while (container.next()) {
    if (container.field === 1) out['name'] = container.sharedString();
    else if (container.field === 2) text(container, out, 'image');
    else container.skip();
  }
  return out;
}

function readSpec(spec: ProtoReader): Fields {
  const containers: Fields[] = [];
  let nodeName: string | undefined;
  while (spec.next()) {
    if (spec.field === 2) containers.push(readContainer(spec.message()));
    else if (spec.field === 10) nodeName = spec.sharedString() || undefined;
    else spec.skip();
  }
  return { ...(nodeName === undefined ? {} : { nodeName }), containers };
}

/**
 * A pod or Job condition, with the fields its trim keeps: a pod's lose
 * lastProbeTime (trimPod), a Job's keep it (trimJob keeps them whole).
 */
function readCondition(condition: ProtoReader, withProbeTime: boolean): Fields {
  const out: Fields = {
    type: '',
    status: '',
    ...(withProbeTime ? { lastProbeTime: null } : {}),
    lastTransitionTime: null,
  };
  while (condition.next()) {
    if (condition.field === 1) out['type'] = condition.sharedString();
    else if (condition.field === 2) out['status'] = condition.sharedString();
    else if (condition.field === 3 && withProbeTime) out['lastProbeTime'] = readTime(condition.message());
    else if (condition.field === 4) out['lastTransitionTime'] = readTime(condition.message());
    else if (condition.field === 5) text(condition, out, 'reason');
    else if (condition.field === 6) text(condition, out, 'message');
    else condition.skip();
  }
  return out;
}

function readWaiting(waiting: ProtoReader): Fields {
  const out: Fields = {};
  while (waiting.next()) {
    if (waiting.field === 1) text(waiting, out, 'reason');
    else if (waiting.field === 2) text(waiting, out, 'message');
    else waiting.skip();
  }
  return out;
}

function readRunning(running: ProtoReader): Fields {
  const out: Fields = { startedAt: null };
  while (running.next()) {
    if (running.field === 1) out['startedAt'] = readTime(running.message());
    else running.skip();
  }
  return out;
}

function readTerminated(terminated: ProtoReader): Fields {
  const out: Fields = { exitCode: 0 };
  let startedAt: string | null = null;
  let finishedAt: string | null = null;
  while (terminated.next()) {
    switch (terminated.field) {
      case 1:
        out['exitCode'] = terminated.int32();
        break;
      case 2: {
        const signal = terminated.int32();
        if (signal !== 0) out['signal'] = signal;
        break;
      }
      case 3:
        text(terminated, out, 'reason');
        break;
      case 4:
        text(terminated, out, 'message');
        break;
      case 5:
        startedAt = readTime(terminated.message());
        break;
      case 6:
        finishedAt = readTime(terminated.message());
        break;
      case 7:
        text(terminated, out, 'containerID');
        break;
      default:
        terminated.skip();
    }
  }
  return { ...out, startedAt, finishedAt };
}

function readState(state: ProtoReader): Fields {
  const out: Fields = {};
  while (state.next()) {
    if (state.field === 1) out['waiting'] = readWaiting(state.message());
    else if (state.field === 2) out['running'] = readRunning(state.message());
    else if (state.field === 3) out['terminated'] = readTerminated(state.message());
    else state.skip();
  }
  return out;
}

/** As trimContainerStatus: state, restarts and readiness. */
function readContainerStatus(status: ProtoReader): Fields {
  const out: Fields = { name: '', ready: false, restartCount: 0, state: {}, lastState: {} };
  while (status.next()) {
    if (status.field === 1) out['name'] = status.sharedString();
    else if (status.field === 2) out['state'] = readState(status.message());
    else if (status.field === 3) out['lastState'] = readState(status.message());
    else if (status.field === 4) out['ready'] = status.bool();
    else if (status.field === 5) out['restartCount'] = status.int32();
    else if (status.field === 9) out['started'] = status.bool();
    else status.skip();
  }
  return out;
}

function readStatus(status: ProtoReader): Fields {
  const out: Fields = {};
  const conditions: Fields[] = [];
  const containerStatuses: Fields[] = [];
  const initContainerStatuses: Fields[] = [];
  while (status.next()) {
    switch (status.field) {
      case 1:
        text(status, out, 'phase');
        break;
      case 2:
        conditions.push(readCondition(status.message(), false));
        break;
      case 3:
        text(status, out, 'message');
        break;
      case 4:
        text(status, out, 'reason');
        break;
      case 7:
        out['startTime'] = readTime(status.message());
        break;
      case 8:
        containerStatuses.push(readContainerStatus(status.message()));
        break;
      case 10:
        initContainerStatuses.push(readContainerStatus(status.message()));
        break;
      default:
        status.skip();
    }
  }
  if (conditions.length > 0) out['conditions'] = conditions;
  if (containerStatuses.length > 0) out['containerStatuses'] = containerStatuses;
  if (initContainerStatuses.length > 0) out['initContainerStatuses'] = initContainerStatuses;
  return out;
}

/** A trace pod as caches.ts keeps it, from its protobuf message. */
export function readTrimmedPod(pod: ProtoReader): KubeObject {
  let metadata: Fields = {};
  let spec: Fields = { containers: [] };
  let status: Fields | undefined;
  while (pod.next()) {
    if (pod.field === 1) metadata = readObjectMeta(pod.message());
    else if (pod.field === 2) spec = readSpec(pod.message());
    else if (pod.field === 3) status = readStatus(pod.message());
    else pod.skip();
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec,
    ...(status === undefined ? {} : { status }),
  } as KubeObject;
}

function readJobStatus(status: ProtoReader): Fields {
  const out: Fields = {};
  const conditions: Fields[] = [];
  /** active, succeeded and failed are omitted at 0; terminating and ready are pointers, kept when set. */
  const count = (key: string, omitZero: boolean): void => {
    const value = status.int32();
    if (!omitZero || value !== 0) out[key] = value;
  };
  while (status.next()) {
    switch (status.field) {
      case 1:
        conditions.push(readCondition(status.message(), true));
        break;
      case 2:
        out['startTime'] = readTime(status.message());
        break;
      case 3:
        out['completionTime'] = readTime(status.message());
        break;
      case 4:
        count('active', true);
        break;
      case 5:
        count('succeeded', true);
        break;
      case 6:
        count('failed', true);
        break;
      case 9:
        count('ready', false);
        break;
      case 11:
        count('terminating', false);
        break;
      default:
        status.skip();
    }
  }
  if (conditions.length > 0) out['conditions'] = conditions;
  return out;
}

/** A trace Job as caches.ts keeps it (metadata and status; no spec), from its protobuf message. */
export function readTrimmedJob(job: ProtoReader): KubeObject {
  let metadata: Fields = {};
  let status: Fields | undefined;
  while (job.next()) {
    if (job.field === 1) metadata = readObjectMeta(job.message());
    else if (job.field === 3) status = readJobStatus(job.message());
    else job.skip();
  }
  return { apiVersion: 'batch/v1', kind: 'Job', metadata, ...(status === undefined ? {} : { status }) } as KubeObject;
}

/** A trace ConfigMap as caches.ts keeps it: metadata and the stop request; the program text is skipped unread. */
export function readTrimmedConfigMap(configMap: ProtoReader): KubeObject {
  let metadata: Fields = {};
  let stop: string | undefined;
  while (configMap.next()) {
    if (configMap.field === 1) metadata = readObjectMeta(configMap.message());
    else if (configMap.field === 2) {
      const entry = configMap.message();
      let key = '';
      let value: Buffer | undefined;
      while (entry.next()) {
        if (entry.field === 1) key = entry.string();
        else if (entry.field === 2) value = entry.bytes();
        else entry.skip();
      }
      if (key === STOP_KEY) stop = value?.toString('utf8') ?? '';
    } else configMap.skip();
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata,
    ...(stop === undefined ? {} : { data: { [STOP_KEY]: stop } }),
  } as KubeObject;
}
