// A firing: what one source (an alert notification, a schedule tick, the
// fire annotation) asks a trigger to trace, as a list of items, each one
// target under one firing key. The one firing path (controller/
// tracetrigger-firing.ts) turns every item into a deterministic TraceJob
// name, applies the limits (limits.ts) and creates what is allowed, if
// absent. This module holds the pure parts: the types and the TraceJob an
// item becomes.
import type { V1OwnerReference } from '@kubernetes/client-node';
import { API_GROUP_VERSION, KIND } from '../tracejob/constants.ts';
import type { TraceJob, TraceJobSpec } from '../tracejob/schema.ts';
import {
  ALERT_FINGERPRINT_ANNOTATION_KEY,
  ALERT_GENERATOR_URL_ANNOTATION_KEY,
  ALERT_STARTS_AT_ANNOTATION_KEY,
  ALERT_SUMMARY_ANNOTATION_KEY,
  ALERTNAME_LABEL_KEY,
  FIRED_BY_LABEL_KEY,
  FIRING_KEY_ANNOTATION_KEY,
  RUN_ANNOTATION_KEY,
  TARGET_ANNOTATION_KEY,
  TARGET_LABEL_KEY,
  TRIGGER_KIND,
  TRIGGER_LABEL_KEY,
} from './constants.ts';
import { labelSafe, targetHash } from './names.ts';
import { RUN_LABEL_KEY } from './run.ts';
import type { FiringSource, TraceTrigger } from './schema.ts';
import type { Target, TargetResolution } from './target.ts';

/** What an alert contributes to the TraceJob it starts (labels, annotations). */
export interface AlertFacts {
  alertname: string;
  fingerprint: string;
  startsAt: string;
  summary?: string | undefined;
  generatorURL?: string | undefined;
}

export interface FiringItem {
  /** One firing of one thing: alert fingerprint@startsAt, a schedule time or an annotation value. */
  key: string;
  /** Where to trace, or why there is nowhere to. */
  resolution: TargetResolution;
  alert?: AlertFacts;
}

export interface Firing {
  source: FiringSource;
  /** Run id of a schedule or annotation firing (status.runs[].id); absent for alerts. */
  runId?: string;
  items: FiringItem[];
  /** Apply spec.cooldownSeconds (default true; a fleet run may choose not to). */
  cooldown?: boolean;
  /** Apply spec.maxActive (default true; a fleet run is one run of many TraceJobs, held by concurrencyPolicy instead). */
  maxActive?: boolean;
  /** Apply the operator-wide --max-triggered-per-minute (default true; a fleet run is bounded by maxNodes instead). */
  rateLimit?: boolean;
}

const MAX_ANNOTATION = 2048;
const clip = (value: string): string =>
  value.length > MAX_ANNOTATION ? `${value.slice(0, MAX_ANNOTATION - 3)}...` : value;

export function triggerOwnerReference(trigger: TraceTrigger): V1OwnerReference {
  const uid = trigger.metadata.uid;
  if (uid === undefined || uid === '')
    throw new Error(`TraceTrigger ${trigger.metadata.name} has no metadata.uid; read it from the API server first`);
  return {
    apiVersion: API_GROUP_VERSION,
    kind: TRIGGER_KIND,
    name: trigger.metadata.name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The TraceJob one item of a firing becomes: the template, the target, and labels and annotations that say why. */
export function buildTriggeredTraceJob(
  trigger: TraceTrigger,
  source: FiringSource,
  name: string,
  item: FiringItem & { resolution: { ok: true; target: Target } },
  runId?: string,
): TraceJob & { metadata: { ownerReferences: V1OwnerReference[] } } {
  const target = item.resolution.target;
  const template = trigger.spec.template;
  const spec: TraceJobSpec = {
    ...structuredClone(template.spec),
    ...(target.kind === 'node'
      ? { hostname: target.nodeName }
      : {
          targetPod: { name: target.pod, ...(target.container === undefined ? {} : { container: target.container }) },
        }),
  };
  const labels: Record<string, string> = {
    ...(template.metadata?.labels ?? {}),
    [TRIGGER_LABEL_KEY]: labelSafe(trigger.metadata.name),
    [FIRED_BY_LABEL_KEY]: source,
    [TARGET_LABEL_KEY]: targetHash(target.key),
  };
  const annotations: Record<string, string> = {
    ...(template.metadata?.annotations ?? {}),
    [TARGET_ANNOTATION_KEY]: target.key,
    [FIRING_KEY_ANNOTATION_KEY]: clip(item.key),
  };
  if (runId !== undefined) {
    annotations[RUN_ANNOTATION_KEY] = clip(runId);
    labels[RUN_LABEL_KEY] = labelSafe(runId);
  }
  const alert = item.alert;
  if (alert !== undefined) {
    labels[ALERTNAME_LABEL_KEY] = labelSafe(alert.alertname);
    annotations[ALERT_FINGERPRINT_ANNOTATION_KEY] = alert.fingerprint;
    annotations[ALERT_STARTS_AT_ANNOTATION_KEY] = alert.startsAt;
    if (alert.summary !== undefined && alert.summary !== '')
      annotations[ALERT_SUMMARY_ANNOTATION_KEY] = clip(alert.summary);
    if (alert.generatorURL !== undefined && alert.generatorURL !== '')
      annotations[ALERT_GENERATOR_URL_ANNOTATION_KEY] = clip(alert.generatorURL);
  }
  return {
    apiVersion: API_GROUP_VERSION,
    kind: KIND,
    metadata: {
      name,
      namespace: trigger.metadata.namespace ?? 'default',
      labels,
      annotations,
      ownerReferences: [triggerOwnerReference(trigger)],
    },
    spec,
  };
}
