// Runs bpftrace on a program file and supervises it until it ends.
//
// bpftrace runs with `-f json` so every line it prints says what it is; the
// runner renders program text and maps back into bpftrace's familiar text
// form on stdout and keeps the last printed contents of each map for the
// result. Stop sources (deadline, SIGINT/SIGTERM, the stop file, the command's
// abort signal) all act like kubectl-trace's first Ctrl-C: bpftrace gets
// SIGINT, prints its maps, and has the grace period to exit before SIGKILL.
// A second SIGINT or SIGTERM kills it at once.
//
// bpftrace runs in its own process group, so a terminal's Ctrl-C reaches only
// the runner, which decides what bpftrace gets.
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { CommandContext } from '../command.ts';
import type { TraceOutcome, TraceResult } from '../tracejob/result.ts';
import { decodeEventLine, type MapSnapshot } from './bpftrace-events.ts';
import { LineAwareWriter, readLineBatches, readLines } from './line-io.ts';
import { toMapResults, truncateText } from './result-build.ts';
import { RESULT_LIMITS } from '../tracejob/result-limits.ts';

/** The line kubectl-trace prints on the first Ctrl-C; people know it. */
export const FIRST_SIGINT_LINE =
  'first SIGINT received, now if your program had maps and did not free them it should print them out';

export type StopReason = 'deadline' | 'signal' | 'stop-file';

export interface TraceOptions {
  bpftrace: string;
  /** The file bpftrace runs. */
  programFile: string;
  /** The path to show in messages instead of programFile (when it is a rewritten copy). */
  displayPath?: string;
  args: readonly string[];
  /** Seconds from start until the trace is stopped. */
  deadline?: number;
  /** Seconds bpftrace has to print its maps and exit once stopped. */
  gracePeriod: number;
  stopFile?: string;
  stopFilePollMs?: number;
  env?: Readonly<Record<string, string | undefined>>;
  stdout: LineAwareWriter;
  stderr: NodeJS.WritableStream;
  onSignal: CommandContext['onSignal'];
  signal?: AbortSignal;
  now?: () => Date;
}

export interface TraceRun {
  result: TraceResult;
  /** The runner's exit code: 0 when the trace ran and ended normally. */
  exitCode: number;
}

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
  SIGABRT: 6,
};

// bpftrace v0.17 prints "ERROR: ... couldn't set RLIMIT_MEMLOCK" when it cannot
// raise the limit; kernels since 5.11 account BPF memory by cgroup instead, so
// it is harmless there, and a real shortage shows up as a map or load error.
const HARMLESS_ERROR = /RLIMIT_MEMLOCK/;
const ATTACH_ERROR =
  /Error attaching probe|[Cc]ould not attach|attach.*failed|tracepoints? not found|probes? not found|No probes to attach|(?:file|function|probe|tracepoint|target)\b.* does not exist/;
const ENVIRONMENT_ERROR = /root user|Operation not permitted|Permission denied|Failed to (?:load|create) map/;

const NUDGE_INTERVAL_MS = 1000;

function stopOutcome(reason: StopReason): TraceOutcome {
  return reason === 'deadline' ? 'DeadlineReached' : 'Stopped';
}

export async function runTrace(options: TraceOptions): Promise<TraceRun> {
  const now = options.now ?? (() => new Date());
  const out = options.stdout;
  const displayPath = options.displayPath ?? options.programFile;
  const maps = new Map<string, MapSnapshot>();
  const errorLines: string[] = [];
  const stderrTail: string[] = [];
  const rawTail: string[] = [];
  let attached = false;
  let outputLines = 0;
  let lostEvents = 0;
  let stopReason: StopReason | undefined;
  let killReason: 'grace' | 'second-signal' | undefined;
  let secondSignal: string | undefined;
  let finished = false;
  let spawnError: Error | undefined;
  let heldBack: string | undefined;
  /** Set once bpftrace shows it is on its way out (its blank lines before the maps, or a map). */
  let exiting = false;
  let nudged = false;
  const timers: NodeJS.Timeout[] = [];

  const startedAt = now();
  const child = spawn(options.bpftrace, ['-B', 'line', '-f', 'json', '--', options.programFile, ...options.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env:
      options.env === undefined
        ? undefined
        : Object.fromEntries(Object.entries(options.env).filter((e): e is [string, string] => e[1] !== undefined)),
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });

  /** Signals bpftrace (SIGKILL: its whole process group); false when it had already exited. */
  const kill = (sig: NodeJS.Signals): boolean => {
    if (finished || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return false;
    try {
      if (sig === 'SIGKILL') process.kill(-child.pid, sig);
      else child.kill(sig);
      return true;
    } catch {
      return false; // already gone
    }
  };

  const requestStop = (reason: StopReason, why: string): void => {
    if (finished) return;
    if (stopReason === undefined) {
      stopReason = reason;
      options.stderr.write(
        `trace-operator runner: ${why}; sending SIGINT to bpftrace (grace period ${options.gracePeriod}s)\n`,
      );
      void out.writeLine(FIRST_SIGINT_LINE);
      kill('SIGINT');
      // bpftrace v0.17 misses a SIGINT that lands while it is still attaching
      // probes (it only checks between events or when the signal interrupts
      // its poll), and would run on. Until it shows it is exiting, nudge it
      // every second with SIGTERM: the same handler as SIGINT, but never reset
      // to the default action while the maps print, so it cannot kill them.
      timers.push(
        setInterval(() => {
          if (exiting) return;
          if (kill('SIGTERM') && !nudged) {
            nudged = true;
            options.stderr.write('trace-operator runner: bpftrace has not reacted to SIGINT yet; sending SIGTERM\n');
          }
        }, NUDGE_INTERVAL_MS),
      );
      timers.push(
        setTimeout(() => {
          if (!kill('SIGKILL')) return;
          killReason ??= 'grace';
          options.stderr.write(
            `trace-operator runner: bpftrace did not exit within the ${options.gracePeriod}s grace period; killed it\n`,
          );
        }, options.gracePeriod * 1000),
      );
    } else if (reason === 'signal') {
      options.stderr.write(`trace-operator runner: ${why} again; ending bpftrace at once\n`);
      if (kill('SIGKILL')) {
        killReason ??= 'second-signal';
        secondSignal ??= /^SIG[A-Z]+/.exec(why)?.[0];
      }
    }
  };

  options.onSignal('SIGINT', () => requestStop('signal', 'SIGINT received'));
  options.onSignal('SIGTERM', () => requestStop('signal', 'SIGTERM received'));
  const onAbort = (): void => requestStop('signal', 'asked to stop');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();

  if (options.deadline !== undefined) {
    const deadline = options.deadline;
    timers.push(setTimeout(() => requestStop('deadline', `deadline of ${deadline}s reached`), deadline * 1000));
  }
  if (options.stopFile !== undefined) {
    const stopFile = options.stopFile;
    let polling = false;
    const poll = async (): Promise<void> => {
      if (polling || finished || stopReason !== undefined) return;
      polling = true;
      try {
        await stat(stopFile);
        requestStop('stop-file', `stop file ${stopFile} appeared`);
      } catch {
        // not there yet
      } finally {
        polling = false;
      }
    };
    timers.push(setInterval(() => void poll(), options.stopFilePollMs ?? 1000));
  }

  /** Notes what one line of bpftrace's output says; returns its text. */
  const handleStdoutLine = (line: string): string => {
    const event = decodeEventLine(line);
    if (stopReason !== undefined && (event.type === 'map' || (event.type === 'raw' && event.text === '\n')))
      exiting = true;
    switch (event.type) {
      case 'map':
        maps.set(event.map.name, event.map);
        break;
      case 'attached':
        attached = true;
        break;
      case 'lost':
        lostEvents += event.events;
        break;
      case 'output':
        for (let i = event.text.indexOf('\n'); i >= 0; i = event.text.indexOf('\n', i + 1)) outputLines++;
        break;
      case 'raw':
        // bpftrace prints some failures ("No probes to attach") as plain text on stdout.
        if (event.text.trim() !== '') {
          rawTail.push(event.text.trim());
          if (rawTail.length > 20) rawTail.shift();
        }
        break;
    }
    return event.text;
  };

  const readStdout = (async () => {
    if (child.stdout === null) return;
    // One write per chunk read, not per line: at 100 000 lines/s a write per
    // line costs more than everything else the runner does.
    for await (const lines of readLineBatches(child.stdout)) {
      let text = '';
      for (const line of lines) text += handleStdoutLine(line);
      await out.write(text);
    }
  })();

  const readStderr = (async () => {
    if (child.stderr === null) return;
    for await (const raw of readLines(child.stderr)) {
      const line = options.displayPath === undefined ? raw : raw.replaceAll(options.programFile, displayPath);
      // Held back: an "ERROR:" that is no error would open every trace's log.
      // It is shown after all if bpftrace fails (it may be the cause on old kernels).
      if (HARMLESS_ERROR.test(line)) {
        heldBack = line;
        continue;
      }
      options.stderr.write(`${line}\n`);
      if (line.trim() === '') continue;
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      if (/ERROR:/.test(line) && !HARMLESS_ERROR.test(line) && errorLines.length < 20) errorLines.push(line.trim());
    }
  })();

  const exit = await exited;
  await Promise.all([readStdout, readStderr]);
  finished = true;
  for (const t of timers) clearTimeout(t);
  options.signal?.removeEventListener('abort', onAbort);
  const finishedAt = now();
  if (heldBack !== undefined && exit.code !== 0 && stopReason === undefined) options.stderr.write(`${heldBack}\n`);

  let exitCode = exit.code ?? (exit.signal === null ? 1 : 128 + (SIGNAL_NUMBERS[exit.signal] ?? 0));
  let outcome: TraceOutcome;
  let message: string | undefined;
  if (spawnError !== undefined) {
    const code = (spawnError as NodeJS.ErrnoException).code;
    exitCode = code === 'ENOENT' ? 127 : 126;
    outcome = 'Error';
    message =
      code === 'ENOENT'
        ? `bpftrace not found ('${options.bpftrace}'): install it (Debian: apt-get install bpftrace) or pass --bpftrace=PATH`
        : `could not start bpftrace ('${options.bpftrace}'): ${spawnError.message}`;
  } else if (killReason !== undefined && stopReason !== undefined) {
    outcome = stopOutcome(stopReason);
    message =
      killReason === 'grace'
        ? `bpftrace did not exit within the ${options.gracePeriod}s grace period after SIGINT and was killed; maps it had not printed are missing`
        : `a second ${secondSignal ?? 'stop signal'} ended bpftrace at once; maps it had not printed are missing`;
  } else if (exit.code === 0) {
    outcome = stopReason === undefined ? 'Completed' : stopOutcome(stopReason);
  } else {
    const errors = errorLines.join('; ');
    // Some failures ("No probes to attach") come without an "ERROR:" prefix.
    const attachLine = [...errorLines, ...stderrTail, ...rawTail].find((l) => ATTACH_ERROR.test(l));
    if (attachLine !== undefined) outcome = 'AttachError';
    else if (errorLines.some((l) => ENVIRONMENT_ERROR.test(l))) outcome = 'Error';
    else if (!attached && errorLines.length > 0) outcome = 'CompileError';
    else if (stopReason !== undefined && exit.signal !== null) outcome = stopOutcome(stopReason);
    else outcome = 'Error';
    const detail = errors !== '' ? errors : (attachLine ?? [...stderrTail, ...rawTail].slice(-3).join('; '));
    const how = exit.signal === null ? `exit code ${exit.code}` : exit.signal;
    if (outcome === 'Stopped' || outcome === 'DeadlineReached') message = undefined;
    else message = detail !== '' ? detail : `bpftrace ended with ${how}`;
  }
  if (lostEvents > 0) {
    const lost = `bpftrace lost ${lostEvents} events (its perf buffer overflowed; raise BPFTRACE_PERF_RB_PAGES or print less)`;
    message = message === undefined ? lost : `${message}; ${lost}`;
  }

  const built = toMapResults([...maps.values()]);
  const result: TraceResult = {
    outcome,
    exitCode,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    outputLines,
    maps: built.maps,
    truncated: built.truncated,
  };
  if (message !== undefined) result.message = truncateText(message, RESULT_LIMITS.messageLength);
  const ok = outcome === 'Completed' || outcome === 'DeadlineReached' || outcome === 'Stopped';
  return { result, exitCode: ok ? 0 : 1 };
}
