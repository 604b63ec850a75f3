// Where each bucket of one or more bpftrace histograms sits on a chart's
// axis. bpftrace's hist() buckets are powers of two and lhist()'s are
// linear steps, and the result keeps only the non-empty ones, so the axis is
// laid out in "slot" units: one slot per bucket, with the empty buckets
// between two kept ones put back, as bpftrace's own text output shows them.
// A value (a percentile) maps to a position inside its slot by linear
// interpolation. Pure code, loaded by the page as well as by Node.
import type { HistogramBucket } from '../tracejob/result.ts';

/** One bucket range on the axis: [low, high), either end open. */
export interface Slot {
  low?: number;
  high?: number;
}

export interface SlotAxis {
  slots: Slot[];
  /** Slot index of a bucket, by its range key. */
  indexOf(bucket: Slot): number;
  /** Position on the axis (0 .. slots.length) of a value, or undefined when no slot holds it. */
  position(value: number): number | undefined;
  /** Tick positions (slot edges) and their labels, at most `maxTicks`. */
  ticks(maxTicks?: number): { position: number; label: string }[];
}

/** Most empty buckets put back between two kept ones (a wider gap is shown as one slot). */
const MAX_FILL = 64;

function key(s: Slot): string {
  return `${s.low ?? '-inf'}:${s.high ?? 'inf'}`;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(n) && (n & (n - 1)) === 0;
}

/** The empty slots between slot a and the next kept slot b (a.high < b.low). */
function fill(a: Slot, b: Slot): Slot[] {
  if (a.high === undefined || b.low === undefined || a.high >= b.low) return [];
  const out: Slot[] = [];
  if (a.low !== undefined && a.high - a.low === b.low - a.high) {
    // A single missing step, linear or doubling alike.
    return [{ low: a.high, high: b.low }];
  }
  if (isPowerOfTwo(a.high) && isPowerOfTwo(b.low) && (a.low === undefined || a.high === a.low * 2 || a.low === 0)) {
    for (let low = a.high; low < b.low && out.length < MAX_FILL; low *= 2) out.push({ low, high: low * 2 });
    if (out.length < MAX_FILL) return out;
    return [{ low: a.high, high: b.low }];
  }
  const step = a.low === undefined ? 0 : a.high - a.low;
  if (step > 0 && (b.low - a.high) % step === 0 && (b.low - a.high) / step <= MAX_FILL) {
    for (let low = a.high; low < b.low; low += step) out.push({ low, high: low + step });
    return out;
  }
  return [{ low: a.high, high: b.low }];
}

function compare(a: Slot, b: Slot): number {
  const al = a.low ?? -Infinity;
  const bl = b.low ?? -Infinity;
  if (al !== bl) return al - bl;
  return (a.high ?? Infinity) - (b.high ?? Infinity);
}

/** bpftrace's way of printing a bucket bound: 1024 -> 1K, 3145728 -> 3M. */
export function formatBound(value: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  let v = value;
  let i = 0;
  while (i < units.length - 1 && v !== 0 && Number.isInteger(v / 1024) && Math.abs(v) >= 1024) {
    v /= 1024;
    i += 1;
  }
  return `${v}${units[i] ?? ''}`;
}

/** "[256, 512)" the way bpftrace prints a bucket. */
export function formatSlot(s: Slot): string {
  if (s.low === undefined) return `(…, ${s.high === undefined ? '…' : formatBound(s.high)})`;
  if (s.high === undefined) return `[${formatBound(s.low)}, …)`;
  return `[${formatBound(s.low)}, ${formatBound(s.high)})`;
}

/** One axis for all the buckets of all the given histograms. */
export function slotAxis(histograms: readonly { buckets: readonly HistogramBucket[] }[]): SlotAxis {
  const unique = new Map<string, Slot>();
  for (const h of histograms)
    for (const b of h.buckets) {
      const s: Slot = {};
      if (b.low !== undefined) s.low = b.low;
      if (b.high !== undefined) s.high = b.high;
      unique.set(key(s), s);
    }
  const kept = [...unique.values()].sort(compare);
  const slots: Slot[] = [];
  kept.forEach((s, i) => {
    slots.push(s);
    const next = kept[i + 1];
    if (next !== undefined) slots.push(...fill(s, next));
  });
  const index = new Map(slots.map((s, i) => [key(s), i]));
  return {
    slots,
    indexOf: (bucket) => {
      const i = index.get(key(bucket));
      if (i === undefined) throw new Error(`bucket ${formatSlot(bucket)} is not on this axis`);
      return i;
    },
    position: (value) => {
      for (let i = 0; i < slots.length; i++) {
        const s = slots[i];
        if (s === undefined) continue;
        const low = s.low ?? -Infinity;
        const high = s.high ?? Infinity;
        if (value < low || value > high) continue;
        if (s.low === undefined || s.high === undefined) return value === high ? i + 1 : value === low ? i : i + 0.5;
        return i + (value - s.low) / (s.high - s.low);
      }
      return undefined;
    },
    ticks: (maxTicks = 12) => {
      const edges: { position: number; label: string }[] = [];
      slots.forEach((s, i) => {
        if (s.low !== undefined) edges.push({ position: i, label: formatBound(s.low) });
      });
      const last = slots[slots.length - 1];
      if (last?.high !== undefined) edges.push({ position: slots.length, label: formatBound(last.high) });
      const every = Math.max(1, Math.ceil(edges.length / maxTicks));
      return edges.filter((_, i) => i % every === 0);
    },
  };
}

/** The unit a map's name suggests (@usecs -> µs), or undefined. */
export function unitOf(mapName: string): string | undefined {
  const n = mapName.replace(/^@/, '').toLowerCase();
  if (/nsec|(^|_)ns($|_)|nanos/.test(n)) return 'ns';
  if (/usec|(^|_)us($|_)|micros/.test(n)) return 'µs';
  if (/msec|(^|_)ms($|_)|millis/.test(n)) return 'ms';
  if (/(^|_)(sec|secs|seconds|s)($|_)/.test(n)) return 's';
  if (/bytes|size|(^|_)b($|_)/.test(n)) return 'bytes';
  return undefined;
}
