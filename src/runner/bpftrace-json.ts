// A JSON reader for the lines bpftrace prints with `-f json`.
//
// JSON.parse does not serve here, for three reasons seen with bpftrace v0.17:
// - map objects are keyed by the map key and ordered by value; JavaScript
//   objects reorder integer-like keys ("1", "2") and merge duplicate keys
//   (bpftrace joins multi-part keys with "," so @m["a,b","c"] and
//   @m["a","b,c"] collide), so objects are read as ordered entry lists;
// - 64-bit counters do not fit a double, so numbers keep their text;
// - bpftrace escapes each byte >= 0x80 as a sign-extended `\uffffffXX`
//   (so "é" arrives as `\uffffffc3\uffffffa9`); those bytes are gathered and
//   decoded as UTF-8 here.

export type JsonValue =
  | { kind: 'number'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' }
  | { kind: 'array'; items: JsonValue[] }
  | { kind: 'object'; entries: [string, JsonValue][] };

export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Parses one JSON document; throws JsonSyntaxError when it is not one. */
export function parseBpftraceJson(text: string): JsonValue {
  const reader = new Reader(text);
  reader.skipSpace();
  const value = reader.value(0);
  reader.skipSpace();
  if (!reader.atEnd()) reader.fail('unexpected text after the value');
  return value;
}

/** The entry of an object value by key (the first one), or undefined. */
export function member(value: JsonValue, key: string): JsonValue | undefined {
  if (value.kind !== 'object') return undefined;
  return value.entries.find(([k]) => k === key)?.[1];
}

const MAX_DEPTH = 64;

class Reader {
  #text: string;
  #pos = 0;

  constructor(text: string) {
    this.#text = text;
  }

  atEnd(): boolean {
    return this.#pos >= this.#text.length;
  }

  fail(what: string): never {
    throw new JsonSyntaxError(`${what} at offset ${this.#pos}`);
  }

  skipSpace(): void {
    while (this.#pos < this.#text.length) {
      const c = this.#text.charCodeAt(this.#pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.#pos++;
    }
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.#text[this.#pos];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return { kind: 'string', value: this.string() };
      case 't':
        return this.literal('true', { kind: 'bool', value: true });
      case 'f':
        return this.literal('false', { kind: 'bool', value: false });
      case 'n':
        return this.literal('null', { kind: 'null' });
      default:
        return this.number();
    }
  }

  literal(word: string, value: JsonValue): JsonValue {
    if (!this.#text.startsWith(word, this.#pos)) this.fail('unexpected token');
    this.#pos += word.length;
    return value;
  }

  number(): JsonValue {
    const match = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(
      this.#text.slice(this.#pos, this.#pos + 400),
    );
    if (match === null) this.fail('expected a value');
    this.#pos += match[0].length;
    return { kind: 'number', text: match[0] };
  }

  object(depth: number): JsonValue {
    this.#pos++; // {
    const entries: [string, JsonValue][] = [];
    this.skipSpace();
    if (this.#text[this.#pos] === '}') {
      this.#pos++;
      return { kind: 'object', entries };
    }
    for (;;) {
      this.skipSpace();
      if (this.#text[this.#pos] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.skipSpace();
      if (this.#text[this.#pos] !== ':') this.fail("expected ':'");
      this.#pos++;
      this.skipSpace();
      entries.push([key, this.value(depth + 1)]);
      this.skipSpace();
      const next = this.#text[this.#pos++];
      if (next === '}') return { kind: 'object', entries };
      if (next !== ',') this.fail("expected ',' or '}'");
    }
  }

  array(depth: number): JsonValue {
    this.#pos++; // [
    const items: JsonValue[] = [];
    this.skipSpace();
    if (this.#text[this.#pos] === ']') {
      this.#pos++;
      return { kind: 'array', items };
    }
    for (;;) {
      this.skipSpace();
      items.push(this.value(depth + 1));
      this.skipSpace();
      const next = this.#text[this.#pos++];
      if (next === ']') return { kind: 'array', items };
      if (next !== ',') this.fail("expected ',' or ']'");
    }
  }

  string(): string {
    this.#pos++; // opening quote
    let out = '';
    let bytes: number[] = [];
    const flushBytes = (): void => {
      if (bytes.length > 0) {
        out += utf8.decode(Uint8Array.from(bytes));
        bytes = [];
      }
    };
    const text = this.#text;
    for (;;) {
      if (this.#pos >= text.length) this.fail('unterminated string');
      const c = text[this.#pos++];
      if (c === '"') break;
      if (c !== '\\') {
        flushBytes();
        out += c;
        continue;
      }
      const e = text[this.#pos++];
      if (e === 'u') {
        const byte = /^ffffff([0-9a-fA-F]{2})/.exec(text.slice(this.#pos, this.#pos + 8));
        if (byte !== null && byte[1] !== undefined) {
          bytes.push(Number.parseInt(byte[1], 16));
          this.#pos += 8;
          continue;
        }
        const hex = text.slice(this.#pos, this.#pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
        flushBytes();
        out += String.fromCharCode(Number.parseInt(hex, 16));
        this.#pos += 4;
        continue;
      }
      flushBytes();
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        default:
          this.fail('bad escape');
      }
    }
    flushBytes();
    return out;
  }
}
