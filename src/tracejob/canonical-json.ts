// One canonical JSON form: object keys sorted by code point, undefined
// members left out, no white space. Equal values give equal strings, so it
// serves both to compare a status with its draft and to hash a spec.
//
// Guarantee: the output for a given value never changes between releases;
// the spec hash on existing Jobs (spec-change.ts) depends on it.

/** The canonical JSON text of a JSON-like value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
