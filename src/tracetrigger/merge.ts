// Merges the results of one run's TraceJobs (one per node) into the run's
// result: which nodes contributed, failed or still run, and their maps
// combined by name. Pure.
//
// - Histograms of the same map and key are summed bucket by bucket. Nodes
//   running one program have the same bucket bounds; where they do not (a
//   node's result was coarsened to fit its size limit), overlapping buckets
//   are joined into one that spans them, so no sample is counted twice or
//   placed in a bucket that does not hold it. p50/p90/p99 are recomputed
//   from the sum with the runner's estimator, before the sum is cut to
//   RUN_RESULT_LIMITS.bucketsPerHistogram (neighbours joined, as the runner
//   does).
// - Integer scalars and keyed values are added: right for count() and sum(),
//   the usual fleet questions; a map whose values are not integers is merged
//   only when every node has the same value, otherwise listed in `unmerged`.
// - A failed node's maps are left out and the run says it is partial.
import { histogramTotal, mergeBuckets, percentiles } from '../runner/histogram.ts';
import type { Histogram, HistogramBucket, MapEntry, MapResult, TraceResult } from '../tracejob/result.ts';
import { RUN_RESULT_LIMITS, type FailedNode, type RunResult } from './run-result.ts';

export type NodeTracePhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

/** One TraceJob of a run, as the trigger controller reads it. */
export interface NodeTrace {
  node: string;
  traceJob: string;
  /** status.phase; undefined while the TraceJob controller has not written it. */
  phase?: NodeTracePhase;
  result?: TraceResult;
  /** Why it failed (the Failed condition's message), for failed nodes. */
  message?: string;
}

const FAILED_OUTCOMES: ReadonlySet<string> = new Set(['CompileError', 'AttachError', 'Error']);

type NodeClass = 'contributed' | 'failed' | 'running';

/** Whether a node's trace has ended well (its maps count), failed, or still runs. */
export function classifyNodeTrace(trace: NodeTrace): NodeClass {
  if (trace.phase === 'Failed') return 'failed';
  if (trace.phase !== 'Succeeded') return 'running';
  if (trace.result !== undefined && FAILED_OUTCOMES.has(trace.result.outcome)) return 'failed';
  return 'contributed';
}

export function mergeRunResults(traces: readonly NodeTrace[]): RunResult {
  const sorted = [...traces].sort((a, b) => compareStrings(a.node, b.node) || compareStrings(a.traceJob, b.traceJob));
  const contributed: NodeTrace[] = [];
  const failed: FailedNode[] = [];
  const running: string[] = [];
  for (const trace of sorted) {
    const kind = classifyNodeTrace(trace);
    if (kind === 'contributed') contributed.push(trace);
    else if (kind === 'failed') failed.push(failedNode(trace));
    else running.push(trace.node);
  }
  const merged = mergeMaps(contributed.flatMap((t) => (t.result === undefined ? [] : [t.result])));
  const result: RunResult = {
    complete: running.length === 0,
    partial: failed.length > 0,
    nodes: {
      selected: sorted.length,
      contributed: contributed.length,
      failed: failed.length,
      running: running.length,
    },
    maps: merged.maps,
    truncated: merged.truncated,
  };
  if (failed.length > 0) result.failedNodes = failed.slice(0, RUN_RESULT_LIMITS.listedNodes);
  if (running.length > 0) result.runningNodes = running.slice(0, RUN_RESULT_LIMITS.listedNodes);
  if (merged.unmerged.length > 0) result.unmerged = merged.unmerged.slice(0, RUN_RESULT_LIMITS.maps);
  return result;
}

function failedNode(trace: NodeTrace): FailedNode {
  const message = trace.message ?? trace.result?.message;
  const out: FailedNode = { node: trace.node, traceJob: trace.traceJob };
  if (message !== undefined) out.message = clip(message, RUN_RESULT_LIMITS.messageLength);
  return out;
}

interface MergedMaps {
  maps: MapResult[];
  unmerged: string[];
  truncated: boolean;
}

/** Merges the maps of several results by map name, in the order the names first appear. */
export function mergeMaps(results: readonly TraceResult[]): MergedMaps {
  const byName = new Map<string, MapResult[]>();
  let truncated = false;
  for (const result of results) {
    if (result.truncated) truncated = true;
    for (const map of result.maps) {
      const list = byName.get(map.name);
      if (list === undefined) byName.set(map.name, [map]);
      else list.push(map);
    }
  }
  const maps: MapResult[] = [];
  const unmerged: string[] = [];
  for (const [name, parts] of byName) {
    const merged = mergeMap(name, parts);
    if (merged === undefined) {
      unmerged.push(name);
      continue;
    }
    if (maps.length >= RUN_RESULT_LIMITS.maps) {
      truncated = true;
      continue;
    }
    if (merged.truncated === true) truncated = true;
    maps.push(merged);
  }
  return { maps, unmerged, truncated };
}

/** One map merged across nodes, or undefined when the parts cannot be merged. */
function mergeMap(name: string, parts: readonly MapResult[]): MapResult | undefined {
  const first = parts[0];
  if (first === undefined || parts.some((p) => p.kind !== first.kind)) return undefined;
  const inputTruncated = parts.some((p) => p.truncated === true);
  switch (first.kind) {
    case 'histogram': {
      const { histograms, cut } = mergeHistogramSets(parts.map((p) => p.histograms ?? []));
      return withTruncated({ name, kind: 'histogram', histograms }, inputTruncated || cut);
    }
    case 'scalar': {
      const value = mergeValues(parts.map((p) => p.value ?? ''));
      return value === undefined ? undefined : withTruncated({ name, kind: 'scalar', value }, inputTruncated);
    }
    case 'keyed': {
      const merged = mergeEntries(parts.map((p) => p.entries ?? []));
      if (merged === undefined) return undefined;
      return withTruncated({ name, kind: 'keyed', entries: merged.entries }, inputTruncated || merged.cut);
    }
  }
}

function withTruncated(map: MapResult, truncated: boolean): MapResult {
  return truncated ? { ...map, truncated: true } : map;
}

/** Histograms of one map from several nodes, joined by key; the largest keys kept. */
function mergeHistogramSets(sets: ReadonlyArray<readonly Histogram[]>): { histograms: Histogram[]; cut: boolean } {
  const byKey = new Map<string, { key?: string; buckets: HistogramBucket[] }>();
  for (const set of sets) {
    for (const h of set) {
      const id = h.key === undefined ? '\u0000' : `k:${h.key}`;
      const entry = byKey.get(id) ?? (h.key === undefined ? { buckets: [] } : { key: h.key, buckets: [] });
      entry.buckets.push(...h.buckets);
      byKey.set(id, entry);
    }
  }
  const all = [...byKey.values()].map(({ key, buckets }) => summedHistogram(key, sumBuckets(buckets)));
  all.sort(
    (a, b) => b.histogram.total - a.histogram.total || compareStrings(a.histogram.key ?? '', b.histogram.key ?? ''),
  );
  const kept = all.slice(0, RUN_RESULT_LIMITS.histogramsPerMap);
  return { histograms: kept.map((h) => h.histogram), cut: all.length > kept.length || kept.some((h) => h.cut) };
}

/** A summed histogram with percentiles of the whole sum, cut to the bucket limit. */
function summedHistogram(key: string | undefined, buckets: HistogramBucket[]): { histogram: Histogram; cut: boolean } {
  const kept = mergeBuckets(buckets, RUN_RESULT_LIMITS.bucketsPerHistogram);
  const histogram: Histogram = { buckets: kept, total: histogramTotal(buckets), ...percentiles(buckets) };
  if (key !== undefined) histogram.key = key;
  return { histogram, cut: kept.length < buckets.length };
}

const lowOf = (b: HistogramBucket): number => b.low ?? Number.NEGATIVE_INFINITY;
const highOf = (b: HistogramBucket): number => b.high ?? Number.POSITIVE_INFINITY;

/**
 * Sums buckets from several histograms: equal bounds add up; overlapping,
 * unequal ones are joined into one bucket spanning them. Empty buckets are
 * dropped; the result is in ascending order.
 */
export function sumBuckets(buckets: readonly HistogramBucket[]): HistogramBucket[] {
  const sorted = buckets.filter((b) => b.count > 0).sort((a, b) => lowOf(a) - lowOf(b) || highOf(a) - highOf(b));
  const out: HistogramBucket[] = [];
  for (const b of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lowOf(b) < highOf(last)) {
      const high = Math.max(highOf(last), highOf(b));
      const joined: HistogramBucket = { count: last.count + b.count };
      if (last.low !== undefined) joined.low = last.low;
      if (high !== Number.POSITIVE_INFINITY) joined.high = high;
      out[out.length - 1] = joined;
    } else {
      out.push({ ...b });
    }
  }
  return out;
}

const INTEGER = /^-?\d+$/;

/** Adds integer values exactly; non-integers merge only when all are equal. */
function mergeValues(values: readonly string[]): string | undefined {
  if (values.every((v) => INTEGER.test(v))) return values.reduce((sum, v) => sum + BigInt(v), 0n).toString();
  return values.every((v) => v === values[0]) ? values[0] : undefined;
}

/** Keyed entries from several nodes added per key, largest first, cut to the limit. */
function mergeEntries(lists: ReadonlyArray<readonly MapEntry[]>): { entries: MapEntry[]; cut: boolean } | undefined {
  const byKey = new Map<string, string[]>();
  for (const list of lists) {
    for (const { key, value } of list) {
      const values = byKey.get(key);
      if (values === undefined) byKey.set(key, [value]);
      else values.push(value);
    }
  }
  const entries: MapEntry[] = [];
  for (const [key, values] of byKey) {
    const value = mergeValues(values);
    if (value === undefined) return undefined;
    entries.push({ key, value });
  }
  entries.sort((a, b) => compareValues(b.value, a.value) || compareStrings(a.key, b.key));
  return {
    entries: entries.slice(0, RUN_RESULT_LIMITS.entriesPerMap),
    cut: entries.length > RUN_RESULT_LIMITS.entriesPerMap,
  };
}

function compareValues(a: string, b: string): number {
  if (INTEGER.test(a) && INTEGER.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return compareStrings(a, b);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
