// The runner on this machine with real bpftrace (as root): how long from
// start until bpftrace is attached and until its first line is shown, and
// how many lines per second it passes on without loss, each against bpftrace
// alone in the same run.
//
// Attached: the BEGIN probe, which bpftrace fires once every probe is
// attached, prints the kernel's CLOCK_MONOTONIC (nsecs), the clock of
// process.hrtime too, so spawn → attached is read off the two clocks. With
// the launcher the two moments differ: bpftrace traces from its own start,
// and its lines wait in the FIFO until Node shows them.
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { median } from './stats.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(repoRoot, 'src', 'cli.ts');
const READY_PROGRAM = 'BEGIN { printf("ready %llu\\n", nsecs); exit(); }';

export interface Timing {
  runsMs: number[];
  medianMs: number;
  minMs: number;
}

/** Spawn → bpftrace attached (its BEGIN probe ran), and spawn → that probe's line on stdout. */
export interface StartTimings {
  attached: Timing;
  shown: Timing;
}

export interface StartupResult {
  runs: number;
  /** `node -e 0`: the runtime's own start (to its exit). */
  node: Timing;
  /** `trace-operator run-local --help`: node plus loading the CLI and the runner's modules (to its exit). */
  cliLoad: Timing;
  /** bpftrace alone. */
  bpftrace: StartTimings;
  /** `trace-operator runner --program=FILE` through the image's launcher (bin/trace-operator, dist/*.js): what a trace pod runs. */
  launcher: StartTimings;
  /** `node dist/cli.js runner --program=FILE`: the same with Node first, spawning bpftrace itself. */
  nodeFirst: StartTimings;
  /** `trace-operator run-local -e PROG` (src/*.ts, as in the repo; Node first). */
  runner: StartTimings;
}

export interface ThroughputPoint {
  /** Lines bpftrace's program prints per millisecond tick, and per second offered. */
  perTick: number;
  offeredPerSecond: number;
  /** bpftrace -o FILE: bpftrace alone, text output straight to a file. */
  direct: OutputRun;
  /** bpftrace with the runner's flags (-B line -f json) into a pipe that cat copies to a file: bpftrace's share of the runner's cost. */
  jsonPipe: OutputRun;
  /** trace-operator run-local, its stdout a file. */
  runner: OutputRun;
}

export interface OutputRun {
  lines: number;
  lost: number;
  /** Lines per second over the span of their kernel timestamps (first to last captured line). */
  linesPerSecond: number;
  wallSeconds: number;
}

function timing(runsMs: number[]): Timing {
  return { runsMs, medianMs: median(runsMs), minMs: Math.min(...runsMs) };
}

/** Spawns a command and times spawn → its exit. */
function timeToExit(command: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', () => resolve(performance.now() - started));
  });
}

/** Spawns a command running READY_PROGRAM; times spawn → attached and spawn → the "ready <nsecs>" line (ms). */
function timeToReady(
  command: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ attached: number; shown: number }> {
  return new Promise((resolve, reject) => {
    const spawnedNs = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'], ...(env === undefined ? {} : { env }) });
    let seen: { attached: number; shown: number } | undefined;
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (seen !== undefined) return;
      text += chunk.toString();
      const ready = /ready (\d+)\n/.exec(text);
      if (ready === null) return;
      const shownNs = process.hrtime.bigint();
      seen = {
        attached: Number(BigInt(ready[1] ?? '0') - spawnedNs) / 1e6,
        shown: Number(shownNs - spawnedNs) / 1e6,
      };
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (seen !== undefined) resolve(seen);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? '?'} before printing its BEGIN line`));
    });
  });
}

/** Bundles src/ into `dir`/dist as the Dockerfile does (`npm run build`), with node_modules linked beside it. */
export async function buildDist(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await execa(process.execPath, [path.join(repoRoot, 'hack', 'build.ts'), `--outDir=${path.join(dir, 'dist')}`], {
    cwd: repoRoot,
  });
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  return path.join(dir, 'dist', 'cli.js');
}

const LAUNCHER = path.join(repoRoot, 'src', 'runner', 'bin', 'trace-operator');

/** `distCli`: dist/cli.js from buildDist, which the launcher runs (TRACE_OPERATOR_HOME is its directory's parent). */
export async function runnerStartup(options: { runs: number; distCli: string; dir: string }): Promise<StartupResult> {
  const node: number[] = [];
  const cliLoad: number[] = [];
  type Kind = 'bpftrace' | 'launcher' | 'nodeFirst' | 'runner';
  const empty = (): { attached: number[]; shown: number[] } => ({ attached: [], shown: [] });
  const runs: Record<Kind, { attached: number[]; shown: number[] }> = {
    bpftrace: empty(),
    launcher: empty(),
    nodeFirst: empty(),
    runner: empty(),
  };
  const record = (kind: Kind, run: { attached: number; shown: number }): void => {
    runs[kind].attached.push(run.attached);
    runs[kind].shown.push(run.shown);
  };
  const program = path.join(options.dir, 'ready.bt');
  await writeFile(program, `${READY_PROGRAM}\n`);
  const runnerArgs = ['runner', `--program=${program}`, `--pid-file=${path.join(options.dir, 'runner.pid')}`];
  const launcherEnv = {
    ...process.env,
    PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
    TRACE_OPERATOR_HOME: path.dirname(path.dirname(options.distCli)),
  };
  // Interleaved, so a disturbance on the shared machine hits every kind alike.
  for (let i = 0; i < options.runs; i++) {
    node.push(await timeToExit(process.execPath, ['-e', '0']));
    cliLoad.push(await timeToExit(process.execPath, [CLI, 'run-local', '--help']));
    record('bpftrace', await timeToReady('bpftrace', ['-e', READY_PROGRAM]));
    record('launcher', await timeToReady(LAUNCHER, runnerArgs, launcherEnv));
    record('nodeFirst', await timeToReady(process.execPath, [options.distCli, ...runnerArgs]));
    record('runner', await timeToReady(process.execPath, [CLI, 'run-local', '-e', READY_PROGRAM, '--deadline', '10']));
  }
  const timings = (kind: Kind): StartTimings => ({
    attached: timing(runs[kind].attached),
    shown: timing(runs[kind].shown),
  });
  return {
    runs: options.runs,
    node: timing(node),
    cliLoad: timing(cliLoad),
    bpftrace: timings('bpftrace'),
    launcher: timings('launcher'),
    nodeFirst: timings('nodeFirst'),
    runner: timings('runner'),
  };
}

/** A program printing `perTick` lines every millisecond for `seconds`, each with its kernel timestamp. */
export function floodProgram(perTick: number, seconds: number): string {
  return `interval:ms:1 { $i = 0; while ($i < ${perTick}) { printf("L %llu %d\\n", nsecs, $i); $i++; } } interval:s:${seconds} { exit(); }`;
}

/** Reads the output line by line: at the higher rates a file outgrows the longest string V8 can hold (512 MiB). */
async function countOutput(file: string, wallSeconds: number): Promise<OutputRun> {
  let lines = 0;
  let lost = 0;
  // Per-CPU perf buffers are read in turn, so lines need not arrive in time order: take the extremes.
  let first = Infinity;
  let last = -Infinity;
  // Text ("L <nsecs> <i>", "Lost N events") or bpftrace's JSON lines ({"type": "printf", "data": "L ..."}, {"type": "lost_events", ...}).
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    const printed = /^(?:\{"type": "printf", "data": ")?L (\d+) /.exec(line);
    if (printed !== null) {
      lines++;
      const ns = Number(printed[1]);
      if (ns < first) first = ns;
      if (ns > last) last = ns;
      continue;
    }
    const m = /^Lost (\d+) events|"lost_events", "data": \{"events": (\d+)/.exec(line);
    if (m !== null) lost += Number(m[1] ?? m[2]);
  }
  const span = (last - first) / 1e9;
  return { lines, lost, linesPerSecond: lines > 1 && span > 0 ? lines / span : Number.NaN, wallSeconds };
}

async function runToFile(
  command: string,
  args: readonly string[],
  file: string,
  stdoutToFile: boolean,
): Promise<number> {
  const fd = stdoutToFile ? openSync(file, 'w') : undefined;
  const started = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command, args, { stdio: ['ignore', fd ?? 'ignore', 'ignore'] });
      child.once('error', reject);
      child.once('close', () => resolve());
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return (performance.now() - started) / 1000;
}

/** For each rate: bpftrace -o FILE, and run-local with its stdout to a file, running the same program. */
export async function outputThroughput(options: {
  dir: string;
  perTick: readonly number[];
  seconds: number;
}): Promise<ThroughputPoint[]> {
  const points: ThroughputPoint[] = [];
  for (const perTick of options.perTick) {
    const program = floodProgram(perTick, options.seconds);
    const directFile = path.join(options.dir, `direct-${perTick}.txt`);
    const directWall = await runToFile('bpftrace', ['-o', directFile, '-e', program], directFile, false);
    const jsonFile = path.join(options.dir, `json-${perTick}.txt`);
    const quoted = program.replaceAll("'", "'\\''");
    const jsonWall = await runToFile(
      'sh',
      ['-c', `bpftrace -B line -f json -e '${quoted}' | cat > '${jsonFile}'`],
      jsonFile,
      false,
    );
    const runnerFile = path.join(options.dir, `runner-${perTick}.txt`);
    const runnerWall = await runToFile(
      process.execPath,
      [CLI, 'run-local', '-e', program, '--deadline', String(options.seconds * 20 + 30)],
      runnerFile,
      true,
    );
    points.push({
      perTick,
      offeredPerSecond: perTick * 1000,
      direct: await countOutput(directFile, directWall),
      jsonPipe: await countOutput(jsonFile, jsonWall),
      runner: await countOutput(runnerFile, runnerWall),
    });
    await Promise.all([directFile, jsonFile, runnerFile].map((f) => rm(f, { force: true })));
  }
  return points;
}

/** Why the runner benchmark cannot run here, or undefined. */
export async function runnerProblem(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: bpftrace needs root to load BPF programs';
  try {
    await execa('bpftrace', ['--version']);
  } catch {
    return 'bpftrace is not installed (Debian: apt-get install bpftrace)';
  }
  return undefined;
}
