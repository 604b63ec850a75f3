// Names, label keys and bounds of the TraceTrigger API (design.md §7). The
// webhook, the trigger controller and the schedule/annotation/fleet sources
// all take them from here.
import { API_GROUP } from '../tracejob/constants.ts';

export const TRIGGER_KIND = 'TraceTrigger';
export const TRIGGER_LIST_KIND = 'TraceTriggerList';
export const TRIGGER_PLURAL = 'tracetriggers';
export const TRIGGER_SINGULAR = 'tracetrigger';
export const TRIGGER_SHORT_NAMES = ['ttr'] as const;
export const TRIGGER_CRD_NAME = `${TRIGGER_PLURAL}.${API_GROUP}`;
/** The subresource whose `create` permission says who may fire a trigger through the webhook. */
export const ALERTS_SUBRESOURCE = 'alerts';

/** Labels on every TraceJob a trigger creates (values are label-safe, see names.ts). */
export const TRIGGER_LABEL_KEY = `${API_GROUP}/tracetrigger`;
export const ALERTNAME_LABEL_KEY = `${API_GROUP}/alertname`;
/** What fired it: alert, schedule or annotation. */
export const FIRED_BY_LABEL_KEY = `${API_GROUP}/fired-by`;
/** A short hash of the target key, so cooldowns can select a target's TraceJobs by label. */
export const TARGET_LABEL_KEY = `${API_GROUP}/target-hash`;

/** Annotations on every TraceJob a trigger creates, so `kubectl describe tj` says why it ran. */
export const TARGET_ANNOTATION_KEY = `${API_GROUP}/target`;
export const FIRING_KEY_ANNOTATION_KEY = `${API_GROUP}/firing-key`;
export const RUN_ANNOTATION_KEY = `${API_GROUP}/run`;
export const ALERT_SUMMARY_ANNOTATION_KEY = `${API_GROUP}/alert-summary`;
export const ALERT_FINGERPRINT_ANNOTATION_KEY = `${API_GROUP}/alert-fingerprint`;
export const ALERT_STARTS_AT_ANNOTATION_KEY = `${API_GROUP}/alert-starts-at`;
export const ALERT_GENERATOR_URL_ANNOTATION_KEY = `${API_GROUP}/alert-generator-url`;
/** Annotation on a TraceTrigger whose new value fires it once (issue 14). */
export const FIRE_ANNOTATION_KEY = `${API_GROUP}/fire`;

/** Alert labels that name a node, in the order tried, when spec.alert.nodeLabels is unset. */
export const DEFAULT_NODE_LABELS = ['node', 'instance', 'kubernetes_node'] as const;
/** Alert labels that name a pod, when spec.alert.podLabels leaves one unset. */
export const DEFAULT_POD_LABELS = { namespace: 'namespace', pod: 'pod', container: 'container' } as const;

export const TRIGGER_LIMITS = {
  matchers: 32,
  matcherLength: 1024,
  nodeLabels: 8,
  labelNameLength: 128,
  defaultCooldownSeconds: 600,
  maxCooldownSeconds: 7 * 24 * 3600,
  defaultMaxActive: 3,
  maxMaxActive: 1000,
  defaultMaxNodes: 50,
  maxMaxNodes: 1000,
  defaultSuccessfulHistory: 10,
  defaultFailedHistory: 3,
  maxHistory: 1000,
  maxStartingDeadlineSeconds: 24 * 3600,
  /** status.active and status.runs lists. */
  activeEntries: 100,
  runs: 20,
  runTraceJobs: 100,
  scheduleLength: 256,
  timeZoneLength: 64,
} as const;

/** The reasons a firing of one target is not turned into a new TraceJob, as counted and reported. */
export const SUPPRESSION_REASONS = ['cooldown', 'maxActive', 'suspended', 'rateLimited', 'unresolved'] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

export const FIRING_SOURCES = ['alert', 'schedule', 'annotation'] as const;
