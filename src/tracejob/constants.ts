// Names, label keys and limits that make up the TraceJob API and its
// contracts with the original operator and with kubectl-trace
// (docs/design.md §1). Everything that must not drift lives here once.

export const API_GROUP = 'observe.alexeldeib.xyz';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;
export const KIND = 'TraceJob';
export const LIST_KIND = 'TraceJobList';
export const PLURAL = 'tracejobs';
export const SINGULAR = 'tracejob';
export const SHORT_NAMES = ['tj'] as const;
export const CRD_NAME = `${PLURAL}.${API_GROUP}`;

/** Label (and annotation) keys kubectl-trace uses to find its objects. */
export const TRACE_LABEL_KEY = 'iovisor.org/kubectl-trace';
export const TRACE_ID_LABEL_KEY = 'iovisor.org/kubectl-trace-id';
export const MANAGED_BY_LABEL_KEY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'trace-operator';
/** Annotation naming the TraceJob that owns an object (names can exceed the 63-character label limit). */
export const TRACEJOB_ANNOTATION_KEY = `${API_GROUP}/tracejob`;

/**
 * Label carrying the trace id on the output ConfigMap. It deliberately is not
 * the kubectl-trace label: `kubectl trace delete <id>` must not delete the
 * kept output, which lives until the TraceJob is deleted.
 */
export const OUTPUT_ID_LABEL_KEY = `${API_GROUP}/trace-id`;

/** Prefix of the ConfigMap and Job names: `kubectl-trace-<id>`. */
export const OBJECT_NAME_PREFIX = 'kubectl-trace-';
/** Suffix of the ConfigMap that keeps the full text output: `kubectl-trace-<id>-output`. */
export const OUTPUT_NAME_SUFFIX = '-output';

/** ConfigMap key holding the bpftrace program. */
export const PROGRAM_KEY = 'program.bt';
/** ConfigMap key whose presence asks the runner to stop (value: RFC 3339 time of the request). */
export const STOP_KEY = 'stop';
/**
 * Label the operator sets on a program ConfigMap together with the stop key,
 * so its ConfigMap watch selects only the traces asked to stop (one event
 * per stop, not one per trace started).
 */
export const STOP_REQUESTED_LABEL_KEY = `${API_GROUP}/stop-requested`;
/** ConfigMap key holding the captured text output in the output ConfigMap. */
export const OUTPUT_KEY = 'output.txt';
export const PROGRAMS_DIR = '/programs';
export const PROGRAM_PATH = `${PROGRAMS_DIR}/${PROGRAM_KEY}`;
export const STOP_PATH = `${PROGRAMS_DIR}/${STOP_KEY}`;
export const TERMINATION_LOG_PATH = '/dev/termination-log';
/**
 * The fast stop: what the operator runs in a trace container through
 * pods/exec when spec.stop is set. It exits 0 when the runner got the request
 * and STOP_NOT_RUNNING_EXIT when no runner is running to get it.
 */
export const STOP_REQUEST_COMMAND: readonly string[] = ['trace-operator', 'stop', '--request'];
export const STOP_NOT_RUNNING_EXIT = 3;

export const HOSTNAME_LABEL_KEY = 'kubernetes.io/hostname';

/** Bounds of the spec. */
export const LIMITS = {
  /** 256 KiB: well under the 1 MiB ConfigMap limit, leaving room for metadata and the stop key. */
  programBytes: 256 * 1024,
  defaultDeadlineSeconds: 3600,
  /** Seven days. */
  maxDeadlineSeconds: 7 * 24 * 3600,
  defaultGracePeriodSeconds: 30,
  /** One hour. */
  maxGracePeriodSeconds: 3600,
  /** 365 days. */
  maxTtlSeconds: 365 * 24 * 3600,
  /** How long the trace pod may take to be created and start bpftrace. */
  defaultStartTimeoutSeconds: 300,
  /** One day. */
  maxStartTimeoutSeconds: 24 * 3600,
  programArgs: 32,
  programArgLength: 4096,
  imageLength: 512,
  conditions: 16,
  /** Bytes of text output kept in the output ConfigMap (the tail is kept: the final maps print last). */
  outputBytes: 512 * 1024,
} as const;

/** Seconds the pod gets beyond the grace period to run its preStop hook and exit. */
export const TERMINATION_MARGIN_SECONDS = 5;
