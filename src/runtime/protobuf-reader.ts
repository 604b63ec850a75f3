// Reading Kubernetes' protobuf encoding, only as far as the caches need it.
//
// Hand-written rather than protobufjs: that needs the .proto files of
// k8s.io/api in the project and decodes every field of every message, while
// a cache reads a few fields of large objects and skips the rest by length.
// Why protobuf at all (bench/README.md, "JSON against protobuf"): the API
// server spends 3-4x less CPU serving Pods and Jobs in it than as JSON.
//
// The wire format: each field is a varint key (field number << 3 | wire
// type) and a value: a varint (0), 8 bytes (1), a length-prefixed run of
// bytes (2: strings, bytes, messages, map entries) or 4 bytes (5).
// Kubernetes writes every non-pointer field, empty or not, and a pointer
// field only when set; a zero metav1.Time is an empty message.

export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

// JSON.parse hands out one string for equal short values; decoded strings are
// each their own, which cost 0.4 KiB more heap per cached Pod or Job. Values
// that repeat across objects (times, phases, reasons, images, node names) go
// through this table instead; it holds only short strings and is emptied
// when full, so it stays small.
const SHARED_LIMIT = 4096;
const SHARED_MAX_LENGTH = 64;
const shared = new Map<string, string>();

function share(value: string): string {
  if (value.length > SHARED_MAX_LENGTH) return value;
  const known = shared.get(value);
  if (known !== undefined) return known;
  if (shared.size >= SHARED_LIMIT) shared.clear();
  shared.set(value, value);
  return value;
}

/** One message's fields, in order. */
export class ProtoReader {
  // A Buffer, for its toString(): 2x faster than a TextDecoder on the short strings most fields are.
  readonly #buf: Buffer;
  #pos: number;
  readonly #end: number;
  /** The field number and wire type of the field just read by next(). */
  field = 0;
  wire = 0;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = start;
    this.#end = end;
  }

  /** Reads the next field's key; false at the end of the message. */
  next(): boolean {
    if (this.#pos >= this.#end) return false;
    const key = this.varint();
    this.field = Math.floor(key / 8);
    this.wire = key % 8;
    return true;
  }

  /** A varint as a Number (exact to 2^53: resource versions, generations and seconds fit). */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) throw new ProtobufError('a varint runs past the end of its message');
      const byte = this.#buf[this.#pos++] ?? 0;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw new ProtobufError('a varint is longer than 10 bytes');
  }

  /** An int32 field: negative numbers are written as 10-byte two's complement varints. */
  int32(): number {
    return this.varint() | 0;
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  /** The bounds of a length-delimited value. */
  #span(): [number, number] {
    const length = this.varint();
    const start = this.#pos;
    const end = start + length;
    if (end > this.#end) throw new ProtobufError('a length-delimited field runs past the end of its message');
    this.#pos = end;
    return [start, end];
  }

  string(): string {
    const [start, end] = this.#span();
    return this.#buf.toString('utf8', start, end);
  }

  /** A string that many objects hold alike (a reason, a time, an image), kept once. */
  sharedString(): string {
    return share(this.string());
  }

  bytes(): Buffer {
    const [start, end] = this.#span();
    return this.#buf.subarray(start, end);
  }

  /** An embedded message (or map entry), read with its own reader. */
  message(): ProtoReader {
    const [start, end] = this.#span();
    return new ProtoReader(this.#buf, start, end);
  }

  /** Skips the value of the field just read. */
  skip(): void {
    switch (this.wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.#advance(8);
        return;
      case 2:
        this.#span();
        return;
      case 5:
        this.#advance(4);
        return;
      default:
        throw new ProtobufError(`unsupported wire type ${this.wire} (field ${this.field})`);
    }
  }

  #advance(n: number): void {
    if (this.#pos + n > this.#end) throw new ProtobufError('a fixed-size field runs past the end of its message');
    this.#pos += n;
  }
}

/** A map<string, string> entry (key 1, value 2). */
export function readStringMapEntry(entry: ProtoReader): [string, string] {
  let key = '';
  let value = '';
  while (entry.next()) {
    if (entry.field === 1) key = entry.string();
    else if (entry.field === 2) value = entry.string();
    else entry.skip();
  }
  return [key, value];
}

/** A metav1.Time as its JSON form (RFC 3339, seconds, UTC), or null for the zero time (an empty message). */
export function readTime(time: ProtoReader): string | null {
  let seconds: number | undefined;
  while (time.next()) {
    if (time.field === 1) seconds = time.varint();
    else time.skip();
  }
  return seconds === undefined ? null : timeText(seconds);
}

// Objects made in one burst share their times to the second: formatting each
// anew was a third of the CPU of reading 10 000 Pods and Jobs.
const TIME_TEXTS_LIMIT = 4096;
const timeTexts = new Map<number, string>();

function timeText(seconds: number): string {
  let text = timeTexts.get(seconds);
  if (text === undefined) {
    if (timeTexts.size >= TIME_TEXTS_LIMIT) timeTexts.clear();
    text = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    timeTexts.set(seconds, text);
  }
  return text;
}

/**
 * The metadata fields a cache keeps (as controller/caches.ts trims them from
 * JSON), in their JSON form: what JSON omits when empty is left out here too.
 */
export function readObjectMeta(meta: ProtoReader): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const text = (key: string): void => {
    const value = meta.string();
    if (value !== '') out[key] = value;
  };
  let labels: Record<string, string> | undefined;
  let annotations: Record<string, string> | undefined;
  const owners: Record<string, unknown>[] = [];
  while (meta.next()) {
    switch (meta.field) {
      case 1:
        text('name');
        break;
      case 3: {
        const namespace = meta.sharedString();
        if (namespace !== '') out['namespace'] = namespace;
        break;
      }
      case 5:
        text('uid');
        break;
      case 6:
        text('resourceVersion');
        break;
      case 7: {
        const generation = meta.varint();
        if (generation !== 0) out['generation'] = generation;
        break;
      }
      case 8:
        out['creationTimestamp'] = readTime(meta.message());
        break;
      case 9:
        out['deletionTimestamp'] = readTime(meta.message());
        break;
      case 11: {
        const [k, v] = readStringMapEntry(meta.message());
        (labels ??= {})[k] = v;
        break;
      }
      case 12: {
        const [k, v] = readStringMapEntry(meta.message());
        (annotations ??= {})[k] = v;
        break;
      }
      case 13:
        owners.push(readOwnerReference(meta.message()));
        break;
      default:
        meta.skip();
    }
  }
  if (labels !== undefined) out['labels'] = labels;
  if (annotations !== undefined) out['annotations'] = annotations;
  if (owners.length > 0) out['ownerReferences'] = owners;
  return out;
}

function readOwnerReference(ref: ProtoReader): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (ref.next()) {
    if (ref.field === 5) out['apiVersion'] = ref.sharedString();
    else if (ref.field === 1) out['kind'] = ref.sharedString();
    else if (ref.field === 3) out['name'] = ref.string();
    else if (ref.field === 4) out['uid'] = ref.string();
    else if (ref.field === 6) out['controller'] = ref.bool();
    else if (ref.field === 7) out['blockOwnerDeletion'] = ref.bool();
    else ref.skip();
  }
  return out;
}
