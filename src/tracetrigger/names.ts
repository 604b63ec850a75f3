// Deterministic names and label values of the TraceJobs a trigger creates.
// A TraceJob's name is a pure function of (trigger uid, firing key, target
// key), so every delivery of the same firing (Alertmanager re-sends, an HA
// pair, a retry after a 503, a restarted manager) computes the same name and
// the create-if-absent makes it one TraceJob.
import { createHash } from 'node:crypto';
import { isLabelValue } from '../tracejob/formats.ts';

/** A target of a firing, as its key: node/<nodeName> or pod/<namespace>/<pod>[/<container>]. */
export type TargetKey = string;

export function nodeTargetKey(nodeName: string): TargetKey {
  return `node/${nodeName}`;
}

export function podTargetKey(namespace: string, pod: string, container?: string): TargetKey {
  return container === undefined ? `pod/${namespace}/${pod}` : `pod/${namespace}/${pod}/${container}`;
}

/** The firing key of an alert: one firing is one (fingerprint, startsAt). */
export function alertFiringKey(fingerprint: string, startsAt: string): string {
  return `${fingerprint}@${normalizeTime(startsAt)}`;
}

/** startsAt as an instant, so "…:00Z" and "…:00.000Z" (the same time) give one key. */
function normalizeTime(time: string): string {
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? time : new Date(ms).toISOString();
}

function digest(parts: readonly string[], hexChars: number): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${part.length}:${part}`);
  return hash.digest('hex').slice(0, hexChars);
}

const NAME_PREFIX_MAX = 40;

/**
 * The TraceJob name: `<trigger name (up to 40 chars)>-<16 hex chars>`, the
 * hex being sha256(trigger uid, firing key, target key). 64 bits make a
 * collision between two different firings of one trigger negligible.
 */
export function traceJobName(trigger: { name: string; uid: string }, firingKey: string, target: TargetKey): string {
  const prefix = trigger.name.slice(0, NAME_PREFIX_MAX).replace(/[^a-z0-9]+$/, '');
  const hash = digest([trigger.uid, firingKey, target], 16);
  return prefix === '' ? `tt-${hash}` : `${prefix}-${hash}`;
}

/** The target-hash label value, so a target's TraceJobs can be selected (a node name can exceed 63 characters). */
export function targetHash(target: TargetKey): string {
  return digest([target], 16);
}

/** A value usable as a label: itself when valid, else a readable prefix and a hash. */
export function labelSafe(value: string): string {
  if (isLabelValue(value)) return value;
  const cleaned = value
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 40)
    .replace(/[^A-Za-z0-9]+$/, '');
  const hash = digest([value], 10);
  return cleaned === '' ? hash : `${cleaned}-${hash}`;
}
