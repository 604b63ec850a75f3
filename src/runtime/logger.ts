// Structured JSON logs: one JSON object per line on an injected stream.
//
// API
//   type LogLevel = 'debug' | 'info' | 'warn' | 'error'
//   type LogFields = Record<string, unknown>
//   interface Logger {
//     debug/info/warn/error(msg: string, fields?: LogFields): void
//     child(fields: LogFields): Logger     same sink and level, fields bound to every line
//     enabled(level): boolean
//   }
//   function createLogger({ stream, level = 'info', fields?, clock? }): Logger
//   const nopLogger: Logger                 drops everything (tests, defaults)
//   function parseLogLevel(text): LogLevel  throws with the accepted values
//
// Line shape: {"ts":"2024-01-01T00:00:00.000Z","level":"info","msg":"...", ...bound fields, ...call fields}
// Later fields override earlier ones, except ts/level/msg which always come
// first and are never overridden. Error values (also nested `cause`s) are
// written as {name, message, stack, cause?, ...own enumerable props such as
// status/reason}; bigint as a string; values that cannot be serialized
// (cycles) as "[unserializable]" rather than losing the line.
import { realClock, type Clock } from './clock.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
  enabled(level: LogLevel): boolean;
}

/** Anything with a `write(string)` method (process.stderr, a PassThrough in tests). */
export interface LineSink {
  write(chunk: string): unknown;
}

export interface LoggerOptions {
  stream: LineSink;
  level?: LogLevel;
  fields?: LogFields;
  clock?: Clock;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const RESERVED = new Set(['ts', 'level', 'msg']);

export function parseLogLevel(text: string): LogLevel {
  const lower = text.trim().toLowerCase();
  if (lower in LEVELS) return lower as LogLevel;
  throw new Error(`unknown log level '${text}': use one of ${Object.keys(LEVELS).join(', ')}`);
}

function serializeError(error: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  for (const [k, v] of Object.entries(error)) {
    if (k !== 'cause') out[k] = v;
  }
  if (error.stack !== undefined) out['stack'] = error.stack;
  if (error.cause !== undefined && depth < 5) {
    out['cause'] = error.cause instanceof Error ? serializeError(error.cause, depth + 1) : error.cause;
  }
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value, 0);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

class JsonLogger implements Logger {
  readonly #stream: LineSink;
  readonly #level: number;
  readonly #fields: LogFields;
  readonly #clock: Clock;
  readonly #levelName: LogLevel;

  constructor(stream: LineSink, level: LogLevel, fields: LogFields, clock: Clock) {
    this.#stream = stream;
    this.#levelName = level;
    this.#level = LEVELS[level];
    this.#fields = fields;
    this.#clock = clock;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.#log('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.#log('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.#log('error', msg, fields);
  }

  child(fields: LogFields): Logger {
    return new JsonLogger(this.#stream, this.#levelName, { ...this.#fields, ...fields }, this.#clock);
  }

  enabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.#level;
  }

  #log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (LEVELS[level] < this.#level) return;
    const record: LogFields = { ts: new Date(this.#clock.now()).toISOString(), level, msg };
    for (const source of [this.#fields, fields ?? {}]) {
      for (const [k, v] of Object.entries(source)) {
        if (!RESERVED.has(k) && v !== undefined) record[k] = v;
      }
    }
    let line: string;
    try {
      line = JSON.stringify(record, replacer);
    } catch {
      const safe: LogFields = {};
      for (const [k, v] of Object.entries(record)) {
        try {
          JSON.stringify(v, replacer);
          safe[k] = v;
        } catch {
          safe[k] = '[unserializable]';
        }
      }
      line = JSON.stringify(safe, replacer);
    }
    this.#stream.write(`${line}\n`);
  }
}

/** A JSON-lines logger writing to `options.stream`. */
export function createLogger(options: LoggerOptions): Logger {
  return new JsonLogger(options.stream, options.level ?? 'info', options.fields ?? {}, options.clock ?? realClock);
}

/** A logger that writes nothing. */
export const nopLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => nopLogger,
  enabled: () => false,
};
