// What the runner learns from bpftrace while it runs, and how a finished run
// is classified: pure functions of what was printed and how bpftrace ended,
// apart from the supervisor (trace.ts) that spawns, signals and reads it.
//
// Guarantees: every run gets exactly one outcome; a run that was asked to
// stop and exited by itself is DeadlineReached or Stopped, never Error; a
// kill after the grace period says which maps may be missing; lost events
// are always named in the message.
import type { TraceOutcome, TraceResult } from '../tracejob/result.ts';
import { RESULT_LIMITS } from '../tracejob/result-limits.ts';
import { decodeEventLine, type BpftraceEvent, type MapSnapshot } from './bpftrace-events.ts';
import { toMapResults, truncateText } from './result-build.ts';

/** What stopped a run: its deadline, a signal (SIGINT, SIGTERM), the stop file, or a stop request (SIGURG). */
export type StopReason = 'deadline' | 'signal' | 'stop-file' | 'request';

/** What bpftrace's output said so far. */
export interface TraceObservation {
  /** The last printed contents of each map, by name. */
  maps: Map<string, MapSnapshot>;
  attached: boolean;
  /** Lines of text the program printed (printf and the like), not maps. */
  outputLines: number;
  lostEvents: number;
  /** "ERROR:" lines on stderr (at most TAIL). */
  errorLines: string[];
  /** The last non-blank lines of stderr and of non-JSON stdout (at most TAIL each). */
  stderrTail: string[];
  rawTail: string[];
}

const TAIL = 20;

// bpftrace v0.17 prints "ERROR: ... couldn't set RLIMIT_MEMLOCK" when it cannot
// raise the limit; kernels since 5.11 account BPF memory by cgroup instead, so
// it is harmless there, and a real shortage shows up as a map or load error.
export const HARMLESS_ERROR = /RLIMIT_MEMLOCK/;
const ATTACH_ERROR =
  /Error attaching probe|[Cc]ould not attach|attach.*failed|tracepoints? not found|probes? not found|No probes to attach|(?:file|function|probe|tracepoint|target)\b.* does not exist/;
const ENVIRONMENT_ERROR = /root user|Operation not permitted|Permission denied|Failed to (?:load|create) map/;

export function newObservation(): TraceObservation {
  return {
    maps: new Map(),
    attached: false,
    outputLines: 0,
    lostEvents: 0,
    errorLines: [],
    stderrTail: [],
    rawTail: [],
  };
}

function pushTail(tail: string[], line: string): void {
  tail.push(line);
  if (tail.length > TAIL) tail.shift();
}

/** Notes one decoded stdout event. */
export function observeEvent(observation: TraceObservation, event: BpftraceEvent): void {
  switch (event.type) {
    case 'map':
      observation.maps.set(event.map.name, event.map);
      break;
    case 'attached':
      observation.attached = true;
      break;
    case 'lost':
      observation.lostEvents += event.events;
      break;
    case 'output':
      for (let i = event.text.indexOf('\n'); i >= 0; i = event.text.indexOf('\n', i + 1)) observation.outputLines++;
      break;
    case 'raw':
      // bpftrace prints some failures ("No probes to attach") as plain text on stdout.
      if (event.text.trim() !== '') pushTail(observation.rawTail, event.text.trim());
      break;
  }
}

/** Notes one line bpftrace wrote to stderr (already shown to the user). */
export function observeStderrLine(observation: TraceObservation, line: string): void {
  if (line.trim() === '') return;
  pushTail(observation.stderrTail, line);
  if (/ERROR:/.test(line) && !HARMLESS_ERROR.test(line) && observation.errorLines.length < TAIL)
    observation.errorLines.push(line.trim());
}

const PRINTF_PREFIX = '{"type": "printf", "data": "';

/**
 * The text of the commonest line by far, a printf with no escape but its
 * final "\n", without parsing JSON; undefined for anything else.
 */
function plainPrintfText(line: string): string | undefined {
  if (!line.startsWith(PRINTF_PREFIX) || !line.endsWith('"}')) return undefined;
  const content = line.slice(PRINTF_PREFIX.length, -2);
  const escape = content.indexOf('\\');
  if (escape === -1) return content.includes('"') ? undefined : content;
  if (escape !== content.length - 2 || content.charCodeAt(escape + 1) !== 110 /* n */) return undefined;
  return content.includes('"') ? undefined : `${content.slice(0, -2)}\n`;
}

/** What a batch of stdout lines shows, and the text to print for them. */
export interface ObservedBatch {
  text: string;
  /** A map or the blank line bpftrace prints before its maps: it is on its way out. */
  exiting: boolean;
}

/** Notes a batch of stdout lines (without their "\n") and renders them as bpftrace's text output. */
export function observeStdoutLines(observation: TraceObservation, lines: readonly string[]): ObservedBatch {
  let text = '';
  let exiting = false;
  for (const line of lines) {
    const plain = plainPrintfText(line);
    if (plain !== undefined) {
      if (plain.endsWith('\n')) observation.outputLines++;
      text += plain;
      continue;
    }
    const event = decodeEventLine(line);
    if (event.type === 'map' || (event.type === 'raw' && event.text === '\n')) exiting = true;
    observeEvent(observation, event);
    text += event.text;
  }
  return { text, exiting };
}

/** How the supervisor ended the run, if it did. */
export interface StopRecord {
  reason?: StopReason | undefined;
  /** Why bpftrace was killed (SIGKILL): the grace period ran out, or a second stop signal. */
  kill?: 'grace' | 'second-signal' | undefined;
  /** The second signal's name, for the message. */
  secondSignal?: string | undefined;
}

export interface TraceEnd {
  exit: { code: number | null; signal: NodeJS.Signals | null };
  /** Set when bpftrace could not be started at all. */
  spawnError?: NodeJS.ErrnoException | undefined;
  stop: StopRecord;
  /** The bpftrace command, for messages. */
  bpftrace: string;
  gracePeriod: number;
}

export interface Classification {
  outcome: TraceOutcome;
  /** bpftrace's exit code, or the shell's convention (127 not found, 126 not runnable, 128+N for signal N). */
  exitCode: number;
  message?: string;
}

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
};

function stopOutcome(reason: StopReason): TraceOutcome {
  return reason === 'deadline' ? 'DeadlineReached' : 'Stopped';
}

function spawnFailure(end: TraceEnd, error: NodeJS.ErrnoException): Classification {
  const missing = error.code === 'ENOENT';
  return {
    outcome: 'Error',
    exitCode: missing ? 127 : 126,
    message: missing
      ? `bpftrace not found ('${end.bpftrace}'): install it (Debian: apt-get install bpftrace) or pass --bpftrace=PATH`
      : `could not start bpftrace ('${end.bpftrace}'): ${error.message}`,
  };
}

/** A run that bpftrace ended with a failure: which kind, from what it printed. */
function failure(observation: TraceObservation, end: TraceEnd, exitCode: number): Classification {
  const { errorLines, stderrTail, rawTail } = observation;
  const reason = end.stop.reason;
  // Some failures ("No probes to attach") come without an "ERROR:" prefix.
  const attachLine = [...errorLines, ...stderrTail, ...rawTail].find((l) => ATTACH_ERROR.test(l));
  let outcome: TraceOutcome;
  if (attachLine !== undefined) outcome = 'AttachError';
  else if (errorLines.some((l) => ENVIRONMENT_ERROR.test(l))) outcome = 'Error';
  else if (!observation.attached && errorLines.length > 0) outcome = 'CompileError';
  else if (reason !== undefined && end.exit.signal !== null) return { outcome: stopOutcome(reason), exitCode };
  else outcome = 'Error';
  const errors = errorLines.join('; ');
  const detail = errors !== '' ? errors : (attachLine ?? [...stderrTail, ...rawTail].slice(-3).join('; '));
  const how = end.exit.signal === null ? `exit code ${end.exit.code}` : end.exit.signal;
  return { outcome, exitCode, message: detail !== '' ? detail : `bpftrace ended with ${how}` };
}

/** The outcome, exit code and message of a finished run. */
export function classifyRun(observation: TraceObservation, end: TraceEnd): Classification {
  const { exit, stop } = end;
  const exitCode = exit.code ?? (exit.signal === null ? 1 : 128 + (SIGNAL_NUMBERS[exit.signal] ?? 0));
  let classified: Classification;
  if (end.spawnError !== undefined) classified = spawnFailure(end, end.spawnError);
  else if (stop.kill !== undefined && stop.reason !== undefined) {
    classified = {
      outcome: stopOutcome(stop.reason),
      exitCode,
      message:
        stop.kill === 'grace'
          ? `bpftrace did not exit within the ${end.gracePeriod}s grace period after SIGINT and was killed; maps it had not printed are missing`
          : `a second ${stop.secondSignal ?? 'stop signal'} ended bpftrace at once; maps it had not printed are missing`,
    };
  } else if (exit.code === 0)
    classified = { outcome: stop.reason === undefined ? 'Completed' : stopOutcome(stop.reason), exitCode };
  else classified = failure(observation, end, exitCode);
  if (observation.lostEvents > 0) {
    const lost = `bpftrace lost ${observation.lostEvents} events (its perf buffer overflowed; raise BPFTRACE_PERF_RB_PAGES or print less)`;
    classified.message = classified.message === undefined ? lost : `${classified.message}; ${lost}`;
  }
  return classified;
}

/** True for the outcomes of a trace that ran as asked (the runner exits 0). */
export function isSuccessfulOutcome(outcome: TraceOutcome): boolean {
  return outcome === 'Completed' || outcome === 'DeadlineReached' || outcome === 'Stopped';
}

/** The size-bounded result of a finished run. */
export function buildTraceResult(
  observation: TraceObservation,
  classified: Classification,
  times: { startedAt: Date; finishedAt: Date },
): TraceResult {
  const built = toMapResults([...observation.maps.values()]);
  const result: TraceResult = {
    outcome: classified.outcome,
    exitCode: classified.exitCode,
    startedAt: times.startedAt.toISOString(),
    finishedAt: times.finishedAt.toISOString(),
    outputLines: observation.outputLines,
    maps: built.maps,
    truncated: built.truncated,
  };
  if (classified.message !== undefined) result.message = truncateText(classified.message, RESULT_LIMITS.messageLength);
  return result;
}
