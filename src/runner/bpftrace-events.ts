// One line of `bpftrace -f json` output -> the text bpftrace would have
// printed in its default text mode, plus, for maps, a snapshot of the map.
//
// This is how the runner tells the program's own output (printf, time, cat,
// print of a value) from maps: bpftrace labels every event with its type.
// The text form follows bpftrace v0.17's TextOutput; two things cannot be
// recovered from the JSON and differ slightly:
// - multi-part keys: bpftrace's JSON joins the parts with "," where its text
//   uses ", "; we print ", " (a string key that itself holds "," then shows
//   an extra space);
// - an empty map prints a blank line in text mode and nothing in JSON.
import { type JsonValue, member, parseBpftraceJson } from './bpftrace-json.ts';
import { type RawBucket, renderHistogramText } from './histogram.ts';

export type MapSnapshot =
  | { name: string; kind: 'scalar'; value: string }
  | { name: string; kind: 'keyed'; entries: { key: string; value: string }[] }
  | { name: string; kind: 'histogram'; histograms: { key?: string; buckets: RawBucket[] }[] };

export type BpftraceEvent =
  /** Text the program printed (printf, time, cat, join, system, print of a value). */
  | { type: 'output'; text: string }
  /** A map printed by print(@m) or at exit. */
  | { type: 'map'; text: string; map: MapSnapshot }
  /** "Attaching N probes..." */
  | { type: 'attached'; text: string; probes: number }
  | { type: 'lost'; text: string; events: number }
  /** A line that is not a bpftrace JSON event (passed through as it is). */
  | { type: 'raw'; text: string };

/** Decodes one line (without its newline) of bpftrace's JSON output. */
export function decodeEventLine(line: string): BpftraceEvent {
  if (!line.startsWith('{')) return { type: 'raw', text: `${line}\n` };
  const printed = fastPrintfText(line);
  if (printed !== undefined) return { type: 'output', text: printed };
  let event: JsonValue;
  try {
    event = parseBpftraceJson(line);
  } catch {
    return { type: 'raw', text: `${line}\n` };
  }
  const type = member(event, 'type');
  const data = member(event, 'data');
  if (type?.kind !== 'string' || data === undefined) return { type: 'raw', text: `${line}\n` };
  switch (type.value) {
    case 'printf':
    case 'time':
    case 'cat':
    case 'join':
    case 'syscall':
      return { type: 'output', text: data.kind === 'string' ? data.value : valueText(data) };
    case 'value':
      return { type: 'output', text: `${valueText(data)}\n` };
    case 'attached_probes': {
      const probes = numberOf(member(data, 'probes'));
      return { type: 'attached', probes, text: `Attaching ${probes} ${probes === 1 ? 'probe' : 'probes'}...\n` };
    }
    case 'lost_events': {
      const events = numberOf(member(data, 'events'));
      return { type: 'lost', events, text: `Lost ${events} events\n` };
    }
    case 'map':
    case 'hist':
    case 'stats': {
      const map = decodeMap(type.value, data);
      if (map === undefined) return { type: 'raw', text: `${line}\n` };
      return { type: 'map', map, text: renderMapText(map, type.value === 'stats') };
    }
    default:
      // A message type this version does not know: show its data as bpftrace would a value.
      return { type: 'output', text: data.kind === 'string' ? data.value : `${valueText(data)}\n` };
  }
}

const PRINTF_PREFIX = '{"type": "printf", "data": ';

/**
 * The text of a printf line, through JSON.parse (several times faster than
 * the reader below, and printf is what floods). Only when no \u escape is
 * in the line: bpftrace's escapes of bytes >= 0x80 need the reader.
 */
function fastPrintfText(line: string): string | undefined {
  if (!line.startsWith(PRINTF_PREFIX) || line.includes('\\u')) return undefined;
  try {
    const data: unknown = (JSON.parse(line) as { data?: unknown }).data;
    return typeof data === 'string' ? data : undefined;
  } catch {
    return undefined;
  }
}

function numberOf(value: JsonValue | undefined): number {
  return value?.kind === 'number' ? Number(value.text) : 0;
}

/** A value as bpftrace's text output prints it: tuples "(1, x)", structs "{ .a = 1 }". */
export function valueText(value: JsonValue): string {
  switch (value.kind) {
    case 'number':
      return value.text;
    case 'string':
      return value.value;
    case 'bool':
      return String(value.value);
    case 'null':
      return '';
    case 'array':
      // bpftrace's JSON writes tuples and arrays alike; tuples are far more common in maps.
      return `(${value.items.map(valueText).join(', ')})`;
    case 'object':
      return `{ ${value.entries.map(([k, v]) => `.${k} = ${valueText(v)}`).join(', ')} }`;
  }
}

/** A JSON map key as bpftrace's text output shows it between the brackets. */
export function keyText(jsonKey: string): string {
  // Stack keys carry their own layout ("\n    frame+1\n..."); leave them alone.
  return jsonKey.includes('\n') ? jsonKey : jsonKey.replaceAll(',', ', ');
}

function statsText(value: JsonValue): string {
  if (value.kind !== 'object') return valueText(value);
  return value.entries.map(([k, v]) => `${k} ${valueText(v)}`).join(', ');
}

function isUnkeyedStats(value: JsonValue): boolean {
  return (
    value.kind === 'object' &&
    value.entries.length === 3 &&
    value.entries.map(([k]) => k).join() === 'count,average,total' &&
    value.entries.every(([, v]) => v.kind === 'number')
  );
}

function rawBuckets(value: JsonValue): RawBucket[] | undefined {
  if (value.kind !== 'array') return undefined;
  const buckets: RawBucket[] = [];
  for (const item of value.items) {
    const count = member(item, 'count');
    if (count?.kind !== 'number') return undefined;
    const bucket: RawBucket = { count: Number(count.text) };
    const min = member(item, 'min');
    const max = member(item, 'max');
    if (min?.kind === 'number') bucket.min = Number(min.text);
    if (max?.kind === 'number') bucket.max = Number(max.text);
    buckets.push(bucket);
  }
  return buckets;
}

function decodeMap(type: string, data: JsonValue): MapSnapshot | undefined {
  const first = data.kind === 'object' ? data.entries[0] : undefined;
  if (first === undefined) return undefined;
  const [name, body] = first;
  if (type === 'hist') {
    const unkeyed = rawBuckets(body);
    if (unkeyed !== undefined) return { name, kind: 'histogram', histograms: [{ buckets: unkeyed }] };
    if (body.kind !== 'object') return undefined;
    const histograms: { key: string; buckets: RawBucket[] }[] = [];
    for (const [key, value] of body.entries) {
      const buckets = rawBuckets(value);
      if (buckets === undefined) return undefined;
      histograms.push({ key: keyText(key), buckets });
    }
    return { name, kind: 'histogram', histograms };
  }
  if (type === 'stats') {
    if (body.kind !== 'object' || isUnkeyedStats(body)) return { name, kind: 'scalar', value: statsText(body) };
    return {
      name,
      kind: 'keyed',
      entries: body.entries.map(([key, value]) => ({ key: keyText(key), value: statsText(value) })),
    };
  }
  if (body.kind === 'object') {
    return {
      name,
      kind: 'keyed',
      entries: body.entries.map(([key, value]) => ({ key: keyText(key), value: valueText(value) })),
    };
  }
  return { name, kind: 'scalar', value: valueText(body) };
}

/** A map as bpftrace v0.17 prints it in text mode (print(@m) or at exit). */
export function renderMapText(map: MapSnapshot, isStats = false): string {
  switch (map.kind) {
    case 'scalar':
      return `${map.name}: ${map.value}\n${isStats ? '\n' : ''}`;
    case 'keyed': {
      let out = '';
      map.entries.forEach((e, i) => {
        const previous = map.entries[i - 1];
        // bpftrace separates entries with "\n" except after stack values, which end in one.
        if (previous !== undefined && !previous.value.endsWith('\n')) out += '\n';
        out += `${map.name}[${e.key}]: ${e.value}`;
      });
      return `${out}\n${isStats ? '\n' : ''}`;
    }
    case 'histogram':
      return `${map.histograms
        .map((h) => `${map.name}${h.key === undefined ? '' : `[${h.key}]`}: \n${renderHistogramText(h.buckets)}`)
        .join('\n')}\n`;
  }
}
