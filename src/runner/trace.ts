// Runs bpftrace on a program file (or takes over the one the launcher started) and supervises it until it ends.
//
// bpftrace runs with `-f json` so every line it prints says what it is; the
// runner renders program text and maps back into bpftrace's familiar text
// form on stdout and keeps the last printed contents of each map for the
// result (trace-outcome.ts holds that, and how a run is classified). Stop
// sources (deadline, SIGINT/SIGTERM, the stop file, a stop request on
// SIGURG, the command's abort signal) all act like kubectl-trace's first
// Ctrl-C: bpftrace gets SIGINT, prints its maps, and has the grace period to
// exit before SIGKILL. A second SIGINT or SIGTERM kills it at once; a
// repeated stop request changes nothing.
//
// bpftrace runs in its own process group, so a terminal's Ctrl-C reaches only
// the runner, which decides what bpftrace gets.
import { stat } from 'node:fs/promises';
import type { CommandContext } from '../command.ts';
import type { TraceResult } from '../tracejob/result.ts';
import { type LineAwareWriter, pacedChunks, readLineBatches, readLines } from './line-io.ts';
import {
  adoptBpftrace,
  type BpftraceProcess,
  bpftraceArgv,
  discardPrestarted,
  type Prestarted,
  prestartedMismatch,
  spawnBpftrace,
} from './bpftrace-process.ts';
import { STOP_REQUEST_SIGNAL } from './pid-file.ts';
import type { StopReason, StopRecord, TraceObservation } from './trace-outcome.ts';

// trace-outcome.ts (and the JSON reader, the renderer and the result maths
// behind it) is loaded after bpftrace is spawned, while bpftrace compiles and
// attaches (about 100 ms): the start path pays only for what spawns it.
type Outcomes = typeof import('./trace-outcome.ts');

export type { StopReason } from './trace-outcome.ts';

/** The line kubectl-trace prints on the first Ctrl-C; people know it. */
export const FIRST_SIGINT_LINE =
  'first SIGINT received, now if your program had maps and did not free them it should print them out';

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
  /** The bpftrace the launcher started for this trace (bpftrace-process.ts), if it did. */
  prestarted?: Prestarted | undefined;
}

export interface TraceRun {
  result: TraceResult;
  /** The runner's exit code: 0 when the trace ran and ended normally. */
  exitCode: number;
}

const NUDGE_INTERVAL_MS = 1000;

/** Takes over the launcher's bpftrace when it runs this trace's command line; else spawns one. */
function startBpftrace(options: TraceOptions): BpftraceProcess {
  const { prestarted } = options;
  if (prestarted !== undefined) {
    const mismatch = prestartedMismatch(prestarted, bpftraceArgv(options.bpftrace, options.programFile, options.args));
    if (mismatch === undefined) return adoptBpftrace(prestarted);
    discardPrestarted(prestarted);
    options.stderr.write(
      `trace-operator runner: warning: not using the bpftrace the launcher started (${mismatch}); starting it here\n`,
    );
  }
  return spawnBpftrace(options);
}

/**
 * The stop protocol for one bpftrace process: SIGINT once, SIGTERM nudges
 * until bpftrace shows it is exiting, SIGKILL after the grace period or on a
 * second stop signal. Records what it did for the classification.
 */
class StopControl {
  readonly record: StopRecord = {};
  #bpftrace: BpftraceProcess;
  #options: Pick<TraceOptions, 'gracePeriod' | 'stderr' | 'stdout'>;
  #timers: NodeJS.Timeout[] = [];
  #finished = false;
  #exiting = false;
  #nudged = false;

  constructor(bpftrace: BpftraceProcess, options: Pick<TraceOptions, 'gracePeriod' | 'stderr' | 'stdout'>) {
    this.#bpftrace = bpftrace;
    this.#options = options;
  }

  get stopping(): boolean {
    return this.record.reason !== undefined;
  }

  /** bpftrace printed a map or the blank line before its maps: stop nudging it. */
  exiting(): void {
    if (this.stopping) this.#exiting = true;
  }

  /** Runs `fn` every `ms` until the trace ends. */
  every(ms: number, fn: () => void): void {
    this.#timers.push(setInterval(fn, ms));
  }

  after(ms: number, fn: () => void): void {
    this.#timers.push(setTimeout(fn, ms));
  }

  request(reason: StopReason, why: string): void {
    if (this.#finished) return;
    const { stderr, gracePeriod } = this.#options;
    if (this.record.reason === undefined) {
      this.record.reason = reason;
      stderr.write(`trace-operator runner: ${why}; sending SIGINT to bpftrace (grace period ${gracePeriod}s)\n`);
      void this.#options.stdout.writeLine(FIRST_SIGINT_LINE);
      this.#kill('SIGINT');
      // bpftrace v0.17 misses a SIGINT that lands while it is still attaching
      // probes (it only checks between events or when the signal interrupts
      // its poll), and would run on. Until it shows it is exiting, nudge it
      // every second with SIGTERM: the same handler as SIGINT, but never reset
      // to the default action while the maps print, so it cannot kill them.
      this.every(NUDGE_INTERVAL_MS, () => {
        if (this.#exiting) return;
        if (this.#kill('SIGTERM') && !this.#nudged) {
          this.#nudged = true;
          stderr.write('trace-operator runner: bpftrace has not reacted to SIGINT yet; sending SIGTERM\n');
        }
      });
      this.after(gracePeriod * 1000, () => {
        if (!this.#kill('SIGKILL')) return;
        this.record.kill ??= 'grace';
        stderr.write(
          `trace-operator runner: bpftrace did not exit within the ${gracePeriod}s grace period; killed it\n`,
        );
      });
    } else if (reason === 'signal') {
      stderr.write(`trace-operator runner: ${why} again; ending bpftrace at once\n`);
      if (this.#kill('SIGKILL')) {
        this.record.kill ??= 'second-signal';
        this.record.secondSignal ??= /^SIG[A-Z]+/.exec(why)?.[0];
      }
    }
  }

  /** The trace has ended: no more signals, no more timers. */
  finish(): void {
    this.#finished = true;
    for (const t of this.#timers) clearTimeout(t);
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Signals bpftrace (SIGKILL: its whole process group); false when it had already exited. */
  #kill(sig: NodeJS.Signals): boolean {
    const { pid } = this.#bpftrace;
    if (this.#finished || pid === undefined || this.#bpftrace.exited) return false;
    try {
      process.kill(sig === 'SIGKILL' ? -pid : pid, sig);
      return true;
    } catch {
      return false; // already gone
    }
  }
}

/** Wires every stop source to `stop`; returns what undoes the abort listener. */
function watchStopSources(options: TraceOptions, stop: StopControl): () => void {
  options.onSignal('SIGINT', () => stop.request('signal', 'SIGINT received'));
  options.onSignal('SIGTERM', () => stop.request('signal', 'SIGTERM received'));
  options.onSignal(STOP_REQUEST_SIGNAL, () =>
    stop.request('request', 'stop requested (trace-operator stop --request)'),
  );
  const onAbort = (): void => stop.request('signal', 'asked to stop');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();

  const { deadline, stopFile } = options;
  if (deadline !== undefined)
    stop.after(deadline * 1000, () => stop.request('deadline', `deadline of ${deadline}s reached`));
  if (stopFile !== undefined) {
    let polling = false;
    stop.every(options.stopFilePollMs ?? 1000, () => {
      if (polling || stop.finished || stop.stopping) return;
      polling = true;
      stat(stopFile)
        .then(
          () => stop.request('stop-file', `stop file ${stopFile} appeared`),
          () => undefined, // not there yet
        )
        .finally(() => (polling = false));
    });
  }
  return () => options.signal?.removeEventListener('abort', onAbort);
}

/**
 * After a read of less than a quarter of a pipe's 64 KiB, wait a millisecond
 * before reading on, so that at a high rate the lines come in fewer, larger
 * reads (output-fifo.ts has the figures); a reader that is behind never
 * waits. At a low rate a line is shown at most that much later.
 */
const STDOUT_PACING = { pauseMs: 1, fullBytes: 16 * 1024 };

/** Copies bpftrace's stdout, rendered, to the runner's stdout; one write per chunk read, not per line. */
async function pumpStdout(
  outcomes: Outcomes,
  stdout: BpftraceProcess['stdout'],
  observation: TraceObservation,
  stop: StopControl,
  out: LineAwareWriter,
): Promise<void> {
  for await (const lines of readLineBatches(pacedChunks(stdout, STDOUT_PACING))) {
    const batch = outcomes.observeStdoutLines(observation, lines);
    if (batch.exiting) stop.exiting();
    await out.write(batch.text);
  }
}

/** Copies bpftrace's stderr; returns the harmless "ERROR:" line it held back, if any. */
async function pumpStderr(
  outcomes: Outcomes,
  bpftrace: BpftraceProcess,
  observation: TraceObservation,
  options: TraceOptions,
): Promise<string | undefined> {
  if (bpftrace.stderr === null) return undefined;
  let heldBack: string | undefined;
  for await (const raw of readLines(bpftrace.stderr)) {
    const line = options.displayPath === undefined ? raw : raw.replaceAll(options.programFile, options.displayPath);
    // Held back: an "ERROR:" that is no error would open every trace's log.
    // It is shown after all if bpftrace fails (it may be the cause on old kernels).
    if (outcomes.HARMLESS_ERROR.test(line)) {
      heldBack = line;
      continue;
    }
    options.stderr.write(`${line}\n`);
    outcomes.observeStderrLine(observation, line);
  }
  return heldBack;
}

export async function runTrace(options: TraceOptions): Promise<TraceRun> {
  const now = options.now ?? (() => new Date());
  const startedAt = now();
  const bpftrace = startBpftrace(options);
  const stop = new StopControl(bpftrace, options);
  const unwatch = watchStopSources(options, stop);

  const outcomes: Outcomes = await import('./trace-outcome.ts');
  const observation = outcomes.newObservation();
  const stdoutDone = pumpStdout(outcomes, bpftrace.stdout, observation, stop, options.stdout);
  const stderrDone = pumpStderr(outcomes, bpftrace, observation, options);

  const { spawnError, ...exit } = await bpftrace.ended;
  const [, heldBack] = await Promise.all([stdoutDone, stderrDone]);
  stop.finish();
  unwatch();
  const finishedAt = now();
  if (heldBack !== undefined && exit.code !== 0 && !stop.stopping) options.stderr.write(`${heldBack}\n`);

  const classified = outcomes.classifyRun(observation, {
    exit,
    spawnError,
    stop: stop.record,
    bpftrace: options.bpftrace,
    gracePeriod: options.gracePeriod,
  });
  const result = outcomes.buildTraceResult(observation, classified, { startedAt, finishedAt });
  return { result, exitCode: outcomes.isSuccessfulOutcome(result.outcome) ? 0 : 1 };
}
