// The runner's machine-readable result, as the runner writes it (the
// controller reads it back with result-parse.ts).
//
// The runner ends its stdout with one line
//     TRACE_OPERATOR_RESULT <nonce> <TraceResult as JSON>
// and writes {"nonce": <nonce>, "result": <TraceResult trimmed to fit>} to
// the termination log. The nonce is random per run, so a program that prints
// a line that looks like a result cannot be mistaken for the runner's: with
// the termination message at hand the reader takes the line with its nonce;
// without it, the last result line (the runner prints its line after
// bpftrace has exited, so nothing the program printed can follow it).
//
// Guarantees: the result line is a single line of JSON; the termination
// message is at most TERMINATION_MESSAGE_MAX_BYTES bytes. Caveat: with no
// termination message and logs cut before the runner's own line, a fake line
// printed by the program would be taken.
import { randomBytes } from 'node:crypto';
import type { TraceResult } from '../tracejob/result.ts';
import { trimResult } from './result-build.ts';

export const RESULT_LINE_PREFIX = 'TRACE_OPERATOR_RESULT';

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

/** The last line the runner prints (without a trailing newline). */
export function formatResultLine(result: TraceResult, nonce: string): string {
  if (!NONCE_PATTERN.test(nonce)) throw new Error(`invalid result nonce '${nonce}': use newNonce()`);
  return `${RESULT_LINE_PREFIX} ${nonce} ${JSON.stringify(result)}`;
}

/** The termination log content: the nonce and the result trimmed to fit the limit. */
export function formatTerminationMessage(
  result: TraceResult,
  nonce: string,
  maxBytes = TERMINATION_MESSAGE_MAX_BYTES,
): string {
  const measure = (r: TraceResult): number => Buffer.byteLength(JSON.stringify({ nonce, result: r }), 'utf8');
  return JSON.stringify({ nonce, result: trimResult(result, maxBytes, measure) });
}
