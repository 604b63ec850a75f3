// Small statistics and formatting helpers for the benchmark report. Pure:
// no I/O, no clock, so test/unit/bench-stats.test.ts can check them.

/** The q-quantile (0..1) of `values` by the nearest-rank method; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  if (q < 0 || q > 1) throw new RangeError(`quantile must be within [0, 1], got ${q}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

export interface Summary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Count, p50/p90/p99 (nearest rank), max and mean of `values`. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0)
    return { count: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  let max = -Infinity;
  let sum = 0;
  for (const v of values) {
    if (v > max) max = v;
    sum += v;
  }
  return {
    count: values.length,
    p50: quantile(values, 0.5),
    p90: quantile(values, 0.9),
    p99: quantile(values, 0.99),
    max,
    mean: sum / values.length,
  };
}

/** The median; NaN when empty. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Least-squares slope and intercept of y over x; undefined with fewer than two distinct x. */
export function linearFit(
  points: readonly { x: number; y: number }[],
): { slope: number; intercept: number } | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

/** a / b, or NaN when b is zero or either is not finite. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}

/**
 * Cores of *other* CPU (work no listed process explains) by which a run may
 * exceed the run it is compared with before the comparison is unfair: an
 * idle control plane leaves 0.01–0.06 here, and reading a profile beside a
 * burst once made 0.48 (bench/README.md, run 44d6).
 */
export const DISTURBED_OTHER_CORES = 0.1;

export interface RunRate {
  rate: number;
  otherCores: number;
}

/**
 * The operator's rate over the mean of the ceiling runs that ran no more
 * disturbed than it did (all of them when none did); `disturbed` lists the
 * ceiling runs left out, and `operatorDisturbed` says the operator ran more
 * disturbed than every ceiling run (the ratio then flatters the ceiling).
 */
export function fairRatio(
  operator: RunRate,
  ceilings: readonly RunRate[],
): { ratio: number; disturbed: number[]; operatorDisturbed: boolean } {
  const moreDisturbed = (a: RunRate, b: RunRate): boolean => a.otherCores > b.otherCores + DISTURBED_OTHER_CORES;
  const disturbed = ceilings.flatMap((c, i) => (moreDisturbed(c, operator) ? [i] : []));
  const allDisturbed = disturbed.length === ceilings.length;
  const fair = allDisturbed ? ceilings : ceilings.filter((_, i) => !disturbed.includes(i));
  const mean = fair.length === 0 ? Number.NaN : fair.reduce((a, c) => a + c.rate, 0) / fair.length;
  return {
    ratio: ratio(operator.rate, mean),
    disturbed: allDisturbed ? [] : disturbed,
    operatorDisturbed: ceilings.length > 0 && ceilings.every((c) => moreDisturbed(operator, c)),
  };
}

/** Milliseconds as "850ms", "12.3s" or "4m05s"; "—" for NaN. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms - minutes * 60_000) / 1000);
  return `${minutes}m${String(seconds).padStart(2, '0')}s`;
}

/** Bytes as "812KiB", "95.3MiB", "1.20GiB"; "—" for NaN. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '—';
  const sign = bytes < 0 ? '-' : '';
  const b = Math.abs(bytes);
  if (b < 1024) return `${sign}${Math.round(b)}B`;
  if (b < 1024 ** 2) return `${sign}${(b / 1024).toFixed(b < 10 * 1024 ? 1 : 0)}KiB`;
  if (b < 1024 ** 3) return `${sign}${(b / 1024 ** 2).toFixed(1)}MiB`;
  return `${sign}${(b / 1024 ** 3).toFixed(2)}GiB`;
}

/** A number with at most `digits` decimals and no trailing zeros; "—" for NaN. */
export function formatNumber(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '—';
  return String(Number(n.toFixed(digits)));
}

/** A ratio as "0.42×"; "—" for NaN. */
export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : '—';
}

/** Renders rows as an aligned plain-text table (first row is the header); numbers-looking cells are right-aligned. */
export function renderTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const numeric = (cell: string): boolean => /^[-+]?[\d.,]+(?:[a-zA-Z%×/]*)?$|^—$/.test(cell);
  const lines = rows.map((row, r) =>
    row
      .map((cell, i) => (r > 0 && i > 0 && numeric(cell) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
  if (lines.length > 1) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}
