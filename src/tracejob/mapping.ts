// The pure mapping of a TraceJob to the objects that run it: a ConfigMap
// with the program and a Job running the trace-operator runner on the
// target node. Deterministic and without I/O; the shapes kubectl-trace
// relies on are the contracts of docs/design.md §1.
import type {
  V1ConfigMap,
  V1Container,
  V1Job,
  V1OwnerReference,
  V1PodSpec,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import {
  API_GROUP_VERSION,
  HOSTNAME_LABEL_KEY,
  KIND,
  LIMITS,
  MANAGED_BY_LABEL_KEY,
  MANAGED_BY_VALUE,
  OBJECT_NAME_PREFIX,
  PROGRAM_KEY,
  PROGRAM_PATH,
  PROGRAMS_DIR,
  STOP_KEY,
  STOP_REQUESTED_LABEL_KEY,
  STOP_PATH,
  TERMINATION_LOG_PATH,
  TERMINATION_MARGIN_SECONDS,
  TRACE_ID_LABEL_KEY,
  TRACE_LABEL_KEY,
  TRACEJOB_ANNOTATION_KEY,
} from './constants.ts';
import { isUuid } from './formats.ts';
import type { TraceJob } from './schema.ts';
import { effectiveImages, type OperatorSettings } from './settings.ts';
import { stripRuntimePrefix, type ResolvedTarget } from './target.ts';
import { SPEC_HASH_ANNOTATION_KEY, specHash } from './spec-change.ts';

export interface TraceObjects {
  configMap: V1ConfigMap;
  job: V1Job;
}

/** Name of the program ConfigMap and of the Job: `kubectl-trace-<id>`. */
export function traceObjectName(id: string): string {
  return `${OBJECT_NAME_PREFIX}${id}`;
}

/** The kubectl-trace label pairs plus managed-by; also used as selector by the controller. */
export function traceLabels(id: string): Record<string, string> {
  return {
    [TRACE_LABEL_KEY]: traceObjectName(id),
    [TRACE_ID_LABEL_KEY]: id,
    [MANAGED_BY_LABEL_KEY]: MANAGED_BY_VALUE,
  };
}

/** The same kubectl-trace pairs as annotations (kubectl-trace writes both), plus the owning TraceJob's name. */
export function traceAnnotations(id: string, traceJobName: string): Record<string, string> {
  return {
    [TRACE_LABEL_KEY]: traceObjectName(id),
    [TRACE_ID_LABEL_KEY]: id,
    [TRACEJOB_ANNOTATION_KEY]: traceJobName,
  };
}

/** The owner reference every owned object carries, so deleting the TraceJob deletes them. */
export function ownerReference(traceJob: TraceJob): V1OwnerReference {
  const uid = traceJob.metadata.uid;
  if (uid === undefined || uid === '') {
    throw new Error(
      `TraceJob ${traceJob.metadata.name} has no metadata.uid; build objects only from a TraceJob read from the API server`,
    );
  }
  return {
    apiVersion: API_GROUP_VERSION,
    kind: KIND,
    name: traceJob.metadata.name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The trace id: the one already in the status (kept, never changed), else the TraceJob's uid. */
export function traceIdOf(traceJob: TraceJob): string | undefined {
  const existing = traceJob.status?.id;
  if (existing !== undefined && existing !== '') return existing;
  const uid = traceJob.metadata.uid;
  return uid === undefined || uid === '' ? undefined : uid;
}

/** The trace id (status.id); throws when it is missing or malformed, since object names derive from it. */
export function traceId(traceJob: TraceJob): string {
  const id = traceJob.status?.id;
  if (id === undefined || !isUuid(id)) {
    throw new Error(
      `TraceJob ${traceJob.metadata.name} has ${id === undefined ? 'no status.id' : `an invalid status.id ${JSON.stringify(id)}`}; assign a UUID to status.id before building its objects`,
    );
  }
  return id;
}

/** The runner's command line (the contract with src/runner). */
export function runnerArgs(traceJob: TraceJob, target: ResolvedTarget): string[] {
  const spec = traceJob.spec;
  const args = [
    `--program=${PROGRAM_PATH}`,
    `--deadline=${spec.deadline ?? LIMITS.defaultDeadlineSeconds}`,
    `--grace-period=${spec.deadlineGracePeriod ?? LIMITS.defaultGracePeriodSeconds}`,
    `--stop-file=${STOP_PATH}`,
    `--termination-log=${TERMINATION_LOG_PATH}`,
  ];
  if (target.kind === 'pod') {
    args.push(`--pod-uid=${target.podUID}`, `--container-id=${stripRuntimePrefix(target.containerID)}`);
  }
  const programArgs = spec.programArgs ?? [];
  if (programArgs.length > 0) args.push('--', ...programArgs);
  return args;
}

const hostPath = (name: string, path: string): V1Volume => ({ name, hostPath: { path } });
const mount = (name: string, mountPath: string, readOnly: boolean): V1VolumeMount => ({ name, mountPath, readOnly });

/** Volumes, main-container mounts and the optional init container for kernel headers. */
function headerSetup(fetchHeaders: boolean, initImage: string | undefined, pullPolicy: string | undefined) {
  if (!fetchHeaders || initImage === undefined) {
    return {
      volumes: [hostPath('modules-host', '/lib/modules'), hostPath('usr-src-host', '/usr/src')],
      mounts: [mount('modules-host', '/lib/modules', true), mount('usr-src-host', '/usr/src', true)],
      initContainers: [] as V1Container[],
    };
  }
  // kubectl-trace-init reads the host's release files, modules and /boot and
  // writes headers to /usr/src and a modules tree to /lib/modules; here both
  // go to emptyDirs shared with the trace container instead of host paths.
  const init: V1Container = {
    name: 'kubectl-trace-init',
    image: initImage,
    ...(pullPolicy === undefined ? {} : { imagePullPolicy: pullPolicy }),
    resources: { requests: { cpu: '100m', memory: '100Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    volumeMounts: [
      mount('os-release', '/etc/os-release.host', true),
      mount('modules-host', '/lib/modules.host', true),
      mount('boot-host', '/boot.host', true),
      mount('modules-dir', '/lib/modules', false),
      mount('linux-headers-generated', '/usr/src', false),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  return {
    volumes: [
      hostPath('os-release', '/etc/os-release'),
      hostPath('modules-host', '/lib/modules'),
      hostPath('boot-host', '/boot'),
      { name: 'modules-dir', emptyDir: { sizeLimit: '1Gi' } },
      { name: 'linux-headers-generated', emptyDir: { sizeLimit: '2Gi' } },
    ] as V1Volume[],
    mounts: [
      mount('modules-dir', '/lib/modules', true),
      mount('modules-host', '/lib/modules.host', true),
      mount('linux-headers-generated', '/usr/src', true),
    ],
    initContainers: [init],
  };
}

/**
 * The ConfigMap and Job that run `traceJob` on `target`. `traceJob` must be
 * validated (validateTraceJob), carry metadata.uid and status.id. With
 * spec.programFrom, pass the program text read from the referenced
 * ConfigMap as `program` (see resolveProgramFrom); it is copied into the
 * trace's own ConfigMap so kubectl-trace finds it at program.bt.
 */
export function buildTraceObjects(
  traceJob: TraceJob,
  target: ResolvedTarget,
  settings: OperatorSettings,
  program?: string,
): TraceObjects {
  const id = traceId(traceJob);
  const name = traceObjectName(id);
  const namespace = traceJob.metadata.namespace;
  const spec = traceJob.spec;
  const text = spec.program ?? program;
  if (text === undefined) {
    throw new Error(
      `TraceJob ${traceJob.metadata.name} takes its program from spec.programFrom; pass the resolved program text to buildTraceObjects`,
    );
  }
  if (target.hostnameLabel === '')
    throw new Error(`resolved target for TraceJob ${traceJob.metadata.name} has an empty hostname label`);

  const meta = () => ({
    name,
    ...(namespace === undefined ? {} : { namespace }),
    labels: traceLabels(id),
    annotations: traceAnnotations(id, traceJob.metadata.name),
    ownerReferences: [ownerReference(traceJob)],
  });
  const deadline = spec.deadline ?? LIMITS.defaultDeadlineSeconds;
  const grace = spec.deadlineGracePeriod ?? LIMITS.defaultGracePeriodSeconds;
  const images = effectiveImages(spec, settings);
  const pullPolicy = settings.imagePullPolicy;
  const headers = headerSetup(spec.fetchHeaders === true, images.init, pullPolicy);

  const container: V1Container = {
    name,
    image: images.main,
    ...(pullPolicy === undefined ? {} : { imagePullPolicy: pullPolicy }),
    command: ['trace-operator', 'runner'],
    args: runnerArgs(traceJob, target),
    stdin: true,
    tty: true,
    securityContext: { privileged: true },
    resources: { requests: { cpu: '100m', memory: '100Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    volumeMounts: [mount('program', PROGRAMS_DIR, true), mount('sys', '/sys', true), ...headers.mounts],
    lifecycle: { preStop: { exec: { command: ['trace-operator', 'stop', `--timeout=${grace}`] } } },
    terminationMessagePath: TERMINATION_LOG_PATH,
    terminationMessagePolicy: 'File',
  };

  const podSpec: V1PodSpec = {
    restartPolicy: 'Never',
    hostPID: true,
    ...(spec.serviceAccount === undefined
      ? { automountServiceAccountToken: false }
      : { serviceAccountName: spec.serviceAccount }),
    enableServiceLinks: false,
    terminationGracePeriodSeconds: grace + TERMINATION_MARGIN_SECONDS,
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: HOSTNAME_LABEL_KEY, operator: 'In', values: [target.hostnameLabel] }] },
          ],
        },
      },
    },
    tolerations: [{ operator: 'Exists' }],
    ...(headers.initContainers.length > 0 ? { initContainers: headers.initContainers } : {}),
    containers: [container],
    volumes: [{ name: 'program', configMap: { name } }, hostPath('sys', '/sys'), ...headers.volumes],
  };

  const jobMeta = meta();
  jobMeta.annotations[SPEC_HASH_ANNOTATION_KEY] = specHash(spec);
  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: jobMeta,
    spec: {
      parallelism: 1,
      completions: 1,
      backoffLimit: 0,
      activeDeadlineSeconds: deadline + grace,
      template: {
        metadata: { labels: traceLabels(id), annotations: traceAnnotations(id, traceJob.metadata.name) },
        spec: podSpec,
      },
    },
  };
  const configMap: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(),
    data: { [PROGRAM_KEY]: text },
  };
  return { configMap, job };
}

/**
 * The ConfigMap data that asks the runner to stop: merge it into the program
 * ConfigMap (e.g. a merge patch `{ data: stopRequestData(now) }`). The runner
 * polls /programs/stop; the kubelet updates the mounted file within its sync
 * period. The value records when the stop was requested.
 */
export function stopRequestData(requestedAt: Date): Record<string, string> {
  return { [STOP_KEY]: requestedAt.toISOString() };
}

/** A JSON merge patch for the program ConfigMap that requests a stop, labelled so the operator's watch sees it. */
export function stopRequestPatch(requestedAt: Date): {
  metadata: { labels: Record<string, string> };
  data: Record<string, string>;
} {
  return { metadata: { labels: { [STOP_REQUESTED_LABEL_KEY]: 'true' } }, data: stopRequestData(requestedAt) };
}

/** True when the program ConfigMap already carries a stop request. */
export function isStopRequested(configMap: V1ConfigMap | undefined): boolean {
  return configMap?.data?.[STOP_KEY] !== undefined;
}
