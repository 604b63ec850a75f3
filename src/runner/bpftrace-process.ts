// The bpftrace process a trace supervises: one the runner spawns, or one the
// trace-operator launcher (bin/trace-operator) started before Node and hands
// over as its PID and the read ends of two FIFOs, its stdout and stderr.
//
// Why a launcher at all: spawned from Node, bpftrace starts only once Node
// and the CLI have loaded, and a trace began at 2.3-2.6x bpftrace's own
// start; started first, bpftrace compiles while Node loads and attaches when
// it would alone (bench/README.md, run 2679).
//
// A handed-over bpftrace is the runner's child after the launcher's exec, but
// Node cannot wait for a child it did not spawn: libuv reaps only its own.
// So it stays a zombie once it exits, which is what makes it safe to signal
// by PID (the PID cannot be reused while the zombie stands), and the kernel
// keeps its wait status in /proc/<pid>/stat (field 52, since Linux 3.5)
// until the runner itself exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { openOutputFifo, type OutputFifo } from './output-fifo.ts';
import { parseProcStat, type ProcStat } from './proc-stat.ts';
import { errorMessage } from '../error-message.ts';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BpftraceEnd extends ExitStatus {
  /** Set when bpftrace could not be started at all (not found, not executable). */
  spawnError?: NodeJS.ErrnoException;
}

export interface BpftraceProcess {
  readonly pid: number | undefined;
  /** bpftrace's stdout: a FIFO's read end, else the child's own pipe. */
  readonly stdout: Readable & AsyncIterable<Buffer>;
  readonly stderr: (Readable & AsyncIterable<Buffer>) | null;
  /** Resolves once bpftrace has exited and its stdout and stderr are closed. */
  readonly ended: Promise<BpftraceEnd>;
  /** True once bpftrace has exited: a signal then reaches nothing. */
  readonly exited: boolean;
}

/** The environment variable in which the launcher hands bpftrace over: "PID:STDOUT_FD:STDERR_FD". */
export const PRESTARTED_ENV = 'TRACE_OPERATOR_PRESTARTED_BPFTRACE';

export interface Prestarted {
  pid: number;
  stdoutFd: number;
  stderrFd: number;
}

/** The hand-over in `env`, or undefined when there is none (or it is not one the launcher writes). */
export function prestartedFromEnv(env: Readonly<Record<string, string | undefined>>): Prestarted | undefined {
  const match = /^(\d+):(\d+):(\d+)$/.exec(env[PRESTARTED_ENV] ?? '');
  if (match === null) return undefined;
  return { pid: Number(match[1]), stdoutFd: Number(match[2]), stderrFd: Number(match[3]) };
}

/** The hand-over in `env` when it names a child of this process (only the launcher's can), else undefined. */
export function prestartedChild(env: Readonly<Record<string, string | undefined>>): Prestarted | undefined {
  const prestarted = prestartedFromEnv(env);
  return prestarted !== undefined && readProcStat(prestarted.pid)?.ppid === process.pid ? prestarted : undefined;
}

/** The command line the runner runs bpftrace with, launcher or not. */
export function bpftraceArgv(bpftrace: string, programFile: string, args: readonly string[]): string[] {
  return [bpftrace, '-B', 'line', '-f', 'json', '--', programFile, ...args];
}

export interface SpawnOptions {
  bpftrace: string;
  programFile: string;
  args: readonly string[];
  env?: Readonly<Record<string, string | undefined>> | undefined;
  stderr: NodeJS.WritableStream;
}

/**
 * Spawns bpftrace in its own process group with the runner's flags, its
 * stdout into a FIFO (output-fifo.ts says why). Where no FIFO can be made, it
 * says so on `stderr` and uses the child's pipe, which loses events sooner.
 */
export function spawnBpftrace(options: SpawnOptions): BpftraceProcess {
  let fifo: OutputFifo | undefined;
  try {
    fifo = openOutputFifo();
  } catch (error) {
    options.stderr.write(
      `trace-operator runner: warning: cannot make a FIFO for bpftrace's output (${errorMessage(error)}); reading it through Node's pipe instead, where bpftrace loses events at lower rates (the runner needs mkfifo on its PATH and a writable TMPDIR)\n`,
    );
  }
  let child: ChildProcess;
  try {
    const [command = options.bpftrace, ...args] = bpftraceArgv(options.bpftrace, options.programFile, options.args);
    child = spawn(command, args, {
      stdio: ['ignore', fifo?.writeFd ?? 'pipe', 'pipe'],
      detached: true,
      env:
        options.env === undefined
          ? undefined
          : Object.fromEntries(
              Object.entries(options.env).filter(
                (e): e is [string, string] => e[1] !== undefined && e[0] !== PRESTARTED_ENV,
              ),
            ),
    });
  } finally {
    // The child has its copy (or failed to start): ours would keep the reader from ever seeing the end.
    if (fifo !== undefined) closeSync(fifo.writeFd);
  }
  const ended = new Promise<BpftraceEnd>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, spawnError: error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    pid: child.pid,
    // child.stdout is null with a FIFO; with a pipe it exists (spawn made it).
    stdout: fifo?.readable ?? (child.stdout as NonNullable<ChildProcess['stdout']>),
    stderr: child.stderr,
    ended,
    get exited() {
      return child.exitCode !== null || child.signalCode !== null;
    },
  };
}

/** /proc/<pid>/stat, or undefined when there is no such process. */
export function readProcStat(pid: number, procRoot = '/proc'): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(path.join(procRoot, String(pid), 'stat'), 'utf8'));
  } catch {
    return undefined;
  }
}

function readCmdline(pid: number, procRoot = '/proc'): string[] | undefined {
  try {
    const text = readFileSync(path.join(procRoot, String(pid), 'cmdline'), 'utf8');
    return text === '' ? [] : text.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** A waitpid(2) status as Node reports a child's end: an exit code, or the signal that ended it. */
export function decodeWaitStatus(status: number): ExitStatus {
  const signal = status & 0x7f;
  if (signal === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: SIGNAL_NAMES.get(signal) ?? null };
}

function isExited(state: string): boolean {
  return state === 'Z' || state === 'X';
}

/**
 * Why the handed-over process is not the bpftrace this runner would start
 * (`expected`, bpftraceArgv), or undefined when it is. A process that is
 * exiting shows no command line (its memory is gone before it becomes a
 * zombie, and a program bpftrace rejects gets there while Node loads); then
 * its name must match.
 */
export function prestartedMismatch(
  prestarted: Prestarted,
  expected: readonly string[],
  procRoot = '/proc',
): string | undefined {
  const stat = readProcStat(prestarted.pid, procRoot);
  if (stat === undefined) return `there is no process ${prestarted.pid}`;
  if (stat.ppid !== process.pid) return `process ${prestarted.pid} is not the runner's child`;
  const cmdline = readCmdline(prestarted.pid, procRoot) ?? [];
  if (cmdline.length === 0) {
    const name = path.basename(expected[0] ?? '').slice(0, 15);
    return stat.comm === name ? undefined : `process ${prestarted.pid} is ${stat.comm}, not ${name}`;
  }
  if (cmdline.length !== expected.length || cmdline.some((arg, i) => arg !== expected[i]))
    return `process ${prestarted.pid} runs '${cmdline.join(' ')}', not '${expected.join(' ')}'`;
  return undefined;
}

function fdReader(fd: number, highWaterMark?: number): net.Socket {
  // Node passes the stream options on to the socket's Readable; its types do not list them.
  const options: net.SocketConstructorOpts & { readableHighWaterMark?: number } = {
    fd,
    readable: true,
    writable: false,
    ...(highWaterMark === undefined ? {} : { readableHighWaterMark: highWaterMark }),
  };
  return new net.Socket(options);
}

function closed(stream: net.Socket): Promise<void> {
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

/** Takes over the launcher's bpftrace; check it with prestartedMismatch first. */
export function adoptBpftrace(prestarted: Prestarted): BpftraceProcess {
  // Read like the runner's own FIFO: one byte of read buffer (output-fifo.ts says why).
  const stdout = fdReader(prestarted.stdoutFd, 1);
  const stderr = fdReader(prestarted.stderrFd);
  let exited = false;
  const ended = (async (): Promise<BpftraceEnd> => {
    // As Node's 'close' for a child it spawned: after the exit and the end of its output.
    await Promise.all([closed(stdout), closed(stderr)]);
    for (;;) {
      const stat = readProcStat(prestarted.pid);
      if (stat === undefined || stat.ppid !== process.pid) {
        exited = true;
        return { code: null, signal: null }; // reaped by someone else: its status is gone
      }
      if (isExited(stat.state)) {
        exited = true;
        return decodeWaitStatus(stat.waitStatus);
      }
      await sleep(1);
    }
  })();
  return {
    pid: prestarted.pid,
    stdout,
    stderr,
    ended,
    get exited() {
      return exited || isExited(readProcStat(prestarted.pid)?.state ?? 'X');
    },
  };
}

/**
 * Ends a handed-over bpftrace that will not be used (the runner stopped
 * before tracing, or it runs another program) and closes its output. Does
 * nothing to a process that is not the runner's child: then neither it nor
 * the descriptors are the launcher's.
 */
export function discardPrestarted(prestarted: Prestarted): void {
  if (readProcStat(prestarted.pid)?.ppid !== process.pid) return;
  try {
    process.kill(-prestarted.pid, 'SIGKILL'); // its process group: what it started goes too
  } catch {
    // already gone
  }
  for (const fd of [prestarted.stdoutFd, prestarted.stderrFd]) {
    try {
      closeSync(fd);
    } catch {
      // not open
    }
  }
}
