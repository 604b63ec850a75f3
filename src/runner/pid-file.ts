// The runner's pid file, and `trace-operator stop` (the trace pod's preStop
// hook), which uses it to SIGINT the runner and wait for it to finish, or with
// --request (the operator's fast stop) to send it a stop request and return.
//
// The trace pod shares the host's PID namespace, so a wrong PID would signal
// some other process on the node. The stop command therefore never guesses:
// it signals only the PID in the pid file, never PID 1 or below, and only
// when that process's command line shows it is a trace-operator runner (a
// stale pid file may name a PID the kernel has since reused).
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function writePidFile(file: string, pid: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${pid}.tmp`;
  await writeFile(temp, `${pid}\n`);
  await rename(temp, file);
}

/** Removes the pid file if it still names this PID. */
export async function removePidFile(file: string, pid: number): Promise<void> {
  try {
    if ((await readFile(file, 'utf8')).trim() === String(pid)) await rm(file, { force: true });
  } catch {
    // already gone
  }
}

export async function readPidFile(file: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const trimmed = text.trim();
  const pid = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(pid) || pid <= 1)
    throw new Error(`pid file ${file} holds '${trimmed.slice(0, 40)}', not a runner PID; remove it`);
  return pid;
}

/** True when /proc/<pid>/cmdline is a trace-operator runner (its arguments include 'runner' or 'run-local'). */
export async function isRunnerProcess(pid: number, procRoot = '/proc'): Promise<boolean> {
  try {
    const args = (await readFile(path.join(procRoot, String(pid), 'cmdline'), 'utf8')).split('\0');
    return args.includes('runner') || args.includes('run-local');
  } catch {
    return false;
  }
}

async function alive(pid: number, procRoot: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // An exited process that its parent has not reaped yet is a zombie: gone for our purpose.
  try {
    const stat = await readFile(path.join(procRoot, String(pid), 'stat'), 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

export interface StopRunnerOptions {
  pidFile: string;
  /** Seconds to wait for the runner to exit. */
  timeout: number;
  procRoot?: string;
  pollMs?: number;
  signal?: AbortSignal;
}

export type StopOutcome =
  | { state: 'not-running'; detail: string }
  | { state: 'stopped'; pid: number }
  | { state: 'timeout'; pid: number }
  | { state: 'refused'; detail: string };

/**
 * The signal of a stop request (`trace-operator stop --request`, run by the
 * operator through pods/exec): the runner stops bpftrace as for SIGINT, but a
 * repeat changes nothing, where a second SIGINT kills bpftrace at once.
 * SIGURG because its default action is to ignore it: a request that lands
 * while the runner is exiting (its handlers gone) must not kill it and turn a
 * finished trace into a failed pod. (With SIGUSR2, whose default is to end
 * the process, CI caught exactly that: a repeated request killed a runner
 * that had just published its result.) Nothing else sends the runner SIGURG:
 * Node owns no socket that asks for it (F_SETOWN).
 */
export const STOP_REQUEST_SIGNAL = 'SIGURG';

/** The live runner the pid file names, or why there is none to signal. */
async function locateRunner(
  pidFile: string,
  procRoot: string,
): Promise<{ pid: number } | Extract<StopOutcome, { state: 'not-running' | 'refused' }>> {
  const pid = await readPidFile(pidFile);
  if (pid === undefined)
    return { state: 'not-running', detail: `no pid file at ${pidFile}: the runner is not running (or never started)` };
  if (!(await alive(pid, procRoot)))
    return { state: 'not-running', detail: `the runner (PID ${pid}) has already exited` };
  if (!(await isRunnerProcess(pid, procRoot))) {
    return {
      state: 'refused',
      detail: `PID ${pid} from ${pidFile} is not a trace-operator runner (stale pid file?); not signalling it`,
    };
  }
  return { pid };
}

/** Sends `sig`; false when the process has exited meanwhile. */
function signalRunner(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** SIGINTs the runner named in the pid file and waits until it exits or the timeout passes. */
export async function stopRunner(options: StopRunnerOptions): Promise<StopOutcome> {
  const procRoot = options.procRoot ?? '/proc';
  const runner = await locateRunner(options.pidFile, procRoot);
  if (!('pid' in runner)) return runner;
  const { pid } = runner;
  if (!signalRunner(pid, 'SIGINT')) return { state: 'stopped', pid };
  const deadline = Date.now() + options.timeout * 1000;
  const pollMs = options.pollMs ?? 100;
  while (await alive(pid, procRoot)) {
    if (Date.now() >= deadline || options.signal?.aborted === true) return { state: 'timeout', pid };
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return { state: 'stopped', pid };
}

export type StopRequestOutcome =
  { state: 'requested'; pid: number } | Extract<StopOutcome, { state: 'not-running' | 'refused' }>;

/** Asks the runner named in the pid file to stop (STOP_REQUEST_SIGNAL) and returns at once. */
export async function requestRunnerStop(options: { pidFile: string; procRoot?: string }): Promise<StopRequestOutcome> {
  const runner = await locateRunner(options.pidFile, options.procRoot ?? '/proc');
  if (!('pid' in runner)) return runner;
  if (!signalRunner(runner.pid, STOP_REQUEST_SIGNAL))
    return { state: 'not-running', detail: `the runner (PID ${runner.pid}) has already exited` };
  return { state: 'requested', pid: runner.pid };
}
