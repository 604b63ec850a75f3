// `trace-operator run-local`: a TraceJob's program run with bpftrace on this
// machine, through the same runner as in a trace pod, validated by the same
// code as in the controller. The quick way to try a TraceJob without a cluster.
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CommandContext } from '../command.ts';
import type { RunLocalOptions, RunnerOptions } from './args.ts';
import { DEFAULT_GRACE_PERIOD } from './args.ts';
import { type LocalProgram, RunLocalError } from './run-local-program.ts';
import { runRunner, type RunnerDeps } from './runner.ts';

/** The path of an executable: as given when it has a slash, else found on PATH. */
export async function findExecutable(name: string, pathVariable: string | undefined): Promise<string | undefined> {
  const candidates = name.includes('/')
    ? [name]
    : (pathVariable ?? '')
        .split(':')
        .filter((d) => d !== '')
        .map((d) => path.join(d, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export interface RunLocalDeps {
  /** The effective user id (0 for root). */
  uid: number;
  pid: number;
  runner?: Omit<RunnerDeps, 'pid' | 'printResultLine'>;
}

/** Checks what run-local needs before anything runs; throws RunLocalError saying what to do. */
export async function checkLocalPrerequisites(
  options: Pick<RunLocalOptions, 'bpftrace'>,
  env: CommandContext['env'],
  uid: number,
): Promise<string> {
  const bpftrace = await findExecutable(options.bpftrace, env['PATH']);
  if (bpftrace === undefined) {
    throw new RunLocalError(
      options.bpftrace.includes('/')
        ? `bpftrace not found at ${options.bpftrace}: pass --bpftrace=PATH to an installed bpftrace`
        : 'bpftrace not found on PATH: install it (Debian/Ubuntu: apt-get install bpftrace) or pass --bpftrace=PATH',
    );
  }
  if (uid !== 0)
    throw new RunLocalError(
      'run-local needs root to load BPF programs: run it with sudo (sudo -E npx trace-operator run-local ...)',
    );
  return bpftrace;
}

export async function runLocal(options: RunLocalOptions, ctx: CommandContext, deps: RunLocalDeps): Promise<number> {
  const bpftrace = await checkLocalPrerequisites(options, ctx.env, deps.uid);
  const local: LocalProgram =
    options.program !== undefined
      ? {
          program: options.program,
          args: options.args,
          deadline: options.deadline,
          gracePeriod: options.gracePeriod ?? DEFAULT_GRACE_PERIOD,
          source: '-e',
        }
      : await (await import('./run-local-manifest.ts')).loadTraceJobProgram(options.file ?? '', options);

  // A private directory per run: the program file and the pid file never collide with a trace pod's or another run's.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trace-operator-local-'));
  try {
    const programFile = path.join(dir, 'program.bt');
    await writeFile(programFile, local.program);
    const runnerOptions: RunnerOptions = {
      program: programFile,
      deadline: local.deadline,
      gracePeriod: local.gracePeriod,
      stopFile: undefined,
      terminationLog: undefined,
      podUid: undefined,
      containerId: undefined,
      bpftrace,
      pidFile: path.join(dir, 'runner.pid'),
      args: local.args,
      help: false,
    };
    const run = await runRunner(runnerOptions, ctx, {
      ...deps.runner,
      pid: deps.pid,
      printResultLine: options.result === 'line',
      programLabel: options.program !== undefined ? 'program' : local.source,
    });
    if (options.result === 'json') ctx.stdout.write(`${JSON.stringify(run.result, null, 2)}\n`);
    return run.exitCode;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
