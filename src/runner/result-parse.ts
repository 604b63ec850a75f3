// How the controller reads the runner's result back from the pod's log and
// termination message (the format is described in result-format.ts). Apart
// from it because checking a result against the schema loads TypeBox, which
// the runner need not pay for at start-up.
import { inflateRawSync } from 'node:zlib';
import { Value } from '@sinclair/typebox/value';
import { registerFormats } from '../tracejob/formats.ts';
import { TraceResult } from '../tracejob/result.ts';
import {
  COMPRESSED_PAYLOAD_PREFIX,
  NONCE_PATTERN,
  RESULT_LINE_PREFIX,
  type TerminationMessage,
} from './result-format.ts';

/** More than the largest result RESULT_LIMITS allows; a payload that inflates beyond it is not the runner's. */
const MAX_INFLATED_BYTES = 8 * 1024 * 1024;

function asTraceResult(value: unknown): TraceResult | undefined {
  registerFormats(); // TraceResult's date-time fields need the format checker
  return Value.Check(TraceResult, value) ? value : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads a termination message written by the runner; undefined when it is not one. */
export function parseTerminationMessage(text: string): TerminationMessage | undefined {
  const value = parseJson(text.trim());
  if (typeof value !== 'object' || value === null) return undefined;
  const { nonce, result } = value as { nonce?: unknown; result?: unknown };
  if (typeof nonce !== 'string' || !NONCE_PATTERN.test(nonce)) return undefined;
  const checked = asTraceResult(result);
  return checked === undefined ? undefined : { nonce, result: checked };
}

// A result line, possibly behind a `kubectl logs --timestamps` RFC 3339 stamp:
// its payload compressed (z:base64url) or, from older runners, plain JSON.
const LINE_PATTERN = /^(?:\d{4}-\d\d-\d\dT\S+ )?TRACE_OPERATOR_RESULT ([0-9a-f]{8,64}) (z:[A-Za-z0-9_-]+|\{.*\})$/;

function payloadJson(payload: string): unknown {
  if (!payload.startsWith(COMPRESSED_PAYLOAD_PREFIX)) return parseJson(payload);
  try {
    const bytes = Buffer.from(payload.slice(COMPRESSED_PAYLOAD_PREFIX.length), 'base64url');
    return parseJson(inflateRawSync(bytes, { maxOutputLength: MAX_INFLATED_BYTES }).toString('utf8'));
  } catch {
    return undefined; // not deflate data, or too large
  }
}

/** Every well-formed result line in the logs, in order. */
export function findResultLines(logText: string): { nonce: string; result: TraceResult }[] {
  const found: { nonce: string; result: TraceResult }[] = [];
  let start = 0;
  // Scan for the prefix rather than splitting megabytes of log into lines.
  for (;;) {
    const at = logText.indexOf(RESULT_LINE_PREFIX, start);
    if (at < 0) break;
    const lineStart = logText.lastIndexOf('\n', at) + 1;
    let lineEnd = logText.indexOf('\n', at);
    if (lineEnd < 0) lineEnd = logText.length;
    start = lineEnd;
    // A pod with tty: true logs "\r\n" line ends.
    const line = logText.slice(lineStart, lineEnd).replace(/\r+$/, '');
    const match = LINE_PATTERN.exec(line);
    if (match === null || match[1] === undefined || match[2] === undefined) continue;
    const result = asTraceResult(payloadJson(match[2]));
    if (result !== undefined) found.push({ nonce: match[1], result });
  }
  return found;
}

/**
 * The trace result from a runner's logs and, when available, its termination
 * message: the log line with the termination message's nonce (it has the
 * full result), else the termination message's own (trimmed) result. Without
 * a termination message, the last result line in the logs.
 */
export function parseRunnerOutput(logText: string, terminationMessage?: string): TraceResult | undefined {
  const lines = findResultLines(logText);
  const termination = terminationMessage === undefined ? undefined : parseTerminationMessage(terminationMessage);
  if (termination !== undefined) {
    const own = lines.filter((l) => l.nonce === termination.nonce).at(-1);
    return own?.result ?? termination.result;
  }
  return lines.at(-1)?.result;
}

/**
 * The logs without the runner's own result line, so what remains is what
 * bpftrace printed: the line with the termination message's nonce, else the
 * last result line. Result-like lines the program printed itself are kept.
 */
export function stripResultLine(logText: string, terminationMessage?: string): string {
  const nonce = terminationMessage === undefined ? undefined : parseTerminationMessage(terminationMessage)?.nonce;
  const lines = logText.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const match = LINE_PATTERN.exec((lines[i] ?? '').replace(/\r+$/, ''));
    if (match === null || (nonce !== undefined && match[1] !== nonce)) continue;
    lines.splice(i, 1);
    break;
  }
  return lines.join('\n');
}
