// The owned ConfigMap that keeps a finished trace's full text output, so it
// outlives the pod (docs/design.md, Guarantees: output kept). Size-bounded: the end of
// the output is kept, because bpftrace prints its final maps last.
import type { V1ConfigMap } from '@kubernetes/client-node';
import {
  LIMITS,
  MANAGED_BY_LABEL_KEY,
  MANAGED_BY_VALUE,
  OUTPUT_ID_LABEL_KEY,
  OUTPUT_KEY,
  OUTPUT_NAME_SUFFIX,
  TRACEJOB_ANNOTATION_KEY,
} from './constants.ts';
import { ownerReference, traceId, traceObjectName } from './mapping.ts';
import type { OutputReference, TraceJob } from './schema.ts';

/** Name of the output ConfigMap: `kubectl-trace-<id>-output`. */
export function outputConfigMapName(id: string): string {
  return `${traceObjectName(id)}${OUTPUT_NAME_SUFFIX}`;
}

const TRUNCATION_NOTE = '[trace-operator: output truncated, the beginning was dropped]\n';

/**
 * The last `maxBytes` bytes of `text` (cut at a line start when one is
 * near, never inside a UTF-8 sequence), and whether anything was dropped.
 */
export function keepTail(text: string, maxBytes: number): { text: string; truncated: boolean; bytes: number } {
  const encoded = new TextEncoder().encode(text);
  if (encoded.byteLength <= maxBytes) return { text, truncated: false, bytes: encoded.byteLength };
  const budget = Math.max(0, maxBytes - new TextEncoder().encode(TRUNCATION_NOTE).byteLength);
  let start = encoded.byteLength - budget;
  // Move forward past UTF-8 continuation bytes (10xxxxxx).
  while (start < encoded.byteLength && ((encoded[start] ?? 0) & 0xc0) === 0x80) start++;
  let tail = new TextDecoder().decode(encoded.subarray(start));
  // Drop the partial first line, unless the cut fell on a line start.
  const newline = tail.indexOf('\n');
  if (encoded[start - 1] !== 0x0a && newline !== -1 && newline < 4096) tail = tail.slice(newline + 1);
  return { text: `${TRUNCATION_NOTE}${tail}`, truncated: true, bytes: encoded.byteLength };
}

/**
 * The output ConfigMap for `traceJob` holding `text`, and the reference to
 * store in status.output. Owned by the TraceJob, so it lives exactly as long
 * as the TraceJob. It does not carry the kubectl-trace labels, so
 * `kubectl trace delete <id>` (which deletes ConfigMaps by those labels)
 * leaves the kept output alone.
 */
export function buildOutputConfigMap(
  traceJob: TraceJob,
  text: string,
  maxBytes: number = LIMITS.outputBytes,
): { configMap: V1ConfigMap; reference: OutputReference } {
  const id = traceId(traceJob);
  const name = outputConfigMapName(id);
  const kept = keepTail(text, maxBytes);
  const namespace = traceJob.metadata.namespace;
  return {
    configMap: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        ...(namespace === undefined ? {} : { namespace }),
        labels: { [OUTPUT_ID_LABEL_KEY]: id, [MANAGED_BY_LABEL_KEY]: MANAGED_BY_VALUE },
        annotations: { [TRACEJOB_ANNOTATION_KEY]: traceJob.metadata.name },
        ownerReferences: [ownerReference(traceJob)],
      },
      data: { [OUTPUT_KEY]: kept.text },
    },
    reference: { configMapName: name, key: OUTPUT_KEY, bytes: kept.bytes, truncated: kept.truncated },
  };
}
