// The runner's machine-readable result, as the runner writes it (the
// controller reads it back with result-parse.ts).
//
// The termination log gets {"nonce": <nonce>, "result": <TraceResult trimmed
// to fit>}. That is where the controller looks first, and where a person
// never does, so the pod's log (what `kubectl trace attach` and `logs` show)
// holds a result line only when it has to:
// - the full result did not fit the termination message (it was trimmed), or
// - there is no termination log (`run-local`, a runner started by hand), or
//   writing it failed.
// The line is one line, last in the log, and marked:
//     TRACE_OPERATOR_RESULT <nonce> z:<the TraceResult's JSON, deflated, base64url>
// (readers also take the older `TRACE_OPERATOR_RESULT <nonce> {json}` form).
// The nonce is random per run, so a program that prints a line that looks
// like a result cannot be mistaken for the runner's: with the termination
// message at hand the reader takes the line with its nonce, else the
// message's own result; without it, the last result line (the runner prints
// its line after bpftrace has exited, so nothing the program printed can
// follow it).
//
// Guarantees: the result line is a single line; the termination message is
// at most TERMINATION_MESSAGE_MAX_BYTES bytes; whenever the termination
// message's result was trimmed, the full result is in the log. Caveat: with
// no termination message and logs cut before the runner's own line, a fake
// line printed by the program would be taken.
import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import type { TraceResult } from '../tracejob/result.ts';
import { trimResult } from './result-build.ts';

export const RESULT_LINE_PREFIX = 'TRACE_OPERATOR_RESULT';

/** Marks the compressed form of a result line's payload. */
export const COMPRESSED_PAYLOAD_PREFIX = 'z:';

/** Kubernetes keeps 4096 bytes of the termination message; we stay below with room to spare. */
export const TERMINATION_MESSAGE_MAX_BYTES = 3584;

export interface TerminationMessage {
  nonce: string;
  result: TraceResult;
}

/** A fresh random nonce (32 hex digits). */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export const NONCE_PATTERN = /^[0-9a-f]{8,64}$/;

/** The last line the runner prints, when it prints one (without a trailing newline). */
export function formatResultLine(result: TraceResult, nonce: string): string {
  if (!NONCE_PATTERN.test(nonce)) throw new Error(`invalid result nonce '${nonce}': use newNonce()`);
  const payload = deflateRawSync(JSON.stringify(result)).toString('base64url');
  return `${RESULT_LINE_PREFIX} ${nonce} ${COMPRESSED_PAYLOAD_PREFIX}${payload}`;
}

/** The termination log content, and whether it holds the whole result (false: trimmed to fit). */
export function terminationMessage(
  result: TraceResult,
  nonce: string,
  maxBytes = TERMINATION_MESSAGE_MAX_BYTES,
): { text: string; complete: boolean } {
  const measure = (r: TraceResult): number => Buffer.byteLength(JSON.stringify({ nonce, result: r }), 'utf8');
  const fitted = trimResult(result, maxBytes, measure);
  return { text: JSON.stringify({ nonce, result: fitted }), complete: fitted === result };
}

/** The termination log content: the nonce and the result trimmed to fit the limit. */
export function formatTerminationMessage(
  result: TraceResult,
  nonce: string,
  maxBytes = TERMINATION_MESSAGE_MAX_BYTES,
): string {
  return terminationMessage(result, nonce, maxBytes).text;
}
