// The one schema source of the TraceJob API (observe.alexeldeib.xyz/v1alpha1).
// From these TypeBox schemas come the CRD's openAPIV3Schema (crd.ts), the
// TypeScript types (Static<>) and runtime validation (validate.ts).
// Descriptions are what `kubectl explain tracejob.spec` shows, so they teach.
import { Type, type Static } from '@sinclair/typebox';
import { TraceResult } from './result.ts';
import { API_GROUP_VERSION, KIND, LIMITS, PROGRAM_KEY, STOP_KEY } from './constants.ts';
import {
  CONDITION_REASON_PATTERN,
  CONDITION_TYPE_PATTERN,
  CONFIGMAP_KEY_PATTERN,
  DNS_LABEL_MAX,
  DNS_LABEL_PATTERN,
  DNS_SUBDOMAIN_MAX,
  DNS_SUBDOMAIN_PATTERN,
  UUID_PATTERN,
} from './formats.ts';

const dnsSubdomain = (description: string) =>
  Type.String({ minLength: 1, maxLength: DNS_SUBDOMAIN_MAX, pattern: DNS_SUBDOMAIN_PATTERN, description });

const image = (description: string) =>
  Type.String({ minLength: 1, maxLength: LIMITS.imageLength, pattern: '^\\S+$', description });

export const ConfigMapKeySelector = Type.Object(
  {
    name: dnsSubdomain("Name of a ConfigMap in the TraceJob's namespace."),
    key: Type.String({
      minLength: 1,
      maxLength: DNS_SUBDOMAIN_MAX,
      pattern: CONFIGMAP_KEY_PATTERN,
      description: 'Key in the ConfigMap whose value is the bpftrace program.',
    }),
  },
  { additionalProperties: false, description: "A key of a ConfigMap in the TraceJob's namespace." },
);

export const ProgramSource = Type.Object(
  {
    configMapKeyRef: ConfigMapKeySelector,
  },
  {
    additionalProperties: false,
    description:
      'Where to read the program from instead of spec.program. The operator copies the value when it creates the trace; later changes to the ConfigMap do not affect a trace that has started.',
  },
);

export const TargetPod = Type.Object(
  {
    name: dnsSubdomain("Name of a pod in the TraceJob's namespace. The trace runs on the pod's node."),
    container: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: DNS_LABEL_MAX,
        pattern: DNS_LABEL_PATTERN,
        description:
          "Container in the pod whose main process $container_pid refers to. Defaults to the pod's first container.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "Trace on the node of a running pod. In the program, $container_pid is replaced with the host PID of the container's main process, for example /pid == $container_pid/.",
  },
);

export const TraceJobSpec = Type.Object(
  {
    program: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: LIMITS.programBytes,
        description: `bpftrace program source. It is stored in the ConfigMap kubectl-trace-<id> under the key ${PROGRAM_KEY} and runs as \`bpftrace /programs/${PROGRAM_KEY}\`. At most ${LIMITS.programBytes} bytes. Exactly one of program and programFrom must be set.`,
      }),
    ),
    programFrom: Type.Optional(ProgramSource),
    programArgs: Type.Optional(
      Type.Array(Type.String({ maxLength: LIMITS.programArgLength, description: 'One positional parameter.' }), {
        maxItems: LIMITS.programArgs,
        description:
          'Positional parameters passed to bpftrace after the program: the first is $1 (or str($1)) in the program, the second $2, and so on.',
      }),
    ),
    hostname: Type.Optional(
      dnsSubdomain(
        'Name of the node to trace (its metadata.name or its kubernetes.io/hostname label). Exactly one of hostname and targetPod must be set.',
      ),
    ),
    targetPod: Type.Optional(TargetPod),
    serviceAccount: Type.Optional(
      dnsSubdomain(
        "Service account the trace pod runs as. When unset the pod uses the namespace's default service account without mounting its token.",
      ),
    ),
    imageNameTag: Type.Optional(
      image(
        "Image of the trace container (it must contain bpftrace and trace-operator). Defaults to the operator's runner image; must be on the operator's image allow-list.",
      ),
    ),
    initImageNameTag: Type.Optional(
      image(
        "Image of the init container that prepares kernel headers when fetchHeaders is true. Defaults to the operator's init image; must be on the operator's image allow-list.",
      ),
    ),
    fetchHeaders: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          "When true, an init container prepares the node's kernel headers in a scratch volume for programs that include kernel headers; when false the node's /lib/modules and /usr/src are mounted read-only.",
      }),
    ),
    deadline: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 1,
        maximum: LIMITS.maxDeadlineSeconds,
        default: LIMITS.defaultDeadlineSeconds,
        description: `Seconds the trace runs. When they are up bpftrace gets SIGINT, prints its maps and exits. From 1 to ${LIMITS.maxDeadlineSeconds} (7 days); default ${LIMITS.defaultDeadlineSeconds}.`,
      }),
    ),
    deadlineGracePeriod: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 1,
        maximum: LIMITS.maxGracePeriodSeconds,
        default: LIMITS.defaultGracePeriodSeconds,
        description: `Seconds bpftrace gets to print its maps after SIGINT before it is killed. The Job's activeDeadlineSeconds is deadline + deadlineGracePeriod. From 1 to ${LIMITS.maxGracePeriodSeconds}; default ${LIMITS.defaultGracePeriodSeconds}.`,
      }),
    ),
    stop: Type.Optional(
      Type.Boolean({
        default: false,
        description: `Set to true to end the trace now: bpftrace gets SIGINT, prints its maps and the output is kept as if the deadline had passed. The operator adds the key "${STOP_KEY}" to the program ConfigMap, which the runner watches, so the stop takes effect within about a minute (the kubelet's ConfigMap sync). Once true it cannot be set back to false.`,
        'x-kubernetes-validations': [
          {
            rule: 'self || !oldSelf',
            message:
              'spec.stop cannot be set back to false once a stop was requested; create a new TraceJob to trace again',
          },
        ],
      }),
    ),
    startTimeoutSeconds: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 1,
        maximum: LIMITS.maxStartTimeoutSeconds,
        // No schema default: a default would appear in the spec of TraceJobs created before this field, and change their spec hash.
        description: `Seconds the trace pod may take, from the Job's creation, to be created and start bpftrace. A pod that cannot be created, scheduled or started by then (missing service account, quota, an image that cannot be pulled, a node that is not ready) fails the trace with reason StartTimeout, and the Job is suspended so that it never starts later. It may be changed while the trace waits to start. From 1 to ${LIMITS.maxStartTimeoutSeconds}; when unset, ${LIMITS.defaultStartTimeoutSeconds}.`,
      }),
    ),
    ttlSecondsAfterFinished: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        maximum: LIMITS.maxTtlSeconds,
        description:
          'When set, the operator deletes the TraceJob (and with it the Job, the ConfigMaps and the kept output) this many seconds after the trace finished. When unset the TraceJob is kept until someone deletes it.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'What to trace and where. Fields of the original trace-operator (program, hostname, serviceAccount, imageNameTag, initImageNameTag, fetchHeaders, deadline, deadlineGracePeriod) keep their meaning. A trace runs once: changing the spec after the Job exists has no effect except spec.stop (status condition SpecApplied=False tells you so).',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.program) != has(self.programFrom)',
        message: 'set exactly one of spec.program (the program text) or spec.programFrom (a ConfigMap key holding it)',
      },
      {
        rule: 'has(self.hostname) != has(self.targetPod)',
        message: "set exactly one of spec.hostname (trace a node) or spec.targetPod (trace a pod's node and container)",
      },
    ],
  },
);

export const ConditionStatus = Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')], {
  description: 'Status of the condition: True, False or Unknown.',
});

export const Condition = Type.Object(
  {
    type: Type.String({
      maxLength: 316,
      pattern: CONDITION_TYPE_PATTERN,
      description:
        'Type of the condition: Accepted (the spec is valid), JobCreated (the ConfigMap and Job exist), Scheduled (the trace pod is on its node), Running (bpftrace runs), Succeeded, Failed, StopRequested (spec.stop was passed to the runner), SpecApplied (False when the spec changed after the trace started).',
    }),
    status: ConditionStatus,
    observedGeneration: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        description: 'metadata.generation of the TraceJob the condition was set for.',
      }),
    ),
    lastTransitionTime: Type.String({ format: 'date-time', description: 'When the condition last changed status.' }),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: CONDITION_REASON_PATTERN,
      description:
        'CamelCase reason for the last transition, for example CompileError, ImagePullBackOff, Unschedulable, DeadlineExceeded, OOMKilled.',
    }),
    message: Type.String({ maxLength: 32768, description: 'What happened and, for problems, what to do about it.' }),
  },
  { description: 'A Kubernetes condition (metav1.Condition).' },
);

export const Phase = Type.Union(
  [Type.Literal('Pending'), Type.Literal('Running'), Type.Literal('Succeeded'), Type.Literal('Failed')],
  {
    description:
      'Where the trace is in its life: Pending (accepted, the pod is not running yet), Running (bpftrace runs), Succeeded (the trace ended and its output was kept), Failed (see the conditions for why).',
  },
);

export const OutputReference = Type.Object(
  {
    configMapName: dnsSubdomain('Name of the ConfigMap, owned by the TraceJob, that holds the text output.'),
    key: Type.String({
      minLength: 1,
      maxLength: DNS_SUBDOMAIN_MAX,
      pattern: CONFIGMAP_KEY_PATTERN,
      description: 'Key of the ConfigMap that holds the text.',
    }),
    bytes: Type.Integer({
      format: 'int64',
      minimum: 0,
      description: 'Size in bytes of the whole output the trace produced.',
    }),
    truncated: Type.Boolean({
      description:
        'True when the output was larger than the limit and only its end (where the final maps are) was kept.',
    }),
  },
  {
    description:
      "Where the full text output of the trace is kept. Read it with: kubectl get configmap <configMapName> -o jsonpath='{.data.output\\.txt}'.",
  },
);

export const TraceJobStatus = Type.Object(
  {
    id: Type.Optional(
      Type.String({
        pattern: UUID_PATTERN,
        description:
          'UUID of the trace. The ConfigMap and Job are named kubectl-trace-<id>, so `kubectl trace attach <id>`, `logs <id>` and `delete <id>` work on it.',
      }),
    ),
    phase: Type.Optional(Phase),
    conditions: Type.Optional(
      Type.Array(Condition, {
        maxItems: LIMITS.conditions,
        description: "Latest observations of the trace's state, one per type.",
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      }),
    ),
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', minimum: 0, description: 'metadata.generation the operator last acted on.' }),
    ),
    node: Type.Optional(
      Type.String({ maxLength: DNS_SUBDOMAIN_MAX, description: 'Name of the node the trace runs or ran on.' }),
    ),
    jobName: Type.Optional(
      Type.String({
        maxLength: DNS_SUBDOMAIN_MAX,
        description: 'Name of the Job that runs the trace (kubectl-trace-<id>).',
      }),
    ),
    startTime: Type.Optional(Type.String({ format: 'date-time', description: 'When bpftrace started.' })),
    completionTime: Type.Optional(
      Type.String({ format: 'date-time', description: 'When the trace ended, successfully or not.' }),
    ),
    result: Type.Optional(TraceResult),
    output: Type.Optional(OutputReference),
  },
  { description: 'What the operator observed. Written only by the operator.' },
);

/** The subset of metav1.ObjectMeta the operator reads; other fields pass through unchecked. */
export const ObjectMeta = Type.Object({
  name: Type.String({ minLength: 1 }),
  namespace: Type.Optional(Type.String()),
  uid: Type.Optional(Type.String()),
  generation: Type.Optional(Type.Integer()),
  resourceVersion: Type.Optional(Type.String()),
  creationTimestamp: Type.Optional(Type.String()),
  deletionTimestamp: Type.Optional(Type.String()),
  finalizers: Type.Optional(Type.Array(Type.String())),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
});

/** The whole object, for runtime validation of what the controller or run-local receives. */
export const TraceJobObject = Type.Object({
  apiVersion: Type.Literal(API_GROUP_VERSION),
  kind: Type.Literal(KIND),
  metadata: ObjectMeta,
  spec: TraceJobSpec,
  status: Type.Optional(TraceJobStatus),
});

export type ConfigMapKeySelector = Static<typeof ConfigMapKeySelector>;
export type ProgramSource = Static<typeof ProgramSource>;
export type TargetPod = Static<typeof TargetPod>;
export type TraceJobSpec = Static<typeof TraceJobSpec>;
export type ConditionStatus = Static<typeof ConditionStatus>;
export type Condition = Static<typeof Condition>;
export type Phase = Static<typeof Phase>;
export type OutputReference = Static<typeof OutputReference>;
export type TraceJobStatus = Static<typeof TraceJobStatus>;
export type ObjectMeta = Static<typeof ObjectMeta>;
export type TraceJob = Static<typeof TraceJobObject>;
