// Map snapshots -> the size-bounded TraceResult maps, and trimming a result
// to a byte budget (the termination message Kubernetes keeps is 4096 bytes).
import { RESULT_LIMITS } from '../tracejob/result-limits.ts';
import type { Histogram, MapEntry, MapResult, TraceResult } from '../tracejob/result.ts';
import type { MapSnapshot } from './bpftrace-events.ts';
import { histogramTotal, mergeBuckets, percentiles, toHistogramBuckets } from './histogram.ts';

export interface MapLimits {
  entriesPerMap: number;
  histogramsPerMap: number;
  bucketsPerHistogram: number;
}

const DEFAULT_LIMITS: MapLimits = {
  entriesPerMap: RESULT_LIMITS.entriesPerMap,
  histogramsPerMap: RESULT_LIMITS.histogramsPerMap,
  bucketsPerHistogram: RESULT_LIMITS.bucketsPerHistogram,
};

export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 1))}…`;
}

function limitKey(key: string): string {
  return truncateText(key, RESULT_LIMITS.keyLength);
}

function compareValuesDescending(a: string, b: string): number {
  const ia = /^-?\d+$/.test(a) ? BigInt(a) : undefined;
  const ib = /^-?\d+$/.test(b) ? BigInt(b) : undefined;
  if (ia === undefined || ib === undefined) return 0;
  return ia > ib ? -1 : ia < ib ? 1 : 0;
}

function histogramOf(
  key: string | undefined,
  buckets: ReturnType<typeof toHistogramBuckets>,
  limit: number,
): { histogram: Histogram; cut: boolean } {
  const total = histogramTotal(buckets);
  // Percentiles come from the full buckets, before any merging.
  const histogram: Histogram = { buckets: mergeBuckets(buckets, limit), total, ...percentiles(buckets) };
  if (key !== undefined) histogram.key = limitKey(key);
  return { histogram, cut: histogram.buckets.length < buckets.length };
}

/** One map snapshot as a MapResult within the limits; largest first where it is cut. */
export function toMapResult(map: MapSnapshot, limits: MapLimits = DEFAULT_LIMITS): MapResult {
  switch (map.kind) {
    case 'scalar':
      return { name: map.name, kind: 'scalar', value: map.value };
    case 'keyed': {
      // bpftrace prints smallest first; the result lists largest first.
      const sorted = [...map.entries].reverse().sort((a, b) => compareValuesDescending(a.value, b.value));
      const entries: MapEntry[] = sorted
        .slice(0, limits.entriesPerMap)
        .map((e) => ({ key: limitKey(e.key), value: e.value }));
      const result: MapResult = { name: map.name, kind: 'keyed', entries };
      if (entries.length < sorted.length || sorted.some((e) => e.key.length > RESULT_LIMITS.keyLength))
        result.truncated = true;
      return result;
    }
    case 'histogram': {
      const all = map.histograms.map((h) => ({ key: h.key, buckets: toHistogramBuckets(h.buckets) }));
      const largest = [...all].sort((a, b) => histogramTotal(b.buckets) - histogramTotal(a.buckets));
      const kept = all.length === 1 ? all : largest.slice(0, limits.histogramsPerMap);
      let cut = kept.length < all.length;
      const histograms = kept.map((h) => {
        const built = histogramOf(h.key, h.buckets, limits.bucketsPerHistogram);
        cut ||= built.cut;
        return built.histogram;
      });
      const result: MapResult = { name: map.name, kind: 'histogram', histograms };
      if (cut) result.truncated = true;
      return result;
    }
  }
}

/** The maps of a result: the latest snapshot of each map, at most RESULT_LIMITS.maps of them. */
export function toMapResults(maps: readonly MapSnapshot[]): { maps: MapResult[]; truncated: boolean } {
  const results = maps.slice(0, RESULT_LIMITS.maps).map((m) => toMapResult(m));
  return { maps: results, truncated: maps.length > RESULT_LIMITS.maps || results.some((m) => m.truncated === true) };
}

function byteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

function shrinkMap(map: MapResult, entries: number, histograms: number, buckets: number): MapResult {
  const out: MapResult = { ...map };
  let cut = map.truncated === true;
  if (map.entries !== undefined && map.entries.length > entries) {
    out.entries = map.entries.slice(0, entries);
    cut = true;
  }
  if (map.histograms !== undefined) {
    const hs = map.histograms.slice(0, histograms).map((h) => {
      if (h.buckets.length <= buckets) return h;
      cut = true;
      return { ...h, buckets: mergeBuckets(h.buckets, buckets) };
    });
    if (hs.length < map.histograms.length) cut = true;
    out.histograms = hs;
  }
  if (map.value !== undefined && map.value.length > 256) {
    out.value = truncateText(map.value, 256);
    cut = true;
  }
  if (cut) out.truncated = true;
  return out;
}

/**
 * Trims a result until `measure(result)` is at most `maxBytes`: first fewer
 * entries, histograms and buckets per map, then whole maps (largest first),
 * then the message. Anything dropped sets `truncated`.
 */
export function trimResult(
  result: TraceResult,
  maxBytes: number,
  measure: (r: TraceResult) => number = byteLength,
): TraceResult {
  if (measure(result) <= maxBytes) return result;
  const steps: [number, number, number][] = [
    [32, 8, 32],
    [16, 4, 24],
    [8, 2, 16],
    [4, 1, 12],
    [2, 1, 8],
    [1, 1, 6],
  ];
  for (const [entries, histograms, buckets] of steps) {
    const candidate: TraceResult = {
      ...result,
      truncated: true,
      maps: result.maps.map((m) => shrinkMap(m, entries, histograms, buckets)),
    };
    if (measure(candidate) <= maxBytes) return candidate;
  }
  const maps = result.maps.map((m) => shrinkMap(m, 1, 1, 6));
  while (maps.length > 0) {
    let largest = 0;
    maps.forEach((m, i) => {
      const mi = maps[largest];
      if (mi !== undefined && byteLength(m) > byteLength(mi)) largest = i;
    });
    maps.splice(largest, 1);
    const candidate: TraceResult = { ...result, truncated: true, maps: [...maps] };
    if (measure(candidate) <= maxBytes) return candidate;
  }
  const bare: TraceResult = { ...result, truncated: true, maps: [] };
  if (bare.message !== undefined) bare.message = truncateText(bare.message, 256);
  return bare;
}
