// The runner on this machine with real bpftrace (as root): how long from
// start until bpftrace is attached (its BEGIN probe prints a first line), and
// how many lines per second it passes on without loss, each against bpftrace
// alone in the same run.
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
const READY_PROGRAM = 'BEGIN { printf("ready\\n"); exit(); }';

export interface Timing {
  runsMs: number[];
  medianMs: number;
  minMs: number;
}

export interface StartupResult {
  runs: number;
  /** `node -e 0`: the runtime's own start. */
  node: Timing;
  /** `trace-operator run-local --help`: node plus loading the CLI and the runner's modules. */
  cliLoad: Timing;
  /** bpftrace alone, spawn → its BEGIN line. */
  bpftrace: Timing;
  /** `trace-operator run-local -e PROG`, spawn → the BEGIN line on its stdout (src/*.ts, as in the repo). */
  runner: Timing;
  /** The same from the compiled dist/cli.js, as the trace pod's image runs it (full run only). */
  runnerDist?: Timing;
  cliLoadDist?: Timing;
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

/** Spawns a command and times spawn → the first stdout line containing `marker` (or → exit when marker is undefined). */
function timeTo(command: string, args: readonly string[], marker: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let seen: number | undefined;
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (seen !== undefined || marker === undefined) return;
      text += chunk.toString();
      if (text.includes(marker)) seen = performance.now() - started;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (marker === undefined) resolve(performance.now() - started);
      else if (seen !== undefined) resolve(seen);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? '?'} before printing ${marker}`));
    });
  });
}

/** Compiles src/ to `dir`/dist as the Dockerfile does, with node_modules linked beside it. */
export async function buildDist(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await execa('npx', ['tsc', '-p', path.join(repoRoot, 'tsconfig.build.json'), '--outDir', path.join(dir, 'dist')], {
    cwd: repoRoot,
  });
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  return path.join(dir, 'dist', 'cli.js');
}

export async function runnerStartup(options: { runs: number; distCli?: string }): Promise<StartupResult> {
  const node: number[] = [];
  const cliLoad: number[] = [];
  const bpftrace: number[] = [];
  const runner: number[] = [];
  const runnerDist: number[] = [];
  const cliLoadDist: number[] = [];
  // Interleaved, so a disturbance on the shared machine hits every kind alike.
  for (let i = 0; i < options.runs; i++) {
    node.push(await timeTo(process.execPath, ['-e', '0'], undefined));
    cliLoad.push(await timeTo(process.execPath, [CLI, 'run-local', '--help'], undefined));
    bpftrace.push(await timeTo('bpftrace', ['-e', READY_PROGRAM], 'ready'));
    runner.push(await timeTo(process.execPath, [CLI, 'run-local', '-e', READY_PROGRAM, '--deadline', '10'], 'ready'));
    if (options.distCli !== undefined) {
      cliLoadDist.push(await timeTo(process.execPath, [options.distCli, 'run-local', '--help'], undefined));
      runnerDist.push(
        await timeTo(
          process.execPath,
          [options.distCli, 'run-local', '-e', READY_PROGRAM, '--deadline', '10'],
          'ready',
        ),
      );
    }
  }
  return {
    runs: options.runs,
    node: timing(node),
    cliLoad: timing(cliLoad),
    bpftrace: timing(bpftrace),
    runner: timing(runner),
    ...(options.distCli === undefined ? {} : { runnerDist: timing(runnerDist), cliLoadDist: timing(cliLoadDist) }),
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
