// Detecting a spec change after the trace started. A trace runs once, so a
// changed spec is never applied to a running or finished trace; instead the
// controller reports SpecApplied=False (the original operator ignored such
// changes silently). The Job records a hash of the spec it was built from.
import { createHash } from 'node:crypto';
import type { V1Job } from '@kubernetes/client-node';
import { canonicalJson } from './canonical-json.ts';
import { API_GROUP } from './constants.ts';
import { CONDITION_TYPES, REASONS, type ConditionUpdate } from './conditions.ts';
import type { TraceJobSpec } from './schema.ts';

/** Annotation on the Job: hash of the spec fields the Job was built from. */
export const SPEC_HASH_ANNOTATION_KEY = `${API_GROUP}/spec-hash`;

/** Fields that may change after the start without being a change to the trace (they take effect). */
const MUTABLE_FIELDS: ReadonlySet<string> = new Set(['stop', 'ttlSecondsAfterFinished', 'startTimeoutSeconds']);

/** A short, stable hash of the fields that define the trace (not stop or ttlSecondsAfterFinished). */
export function specHash(spec: TraceJobSpec): string {
  const relevant = Object.fromEntries(Object.entries(spec).filter(([key]) => !MUTABLE_FIELDS.has(key)));
  return createHash('sha256').update(canonicalJson(relevant)).digest('hex').slice(0, 16);
}

/**
 * True when the Job was built from a different spec than `spec`. A Job
 * without the annotation (not created by this operator) counts as unchanged.
 */
export function specChangedAfterStart(spec: TraceJobSpec, job: V1Job | undefined): boolean {
  const recorded = job?.metadata?.annotations?.[SPEC_HASH_ANNOTATION_KEY];
  return recorded !== undefined && recorded !== specHash(spec);
}

/** The SpecApplied condition for the current spec and Job. */
export function specAppliedCondition(spec: TraceJobSpec, job: V1Job | undefined): ConditionUpdate {
  return specChangedAfterStart(spec, job)
    ? {
        type: CONDITION_TYPES.SpecApplied,
        status: 'False',
        reason: REASONS.SpecChangedAfterStart,
        message:
          'The spec changed after the trace started; a trace runs once with the spec it started with (only spec.stop and spec.ttlSecondsAfterFinished take effect). Create a new TraceJob to trace with the new spec.',
      }
    : {
        type: CONDITION_TYPES.SpecApplied,
        status: 'True',
        reason: REASONS.SpecApplied,
        message: 'The trace runs with the current spec.',
      };
}
