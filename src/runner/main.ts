// The runner's commands as cli.ts calls them: runner, stop and run-local.
import type { CommandContext, CommandMain } from '../command.ts';
import {
  RUN_LOCAL_USAGE,
  RUNNER_USAGE,
  STOP_USAGE,
  UsageError,
  parseRunLocalArgs,
  parseRunnerArgs,
  parseStopArgs,
} from './args.ts';
import { discardPrestarted, prestartedChild } from './bpftrace-process.ts';
import { STOP_NOT_RUNNING_EXIT } from '../tracejob/constants.ts';
import { RunLocalError } from './run-local-program.ts';
import { errorMessage } from '../error-message.ts';

// Each command loads what it runs when it runs: `runner` starts bpftrace
// sooner without run-local's and stop's modules.

function usageError(ctx: CommandContext, command: string, error: unknown, usage: string): number {
  if (!(error instanceof UsageError)) throw error;
  ctx.stderr.write(`trace-operator ${command}: ${error.message}\n\n${usage}`);
  return 2;
}

/** `trace-operator runner`: the trace container's command. */
export const runnerMain: CommandMain = async (ctx) => {
  // Started by the launcher from these same arguments (bin/trace-operator), if it did.
  const prestarted = prestartedChild(ctx.env);
  let options;
  try {
    options = parseRunnerArgs(ctx.argv);
  } catch (error) {
    if (prestarted !== undefined) discardPrestarted(prestarted);
    return usageError(ctx, 'runner', error, RUNNER_USAGE);
  }
  if (options.help) {
    if (prestarted !== undefined) discardPrestarted(prestarted);
    ctx.stdout.write(RUNNER_USAGE);
    return 0;
  }
  const { runRunner } = await import('./runner.ts');
  const run = await runRunner(options, ctx, { pid: process.pid, prestarted });
  return run.exitCode;
};

/** `trace-operator stop`: the trace pod's preStop hook, and with --request the operator's fast stop. */
export const stopMain: CommandMain = async (ctx) => {
  let options;
  try {
    options = parseStopArgs(ctx.argv);
  } catch (error) {
    return usageError(ctx, 'stop', error, STOP_USAGE);
  }
  if (options.help) {
    ctx.stdout.write(STOP_USAGE);
    return 0;
  }
  const { requestRunnerStop, stopRunner } = await import('./pid-file.ts');
  try {
    if (options.request) {
      const outcome = await requestRunnerStop({ pidFile: options.pidFile });
      switch (outcome.state) {
        case 'requested':
          ctx.stdout.write(
            `trace-operator stop: asked the runner (PID ${outcome.pid}) to stop; bpftrace gets SIGINT and prints its maps\n`,
          );
          return 0;
        case 'not-running':
          ctx.stdout.write(`trace-operator stop: ${outcome.detail}\n`);
          return STOP_NOT_RUNNING_EXIT;
        case 'refused':
          ctx.stderr.write(`trace-operator stop: ${outcome.detail}\n`);
          return 1;
      }
    }
    const outcome = await stopRunner({ pidFile: options.pidFile, timeout: options.timeout, signal: ctx.signal });
    switch (outcome.state) {
      case 'not-running':
        ctx.stdout.write(`trace-operator stop: ${outcome.detail}\n`);
        return 0;
      case 'stopped':
        ctx.stdout.write(`trace-operator stop: the runner (PID ${outcome.pid}) has exited\n`);
        return 0;
      case 'timeout':
        ctx.stderr.write(
          `trace-operator stop: the runner (PID ${outcome.pid}) is still running after ${options.timeout}s\n`,
        );
        return 1;
      case 'refused':
        ctx.stderr.write(`trace-operator stop: ${outcome.detail}\n`);
        return 1;
    }
  } catch (error) {
    ctx.stderr.write(`trace-operator stop: ${errorMessage(error)}\n`);
    return 1;
  }
};

/** `trace-operator run-local`: a TraceJob's program with bpftrace on this machine. */
export const runLocalMain: CommandMain = async (ctx) => {
  let options;
  try {
    options = parseRunLocalArgs(ctx.argv);
  } catch (error) {
    return usageError(ctx, 'run-local', error, RUN_LOCAL_USAGE);
  }
  if (options.help) {
    ctx.stdout.write(RUN_LOCAL_USAGE);
    return 0;
  }
  const { runLocal } = await import('./run-local.ts');
  try {
    return await runLocal(options, ctx, { uid: process.geteuid?.() ?? -1, pid: process.pid });
  } catch (error) {
    if (!(error instanceof RunLocalError)) throw error;
    ctx.stderr.write(`trace-operator run-local: ${error.message}\n`);
    return 1;
  }
};
