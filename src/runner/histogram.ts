// bpftrace histograms: from its JSON buckets to our bucket form, percentiles,
// and back to the bar chart bpftrace prints in text mode.
//
// bpftrace's JSON gives each bucket as inclusive {min, max}; the open-ended
// lowest bucket has only max, the open-ended highest only min. Our buckets
// use an inclusive `low` and an exclusive `high` (as bpftrace's text labels
// "[4, 8)" do), so high = max + 1.
import type { HistogramBucket } from '../tracejob/result.ts';

/** A bucket as bpftrace reports it, including empty buckets between full ones. */
export interface RawBucket {
  /** Inclusive lower bound; undefined for the open-ended lowest bucket. */
  min?: number;
  /** Inclusive upper bound; undefined for the open-ended highest bucket. */
  max?: number;
  count: number;
}

export function toHistogramBuckets(raw: readonly RawBucket[]): HistogramBucket[] {
  return raw
    .filter((b) => b.count > 0)
    .map((b) => {
      return {
        ...(b.min !== undefined ? { low: b.min } : {}),
        ...(b.max !== undefined ? { high: b.max + 1 } : {}),
        count: b.count,
      };
    });
}

export function histogramTotal(buckets: readonly { count: number }[]): number {
  return buckets.reduce((sum, b) => sum + b.count, 0);
}

/**
 * The value a bucket stands for in a percentile estimate: its upper bound
 * as bpftrace prints it. That is the exclusive upper bound `high` ("[4, 8)"
 * gives 8, "(..., 0)" gives 0), except for buckets that hold a single value
 * ("[0]", "[1]", or an lhist step of 1), which give that value, and for the
 * open-ended highest bucket ("[100, ...)"), which gives its lower bound, the
 * only bound it has.
 */
export function bucketEstimate(bucket: HistogramBucket): number | undefined {
  if (bucket.high === undefined) return bucket.low;
  if (bucket.low !== undefined && bucket.high - bucket.low === 1) return bucket.low;
  return bucket.high;
}

/**
 * Estimates the p-th percentile (0 < p <= 100) as the upper bound of the
 * bucket that holds the sample of rank ceil(p/100 * total): an upper
 * estimate, exact only to the bucket's resolution. Undefined when empty.
 */
export function percentile(buckets: readonly HistogramBucket[], p: number): number | undefined {
  const total = histogramTotal(buckets);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const bucket of buckets) {
    seen += bucket.count;
    if (seen >= rank) return bucketEstimate(bucket);
  }
  const last = buckets[buckets.length - 1];
  return last === undefined ? undefined : bucketEstimate(last);
}

/** p50, p90 and p99 of a histogram, leaving out those that are undefined. */
export function percentiles(buckets: readonly HistogramBucket[]): { p50?: number; p90?: number; p99?: number } {
  const out: { p50?: number; p90?: number; p99?: number } = {};
  const p50 = percentile(buckets, 50);
  const p90 = percentile(buckets, 90);
  const p99 = percentile(buckets, 99);
  if (p50 !== undefined) out.p50 = p50;
  if (p90 !== undefined) out.p90 = p90;
  if (p99 !== undefined) out.p99 = p99;
  return out;
}

/**
 * Halves the number of buckets by merging neighbours until at most `limit`
 * remain; totals and the overall range are kept, resolution is lost.
 */
export function mergeBuckets(buckets: readonly HistogramBucket[], limit: number): HistogramBucket[] {
  let current = [...buckets];
  while (current.length > limit && current.length > 1) {
    const merged: HistogramBucket[] = [];
    for (let i = 0; i < current.length; i += 2) {
      const a = current[i];
      const b = current[i + 1];
      if (a === undefined) break;
      if (b === undefined) {
        merged.push(a);
        continue;
      }
      merged.push({
        ...(a.low !== undefined ? { low: a.low } : {}),
        ...(b.high !== undefined ? { high: b.high } : {}),
        count: a.count + b.count,
      });
    }
    current = merged;
  }
  return current.slice(0, Math.max(limit, 0));
}

// ---- text rendering, as bpftrace v0.17's TextOutput prints hist()/lhist() ----

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && 2 ** Math.round(Math.log2(n)) === n;
}

/** True when every bounded bucket has hist()'s log2 shape, so labels use K/M/G/T. */
function looksLikeLog2(raw: readonly RawBucket[]): boolean {
  return raw.every((b) => {
    if (b.min === undefined || b.max === undefined) return true;
    if (b.min === 0 && b.max === 0) return true;
    if (b.min === 1 && b.max === 1) return true;
    return b.min >= 2 && isPowerOfTwo(b.min) && b.max === b.min * 2 - 1;
  });
}

function log2Label(n: number): string {
  let power = Math.round(Math.log2(n));
  let suffix = '';
  for (const [p, s] of [
    [40, 'T'],
    [30, 'G'],
    [20, 'M'],
    [10, 'K'],
  ] as const) {
    if (power >= p) {
      suffix = s;
      power -= p;
      break;
    }
  }
  return `${2 ** power}${suffix}`;
}

function linearLabel(n: number): string {
  if (n === 0) return '0';
  if (n % 1048576 === 0) return `${n / 1048576}M`;
  if (n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}

function bucketLabel(b: RawBucket, log2: boolean): string {
  const label = log2 ? log2Label : linearLabel;
  if (b.min === undefined) return `(..., ${b.max === undefined ? '' : linearLabel(b.max + 1)})`;
  if (b.max === undefined) return `[${linearLabel(b.min)}, ...)`;
  if (log2 && b.min === b.max) return `[${b.min}]`;
  return `[${label(b.min)}, ${label(b.max + 1)})`;
}

const BAR_WIDTH = 52;

/** The bar chart bpftrace prints for one histogram, one line per bucket. */
export function renderHistogramText(raw: readonly RawBucket[]): string {
  if (raw.length === 0) return '';
  const log2 = looksLikeLog2(raw);
  const maxCount = Math.max(...raw.map((b) => b.count));
  let out = '';
  for (const b of raw) {
    // bpftrace computes the bar in single-precision float and truncates.
    const ratio = Math.fround(Math.fround(b.count) / Math.fround(maxCount));
    const width = maxCount === 0 ? 0 : Math.trunc(Math.fround(ratio * BAR_WIDTH));
    out += `${bucketLabel(b, log2).padEnd(16)}${String(b.count).padStart(8)} |${'@'.repeat(width).padEnd(BAR_WIDTH)}|\n`;
  }
  return out;
}
