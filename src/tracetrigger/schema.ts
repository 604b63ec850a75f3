// The one schema source of the TraceTrigger API (observe.alexeldeib.xyz/v1alpha1):
// the CRD's openAPIV3Schema (crd.ts), the TypeScript types and runtime
// validation come from these TypeBox schemas, as for the TraceJob.
// Descriptions are what `kubectl explain tracetrigger.spec` shows.
//
// A trigger fires from three sources, all through one firing path
// (docs/tracetrigger.md): Alertmanager notifications (spec.alert), a cron
// schedule (spec.schedule) and the annotation observe.alexeldeib.xyz/fire.
// Each firing creates ordinary single-target TraceJobs from spec.template,
// owned by the trigger, with deterministic names.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TraceJobSpec, Condition } from '../tracejob/schema.ts';
import { RunResult } from './run-result.ts';
import { API_GROUP_VERSION, LIMITS } from '../tracejob/constants.ts';
import { DNS_SUBDOMAIN_MAX } from '../tracejob/formats.ts';
import { ObjectMeta } from '../tracejob/schema.ts';
import {
  DEFAULT_NODE_LABELS,
  DEFAULT_POD_LABELS,
  FIRE_ANNOTATION_KEY,
  TRIGGER_KIND,
  TRIGGER_LIMITS as L,
} from './constants.ts';

const LABEL_NAME_PATTERN = '^[a-zA-Z_][a-zA-Z0-9_]*$';
const labelName = (description: string) =>
  Type.String({ minLength: 1, maxLength: L.labelNameLength, pattern: LABEL_NAME_PATTERN, description });

const count = (description: string) => Type.Integer({ format: 'int64', minimum: 0, description });

export const PodLabels = Type.Object(
  {
    namespace: Type.Optional(
      labelName(`Alert label holding the pod's namespace (default "${DEFAULT_POD_LABELS.namespace}").`),
    ),
    pod: Type.Optional(labelName(`Alert label holding the pod's name (default "${DEFAULT_POD_LABELS.pod}").`)),
    container: Type.Optional(
      labelName(
        `Alert label holding the container's name (default "${DEFAULT_POD_LABELS.container}"); when absent the pod's first container is traced.`,
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      "Which alert labels name the pod when targetKind is Pod. The pod must be in the trigger's namespace (a TraceJob traces pods of its own namespace).",
  },
);

export const AlertSource = Type.Object(
  {
    matchers: Type.Array(
      Type.String({ minLength: 1, maxLength: L.matcherLength, description: 'One matcher, e.g. alertname="X".' }),
      {
        minItems: 1,
        maxItems: L.matchers,
        description:
          'Alertmanager matchers an alert must all satisfy to fire this trigger: label="value", label!="value", label=~"regex", label!~"regex" (regexes are anchored, as in Alertmanager). Example: [\'alertname="NodeDiskLatencyHigh"\', \'severity=~"warning|critical"\'].',
      },
    ),
    targetKind: Type.Optional(
      Type.Union([Type.Literal('Node'), Type.Literal('Pod')], {
        default: 'Node',
        description:
          'Node: trace the node the alert names (nodeLabels). Pod: trace the pod the alert names (podLabels), with spec.targetPod. Default Node.',
      }),
    ),
    nodeLabels: Type.Optional(
      Type.Array(labelName('An alert label name.'), {
        minItems: 1,
        maxItems: L.nodeLabels,
        description: `Alert labels that name the node, tried in order; the first that resolves wins. A value matches a Node's name, its kubernetes.io/hostname label or its InternalIP; "host:port" and "ip:port" (Prometheus' instance label) are matched by their host part. Default: ${DEFAULT_NODE_LABELS.join(', ')}.`,
      }),
    ),
    podLabels: Type.Optional(PodLabels),
    stopOnResolved: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'When true, a resolved notification for an alert stops the TraceJob it started (spec.stop: bpftrace prints its maps and the output is kept).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Fire on Alertmanager notifications (webhook payload version 4) posted to /alertmanager/namespaces/<namespace>/tracetriggers/<name> on the manager. The sender authenticates with a bearer token and needs create on the tracetriggers/alerts subresource (ClusterRole tracetrigger-alerts).',
  },
);

export const LabelSelectorRequirement = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 317, description: 'Label key.' }),
    operator: Type.Union(
      [Type.Literal('In'), Type.Literal('NotIn'), Type.Literal('Exists'), Type.Literal('DoesNotExist')],
      { description: 'In, NotIn, Exists or DoesNotExist.' },
    ),
    values: Type.Optional(
      Type.Array(Type.String({ maxLength: 63 }), {
        maxItems: 64,
        description: 'Values for In and NotIn; empty for Exists and DoesNotExist.',
      }),
    ),
  },
  { additionalProperties: false, description: 'A label selector requirement (metav1.LabelSelectorRequirement).' },
);

export const NodeSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: 63 }), { description: 'Labels a node must have.' }),
    ),
    matchExpressions: Type.Optional(
      Type.Array(LabelSelectorRequirement, { maxItems: 32, description: 'Requirements a node must meet.' }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Nodes a schedule or annotation firing traces, one TraceJob per Ready node (a metav1.LabelSelector over Nodes; {} selects every node). An alert that names a node traces only that node; an alert that names none (no node label set) traces the selected nodes.',
  },
);

// spec.stop is left out too: a template cannot ask for a stopped trace.
const TEMPLATE_EXCLUDED = new Set(['hostname', 'targetPod', 'stop']);
const templateSpecProperties = Object.fromEntries(
  Object.entries(TraceJobSpec.properties).filter(([name]) => !TEMPLATE_EXCLUDED.has(name)),
) as Record<string, TSchema>;

/** A TraceJob spec without a target: the firing sets spec.hostname or spec.targetPod. */
export const TraceJobTemplateSpec = Type.Object(templateSpecProperties, {
  additionalProperties: false,
  description:
    'The TraceJob spec of every TraceJob this trigger creates, without hostname, targetPod or stop: each firing sets the target. See `kubectl explain tracejob.spec`.',
  'x-kubernetes-validations': [
    {
      rule: 'has(self.program) != has(self.programFrom)',
      message: 'set exactly one of template.spec.program or template.spec.programFrom',
    },
  ],
});

export const TraceJobTemplate = Type.Object(
  {
    metadata: Type.Optional(
      Type.Object(
        {
          labels: Type.Optional(
            Type.Record(Type.String(), Type.String({ maxLength: 63 }), {
              description: 'Labels added to every created TraceJob.',
            }),
          ),
          annotations: Type.Optional(
            Type.Record(Type.String(), Type.String(), { description: 'Annotations added to every created TraceJob.' }),
          ),
        },
        { additionalProperties: false, description: 'Labels and annotations of the created TraceJobs.' },
      ),
    ),
    spec: TraceJobTemplateSpec,
  },
  { additionalProperties: false, description: 'The TraceJob to create on each firing, without a target.' },
);

const concurrencyPolicy = Type.Union([Type.Literal('Allow'), Type.Literal('Forbid'), Type.Literal('Replace')], {
  default: 'Forbid',
  description:
    'What a schedule or annotation firing does while an earlier run of this trigger is unfinished: Allow (start another), Forbid (do not start yet; a due schedule time starts when the active run ends, unless startingDeadlineSeconds has passed or a later time has come, as with CronJob; a fire value waits the same way), Replace (stop the running traces, keeping their maps, then start). Default Forbid.',
});

export const TraceTriggerSpec = Type.Object(
  {
    alert: Type.Optional(AlertSource),
    schedule: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: L.scheduleLength,
        description:
          'Fire on a schedule, in cron syntax ("*/15 * * * *": every 15 minutes), across the nodes of nodeSelector.',
      }),
    ),
    timeZone: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: L.timeZoneLength,
        description: 'IANA time zone of the schedule, e.g. Etc/UTC or Europe/Berlin. Default: Etc/UTC.',
      }),
    ),
    concurrencyPolicy: Type.Optional(concurrencyPolicy),
    startingDeadlineSeconds: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 1,
        maximum: L.maxStartingDeadlineSeconds,
        description:
          'A scheduled firing missed by more than this many seconds (the manager was down) is skipped rather than run late. Default: no deadline, only the latest missed firing runs.',
      }),
    ),
    nodeSelector: Type.Optional(NodeSelector),
    maxNodes: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 1,
        maximum: L.maxMaxNodes,
        default: L.defaultMaxNodes,
        description: `A schedule or annotation firing whose nodeSelector matches more Ready nodes than this creates nothing; the Ready condition (reason TooManyNodes) says how many matched. The operator's --max-fleet-nodes caps it as well. Default ${L.defaultMaxNodes}.`,
      }),
    ),
    cooldownSeconds: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        maximum: L.maxCooldownSeconds,
        default: L.defaultCooldownSeconds,
        description: `After a TraceJob for a target (node or pod) was created, further alert firings for the same target within this many seconds are suppressed (reason cooldown). Kept in the cluster: the created TraceJobs' creation times. Default ${L.defaultCooldownSeconds}.`,
      }),
    ),
    maxActive: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 1,
        maximum: L.maxMaxActive,
        default: L.defaultMaxActive,
        description: `At most this many unfinished TraceJobs from this trigger at once; further firings are suppressed (reason maxActive). Default ${L.defaultMaxActive}.`,
      }),
    ),
    successfulRunsHistoryLimit: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        maximum: L.maxHistory,
        default: L.defaultSuccessfulHistory,
        description: `Succeeded TraceJobs of this trigger to keep; older ones are deleted, oldest first, once their target's cooldown has passed. Default ${L.defaultSuccessfulHistory}.`,
      }),
    ),
    failedRunsHistoryLimit: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        maximum: L.maxHistory,
        default: L.defaultFailedHistory,
        description: `Failed TraceJobs of this trigger to keep, deleted like successful ones. Default ${L.defaultFailedHistory}.`,
      }),
    ),
    suspend: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'When true, nothing fires: notifications, schedules and the fire annotation are counted as suppressed (reason suspended). Running TraceJobs are not stopped.',
      }),
    ),
    template: TraceJobTemplate,
  },
  {
    additionalProperties: false,
    description: `When and where to trace: on Alertmanager alerts (alert), on a schedule (schedule + nodeSelector), or on demand (a new value of the annotation ${FIRE_ANNOTATION_KEY}); each firing creates TraceJobs from template.`,
    'x-kubernetes-validations': [
      { rule: '!has(self.timeZone) || has(self.schedule)', message: 'timeZone needs a schedule' },
      {
        rule: '!has(self.startingDeadlineSeconds) || has(self.schedule)',
        message: 'startingDeadlineSeconds needs a schedule',
      },
      { rule: '!has(self.schedule) || has(self.nodeSelector)', message: 'a schedule needs a nodeSelector' },
    ],
  },
);

export const FiringSource = Type.Union([Type.Literal('alert'), Type.Literal('schedule'), Type.Literal('annotation')], {
  description: 'What fired: alert, schedule or annotation.',
});

export const LastFired = Type.Object(
  {
    time: Type.String({ format: 'date-time', description: 'When the trigger last created a TraceJob.' }),
    by: FiringSource,
    run: Type.Optional(
      Type.String({
        maxLength: 512,
        description: 'The firing: an alert fingerprint@startsAt, a schedule time or an annotation value.',
      }),
    ),
    traceJobs: Type.Optional(
      Type.Array(Type.String({ maxLength: DNS_SUBDOMAIN_MAX }), {
        maxItems: L.runTraceJobs,
        description: 'TraceJobs that firing created.',
      }),
    ),
  },
  { description: 'The last firing that created TraceJobs.' },
);

export const ActiveTraceJob = Type.Object(
  {
    name: Type.String({ maxLength: DNS_SUBDOMAIN_MAX, description: 'TraceJob name.' }),
    target: Type.Optional(Type.String({ maxLength: 512, description: 'node/<name> or pod/<namespace>/<name>.' })),
    phase: Type.Optional(Type.String({ maxLength: 32, description: 'The TraceJob phase.' })),
  },
  { description: 'An unfinished TraceJob of this trigger.' },
);

export const RunTraceJob = Type.Object(
  {
    name: Type.String({ maxLength: DNS_SUBDOMAIN_MAX, description: 'TraceJob name.' }),
    node: Type.Optional(Type.String({ maxLength: DNS_SUBDOMAIN_MAX, description: 'Node it traces.' })),
    phase: Type.Optional(Type.String({ maxLength: 32, description: 'The TraceJob phase.' })),
  },
  { description: 'One TraceJob of a run.' },
);

export const Run = Type.Object(
  {
    id: Type.String({ maxLength: 512, description: 'Run id (schedule time or annotation value).' }),
    time: Type.String({ format: 'date-time', description: 'When the run fired.' }),
    by: FiringSource,
    traceJobs: Type.Array(RunTraceJob, { maxItems: L.runTraceJobs, description: 'The TraceJobs of this run.' }),
    phase: Type.Optional(
      Type.String({
        maxLength: 32,
        description:
          'Running until every TraceJob finished, then Succeeded (all traces ended well), PartiallyFailed (some failed: result.partial) or Failed (all failed).',
      }),
    ),
    suppressed: Type.Optional(count('Targets of this run that were suppressed (see counts).')),
    result: Type.Optional(RunResult),
  },
  { description: 'A schedule or annotation firing across nodes, and its merged result.' },
);

export const TriggerCounts = Type.Object(
  {
    notifications: Type.Optional(count('Alertmanager notifications received for this trigger.')),
    alerts: Type.Optional(count('Alerts in those notifications that matched spec.alert.matchers.')),
    fired: Type.Optional(count('TraceJobs created.')),
    deduplicated: Type.Optional(count('Firings whose TraceJob already existed (a repeated delivery).')),
    cooldown: Type.Optional(count('Suppressed: the target had a TraceJob within cooldownSeconds.')),
    maxActive: Type.Optional(count('Suppressed: maxActive TraceJobs were unfinished.')),
    suspended: Type.Optional(count('Suppressed: spec.suspend was true.')),
    rateLimited: Type.Optional(count("Suppressed: the operator's --max-triggered-per-minute was reached.")),
    unresolved: Type.Optional(count('Suppressed: the alert labels named no node or pod that exists.')),
    stopped: Type.Optional(count('TraceJobs stopped by a resolved notification (stopOnResolved).')),
    runs: Type.Optional(count('Schedule and annotation runs started.')),
    missedSchedules: Type.Optional(
      count('Schedule times not started because a later one was due when the manager looked (downtime, suspend).'),
    ),
    startingDeadline: Type.Optional(
      count('Schedule times skipped because they were found later than startingDeadlineSeconds.'),
    ),
    tooManyNodes: Type.Optional(count('Runs refused because nodeSelector matched more Ready nodes than the cap.')),
    noNodes: Type.Optional(count('Runs with no Ready node to trace.')),
    replaced: Type.Optional(count('Runs stopped by a newer one under concurrencyPolicy Replace.')),
  },
  { description: 'Counters since the trigger was created, kept in the cluster so restarts forget nothing.' },
);

export const TraceTriggerStatus = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', minimum: 0, description: 'metadata.generation the operator last acted on.' }),
    ),
    conditions: Type.Optional(
      Type.Array(Condition, {
        maxItems: LIMITS.conditions,
        description:
          'Ready (the spec is valid and the trigger can fire; the message names the webhook path), Unresolved (True while the last alert named no node or pod; the message lists the labels seen).',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      }),
    ),
    webhookPath: Type.Optional(
      Type.String({ maxLength: 1024, description: 'Path on the manager webhook that fires this trigger.' }),
    ),
    lastFired: Type.Optional(LastFired),
    active: Type.Optional(
      Type.Array(ActiveTraceJob, { maxItems: L.activeEntries, description: 'Unfinished TraceJobs of this trigger.' }),
    ),
    runs: Type.Optional(
      Type.Array(Run, { maxItems: L.runs, description: 'Recent schedule and annotation runs, newest first.' }),
    ),
    lastScheduleTime: Type.Optional(
      Type.String({ format: 'date-time', description: 'The last schedule time that was handled (run or skipped).' }),
    ),
    lastHandledFire: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: `The last value of the annotation ${FIRE_ANNOTATION_KEY} that was handled; a different value fires again.`,
      }),
    ),
    counts: Type.Optional(TriggerCounts),
  },
  { description: 'What the operator observed and did. Written only by the operator.' },
);

export const TraceTriggerObject = Type.Object({
  apiVersion: Type.Literal(API_GROUP_VERSION),
  kind: Type.Literal(TRIGGER_KIND),
  metadata: ObjectMeta,
  spec: TraceTriggerSpec,
  status: Type.Optional(TraceTriggerStatus),
});

export type PodLabels = Static<typeof PodLabels>;
export type AlertSource = Static<typeof AlertSource>;
export type NodeSelector = Static<typeof NodeSelector>;
export type LabelSelectorRequirement = Static<typeof LabelSelectorRequirement>;
export type TraceJobTemplateSpec = Static<typeof TraceJobTemplateSpec>;
export type TraceJobTemplate = Static<typeof TraceJobTemplate>;
export type TraceTriggerSpec = Static<typeof TraceTriggerSpec>;
export type FiringSource = Static<typeof FiringSource>;
export type LastFired = Static<typeof LastFired>;
export type ActiveTraceJob = Static<typeof ActiveTraceJob>;
export type RunTraceJob = Static<typeof RunTraceJob>;
export type Run = Static<typeof Run>;
export type TriggerCounts = Static<typeof TriggerCounts>;
export type TraceTriggerStatus = Static<typeof TraceTriggerStatus>;
export type TraceTrigger = Static<typeof TraceTriggerObject>;
