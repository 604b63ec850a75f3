// Reads the Prometheus text exposition the manager serves on /metrics.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses exposition text into samples (comments and blank lines skipped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    if (space < 0) continue;
    const name = brace >= 0 && brace < space ? line.slice(0, brace) : line.slice(0, line.indexOf(' '));
    const labels: Record<string, string> = {};
    if (brace >= 0 && brace < space) {
      const body = line.slice(brace + 1, line.lastIndexOf('}'));
      for (const m of body.matchAll(LABEL))
        labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    // A sample may end with a timestamp: "name{..} value ts"; take the value after the labels.
    const rest = line
      .slice(brace >= 0 && brace < space ? line.lastIndexOf('}') + 1 : name.length)
      .trim()
      .split(/\s+/);
    const value = Number(rest[0]);
    if (!Number.isNaN(value) || rest[0] === 'NaN') samples.push({ name, labels, value });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include every pair in `match` (a value may be a predicate). */
export function sumMetric(
  samples: readonly Sample[],
  name: string,
  match: Record<string, string | ((v: string) => boolean)> = {},
): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    const ok = Object.entries(match).every(([k, want]) => {
      const have = s.labels[k];
      if (have === undefined) return false;
      return typeof want === 'function' ? want(have) : have === want;
    });
    if (ok) total += s.value;
  }
  return total;
}

export const WRITE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type WriteMethod = (typeof WRITE_METHODS)[number];

export interface RequestCounts {
  /** Requests per method (all response codes, "<error>" included). */
  byMethod: Record<string, number>;
  /** Writes (POST/PUT/PATCH/DELETE) per response code. */
  writesByCode: Record<string, number>;
  writes: number;
  reads: number;
}

/** The manager's rest_client_requests_total, split into reads and writes. */
export function requestCounts(samples: readonly Sample[]): RequestCounts {
  const byMethod: Record<string, number> = {};
  const writesByCode: Record<string, number> = {};
  let writes = 0;
  let reads = 0;
  for (const s of samples) {
    if (s.name !== 'rest_client_requests_total') continue;
    const method = s.labels['method'] ?? '?';
    byMethod[method] = (byMethod[method] ?? 0) + s.value;
    if ((WRITE_METHODS as readonly string[]).includes(method)) {
      writes += s.value;
      const code = s.labels['code'] ?? '?';
      writesByCode[code] = (writesByCode[code] ?? 0) + s.value;
    } else reads += s.value;
  }
  return { byMethod, writesByCode, writes, reads };
}

/** b − a, per key (keys of either). */
export function diffCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** b − a of two RequestCounts. */
export function diffRequests(a: RequestCounts, b: RequestCounts): RequestCounts {
  return {
    byMethod: diffCounts(a.byMethod, b.byMethod),
    writesByCode: diffCounts(a.writesByCode, b.writesByCode),
    writes: b.writes - a.writes,
    reads: b.reads - a.reads,
  };
}

/** Mean seconds per request by verb, from rest_client_request_duration_seconds (the difference of two scrapes when `before` is given). */
export function meanRequestSeconds(
  samples: readonly Sample[],
  before: readonly Sample[] = [],
): Record<string, { count: number; meanSeconds: number }> {
  const verbs = new Set(
    samples.filter((s) => s.name === 'rest_client_request_duration_seconds_count').map((s) => s.labels['verb'] ?? '?'),
  );
  const out: Record<string, { count: number; meanSeconds: number }> = {};
  for (const verb of verbs) {
    const count =
      sumMetric(samples, 'rest_client_request_duration_seconds_count', { verb }) -
      sumMetric(before, 'rest_client_request_duration_seconds_count', { verb });
    const sum =
      sumMetric(samples, 'rest_client_request_duration_seconds_sum', { verb }) -
      sumMetric(before, 'rest_client_request_duration_seconds_sum', { verb });
    if (count > 0) out[verb] = { count, meanSeconds: sum / count };
  }
  return out;
}
