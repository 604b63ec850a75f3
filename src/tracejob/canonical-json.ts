// One canonical JSON form: object keys sorted by code point, undefined
// members left out, no white space. Equal values give equal strings, so it
// serves to hash a spec; jsonEqual compares two values by it without
// building the strings (a status against its draft, on every reconcile).
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

/** Whether two JSON-like values have the same canonical JSON text, without building it. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null)
    return JSON.stringify(a) === JSON.stringify(b);
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left).filter((k) => left[k] !== undefined);
  if (keys.length !== Object.keys(right).filter((k) => right[k] !== undefined).length) return false;
  return keys.every((k) => jsonEqual(left[k], right[k]));
}
