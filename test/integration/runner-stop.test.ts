// `trace-operator stop`, the trace pod's preStop hook, and `stop --request`,
// the operator's fast stop, against a real runner running the real bpftrace.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { parseRunnerOutput } from '../../src/runner/result-parse.ts';
import { runnerMain } from '../../src/runner/main.ts';
import { STOP_REQUEST_SIGNAL } from '../../src/runner/pid-file.ts';
import {
  bpftraceRunning,
  runCli,
  runInProcess,
  tempDir,
  writeProgram,
  type CliRun,
} from '../fixtures/runner/harness.ts';

const TICKS = 'interval:ms:100 { @ticks = count(); }\n';

/** A runner of TICKS (deadline 60 s, plus `flags`) with its pid file in a temp dir, once bpftrace has attached. */
async function attachedRunner(
  t: ExecutionContext,
  flags: readonly string[] = [],
): Promise<{ runner: CliRun; pidFile: string; program: string }> {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const pidFile = path.join(dir, 'runner.pid');
  const program = await writeProgram(dir, TICKS);
  const runner = runCli(['runner', `--program=${program}`, '--deadline=60', ...flags, `--pid-file=${pidFile}`]);
  await runner.waitFor('Attaching 1 probe...');
  return { runner, pidFile, program };
}

test.serial('stop SIGINTs the runner from its pid file and waits for it to exit', async (t) => {
  const { runner, pidFile } = await attachedRunner(t);
  const stop = runCli(['stop', '--timeout=10', `--pid-file=${pidFile}`]);
  const stopped = await stop.done;
  t.deepEqual(stopped, { code: 0, signal: null }, stop.stderr());
  t.regex(stop.stdout(), new RegExp(`the runner \\(PID ${runner.child.pid}\\) has exited`));
  t.deepEqual(await runner.done, { code: 0, signal: null });
  t.regex(runner.stdout(), /\n@ticks: \d+\n/);
  t.is(parseRunnerOutput(runner.stdout())?.outcome, 'Stopped');
  await t.throwsAsync(access(pidFile), undefined, 'the runner removes its pid file');
});

test('stop with no runner is not an error', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const stop = runCli(['stop', '--timeout=1', `--pid-file=${path.join(dir, 'none.pid')}`]);
  t.deepEqual(await stop.done, { code: 0, signal: null });
  t.regex(stop.stdout(), /no pid file .*not running/);
});

test('stop never signals a process that is not a runner, nor PID 1', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const victim = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => void victim.kill('SIGKILL'));
  const pidFile = path.join(dir, 'stale.pid');
  await writeFile(pidFile, `${victim.pid}\n`);
  const stop = runCli(['stop', '--timeout=1', `--pid-file=${pidFile}`]);
  t.is((await stop.done).code, 1);
  t.regex(stop.stderr(), /is not a trace-operator runner \(stale pid file\?\); not signalling it/);
  t.is(victim.exitCode, null);
  t.is(victim.signalCode, null);

  await writeFile(pidFile, '1\n');
  const one = runCli(['stop', '--timeout=1', `--pid-file=${pidFile}`]);
  t.is((await one.done).code, 1);
  t.regex(one.stderr(), /holds '1', not a runner PID/);
});

test.serial('stop gives up after its timeout when the runner does not exit', async (t) => {
  const { runner, pidFile, program } = await attachedRunner(t, ['--grace-period=60']);
  process.kill(await bpftraceRunning(program), 'SIGSTOP'); // a bpftrace that cannot finish
  const started = Date.now();
  const stop = runCli(['stop', '--timeout=1', `--pid-file=${pidFile}`]);
  t.is((await stop.done).code, 1);
  // It gave up (the runner's grace period is 60 s); the bound only tells the two apart.
  t.true(Date.now() - started < 20_000);
  t.regex(stop.stderr(), /still running after 1s/);
  runner.child.kill('SIGINT'); // the second SIGINT (as kubelet's SIGTERM after preStop would) ends it
  t.deepEqual(await runner.done, { code: 0, signal: null });
});

test.serial(
  'stop --request (the fast stop) asks the runner to stop and returns at once; bpftrace prints its maps and a repeat changes nothing',
  async (t) => {
    const { runner, pidFile } = await attachedRunner(t);
    const first = runCli(['stop', '--request', `--pid-file=${pidFile}`]);
    t.deepEqual(await first.done, { code: 0, signal: null }, first.stderr());
    t.regex(first.stdout(), new RegExp(`asked the runner \\(PID ${runner.child.pid}\\) to stop`));
    // A second request, as a retried exec would send: not the second SIGINT that kills bpftrace.
    const again = runCli(['stop', '--request', `--pid-file=${pidFile}`]);
    t.true([0, 3].includes((await again.done).code ?? -1), again.stderr());
    t.deepEqual(await runner.done, { code: 0, signal: null });
    t.regex(runner.stderr(), /stop requested \(trace-operator stop --request\); sending SIGINT to bpftrace/);
    t.notRegex(runner.stderr(), /ending bpftrace at once|killed/);
    t.regex(runner.stdout(), /\n@ticks: \d+\n/);
    t.is(parseRunnerOutput(runner.stdout())?.outcome, 'Stopped');

    const none = runCli(['stop', '--request', `--pid-file=${pidFile}`]);
    t.is((await none.done).code, 3, 'no runner to stop: exit 3, so the operator keeps the ConfigMap fallback');
    t.regex(none.stdout(), /no pid file .*not running/);
  },
);

test.serial(
  'stop requests that keep coming while the runner exits never kill it (a retried exec can land at any moment)',
  async (t) => {
    const { runner } = await attachedRunner(t);
    const pid = runner.child.pid ?? 0;
    let exited = false;
    void runner.done.then(() => (exited = true));
    // The request signal, over and over until the process is gone: through the stop, the result and the exit.
    while (!exited) {
      try {
        process.kill(pid, STOP_REQUEST_SIGNAL);
      } catch {
        break; // gone
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    t.deepEqual(await runner.done, { code: 0, signal: null }, runner.stderr());
    t.is(parseRunnerOutput(runner.stdout())?.outcome, 'Stopped');
  },
);

test.serial('a stop request that arrives before bpftrace has started is kept and acted on, not lost', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const pidFile = path.join(dir, 'runner.pid');
  const run = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, TICKS)}`,
    '--deadline=60',
    `--pid-file=${pidFile}`,
  ]);
  // As soon as the pid file names the runner (what `stop --request` reads), while it still prepares the program.
  while (!existsSync(pidFile)) await new Promise((resolve) => setImmediate(resolve));
  run.raise('SIGURG');
  t.is(await run.done, 0, run.stderr());
  t.regex(run.stderr(), /stop requested \(trace-operator stop --request\)/);
  t.is(parseRunnerOutput(run.stdout())?.outcome, 'Stopped');
});
