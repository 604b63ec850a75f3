// The runner pipeline shared by `trace-operator runner` (in the trace pod)
// and `run-local`: pid file, program, $container_pid, tracefs, bpftrace,
// then the result line and the termination message.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CommandContext } from '../command.ts';
import type { TraceResult } from '../tracejob/result.ts';
import type { RunnerOptions } from './args.ts';
import { findContainerPid, substituteContainerPid, usesContainerPid } from './container-pid.ts';
import { LineAwareWriter } from './line-io.ts';
import { discardPrestarted, type Prestarted } from './bpftrace-process.ts';
import { type MountFn, ensureTracingFs } from './tracefs.ts';
import { runTrace } from './trace.ts';
import { removePidFile, STOP_REQUEST_SIGNAL, writePidFile } from './pid-file.ts';
import { errorMessage } from '../error-message.ts';

export interface RunnerDeps {
  /** Where /proc is (for $container_pid); default /proc. */
  procRoot?: string;
  /** Where sysfs is (for tracefs); default /sys. */
  sysRoot?: string;
  mount?: MountFn;
  /** Skip mounting tracefs (run-local on a machine that has it). */
  skipTracingFs?: boolean;
  /** The PID written to the pid file. */
  pid: number;
  /**
   * Print the TRACE_OPERATOR_RESULT line at the end where it is needed (no
   * termination log, or a result too big for it); false never prints it
   * (run-local --result json).
   */
  printResultLine?: boolean;
  nonce?: string;
  now?: () => Date;
  stopFilePollMs?: number;
  /** How bpftrace's messages name the program (default: its path). */
  programLabel?: string;
  /** The bpftrace the launcher started (bin/trace-operator); ended unused if the trace does not get that far. */
  prestarted?: Prestarted | undefined;
}

export interface RunnerRun {
  result: TraceResult;
  exitCode: number;
  nonce: string;
}

function failure(message: string, now: Date): TraceResult {
  return {
    outcome: 'Error',
    exitCode: 1,
    message,
    startedAt: now.toISOString(),
    finishedAt: now.toISOString(),
    maps: [],
    truncated: false,
  };
}

/** Prepares the program bpftrace runs: the file itself, or a copy with $container_pid replaced. */
async function prepareProgram(
  options: RunnerOptions,
  deps: RunnerDeps,
  stderr: NodeJS.WritableStream,
): Promise<{ file: string; tempDir?: string } | { error: string }> {
  let text: string;
  try {
    text = await readFile(options.program, 'utf8');
  } catch (error) {
    return {
      error: `cannot read the program ${options.program}: ${errorMessage(error)}; check the ConfigMap key program.bt is mounted at /programs`,
    };
  }
  if (text.trim() === '')
    return { error: `the program ${options.program} is empty: put a bpftrace program in spec.program` };
  if (!usesContainerPid(text)) return { file: options.program };
  if (options.containerId === undefined) {
    return {
      error:
        'the program uses $container_pid but the trace has no target container (--container-id): target a pod, or use a PID instead',
    };
  }
  let pid: number;
  try {
    pid = await findContainerPid({ containerId: options.containerId, podUid: options.podUid, procRoot: deps.procRoot });
  } catch (error) {
    return { error: errorMessage(error) };
  }
  stderr.write(`trace-operator runner: $container_pid is ${pid} (container ${options.containerId})\n`);
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'trace-operator-program-'));
  const file = path.join(tempDir, path.basename(options.program) || 'program.bt');
  await writeFile(file, substituteContainerPid(text, pid));
  return { file, tempDir };
}

/**
 * Writes the result where the controller reads it: the termination log, and
 * a result line at the end of stdout only when the termination log cannot
 * hold the whole result (result-format.ts says why).
 */
async function publishResult(
  result: TraceResult,
  terminationLog: string | undefined,
  stdout: LineAwareWriter,
  stderr: NodeJS.WritableStream,
  deps: RunnerDeps,
): Promise<string> {
  // Needed only once bpftrace has ended: not on the start path.
  const { formatResultLine, newNonce, terminationMessage } = await import('./result-format.ts');
  const nonce = deps.nonce ?? newNonce();
  let complete = false;
  if (terminationLog !== undefined) {
    const message = terminationMessage(result, nonce);
    try {
      await writeFile(terminationLog, message.text);
      complete = message.complete;
    } catch (error) {
      stderr.write(
        `trace-operator runner: warning: cannot write the termination log ${terminationLog}: ${errorMessage(error)}\n`,
      );
    }
  }
  if (deps.printResultLine !== false && !complete) await stdout.writeLine(formatResultLine(result, nonce));
  await stdout.endLine();
  await stdout.flush();
  return nonce;
}

/**
 * Listens for the stop request (SIGURG) from the start, before the pid file
 * names this runner, and passes it to the trace's handler once that is
 * registered: a request that arrives while the program is being prepared is
 * acted on rather than ignored (SIGURG's default action). SIGINT and SIGTERM
 * keep their default until the trace registers its handlers, so they still
 * end a runner stuck before it.
 */
function holdStopRequests(onSignal: CommandContext['onSignal']): CommandContext['onSignal'] {
  const handlers: (() => void)[] = [];
  let held = 0;
  onSignal(STOP_REQUEST_SIGNAL, () => {
    if (handlers.length === 0) held++;
    for (const handler of handlers) handler();
  });
  return (sig, handler) => {
    if (sig !== STOP_REQUEST_SIGNAL) return onSignal(sig, handler);
    handlers.push(handler);
    for (; held > 0; held--) handler();
  };
}

export async function runRunner(options: RunnerOptions, ctx: CommandContext, deps: RunnerDeps): Promise<RunnerRun> {
  const now = deps.now ?? (() => new Date());
  const stdout = new LineAwareWriter(ctx.stdout);
  const onSignal = holdStopRequests(ctx.onSignal);
  let pidFileWritten = false;
  try {
    await writePidFile(options.pidFile, deps.pid);
    pidFileWritten = true;
  } catch (error) {
    ctx.stderr.write(
      `trace-operator runner: warning: cannot write the pid file ${options.pidFile} (${errorMessage(error)}); 'trace-operator stop' will not find this runner\n`,
    );
  }

  let run: { result: TraceResult; exitCode: number };
  let tempDir: string | undefined;
  let handedOver = false;
  try {
    const program = await prepareProgram(options, deps, ctx.stderr);
    if ('error' in program) {
      run = { result: failure(program.error, now()), exitCode: 1 };
    } else {
      tempDir = program.tempDir;
      if (deps.skipTracingFs !== true) {
        const tracing = await ensureTracingFs({ sysRoot: deps.sysRoot, mount: deps.mount });
        for (const warning of tracing.warnings) ctx.stderr.write(`trace-operator runner: warning: ${warning}\n`);
      }
      handedOver = true;
      run = await runTrace({
        prestarted: deps.prestarted,
        bpftrace: options.bpftrace,
        programFile: program.file,
        displayPath: deps.programLabel ?? (program.file === options.program ? undefined : options.program),
        args: options.args,
        deadline: options.deadline,
        gracePeriod: options.gracePeriod,
        stopFile: options.stopFile,
        stopFilePollMs: deps.stopFilePollMs,
        env: ctx.env,
        stdout,
        stderr: ctx.stderr,
        onSignal,
        signal: ctx.signal,
        now,
      });
    }
  } catch (error) {
    run = { result: failure(`the runner failed: ${errorMessage(error)}`, now()), exitCode: 1 };
  } finally {
    if (!handedOver && deps.prestarted !== undefined) discardPrestarted(deps.prestarted);
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  }

  const nonce = await publishResult(run.result, options.terminationLog, stdout, ctx.stderr, deps);
  if (run.exitCode !== 0) {
    const reason = (run.result.message ?? 'bpftrace failed').split('\n')[0];
    ctx.stderr.write(`trace-operator runner: ${run.result.outcome}: ${reason}\n`);
  }
  if (pidFileWritten) await removePidFile(options.pidFile, deps.pid);
  return { ...run, nonce };
}
