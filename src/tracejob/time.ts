// Times as Kubernetes writes them (metav1.Time): RFC 3339 in UTC with whole
// seconds, e.g. 2024-02-03T04:05:06Z.

/** metav1.Time form of a Date. */
export function toRfc3339(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Kubernetes times arrive as Date from typed clients and as strings from raw watches; both become RFC 3339. */
export function timeString(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : toRfc3339(value);
  if (typeof value === 'string' && value !== '') return value;
  return undefined;
}
