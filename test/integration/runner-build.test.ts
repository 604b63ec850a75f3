// What the Dockerfile runs, run here (there is no Docker engine on the test
// machines): `npm run build`, then the compiled CLI as the runner image runs
// it, through the same trace-operator wrapper script, with the real bpftrace.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { parseRunnerOutput } from '../../src/runner/result-parse.ts';
import { REPO, tempDir, writeProgram } from '../fixtures/runner/harness.ts';

const run = promisify(execFile);

// Not dist/ itself: other test files may build there at the same time. Inside
// node_modules so that the compiled files resolve the installed packages.
const HOME = path.join(REPO, 'node_modules', '.cache', `trace-operator-build-test-${process.pid}`);
const DIST = path.join(HOME, 'dist');
const WRAPPER = path.join(REPO, 'src', 'runner', 'bin', 'trace-operator');
const ENV = {
  ...process.env,
  PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
  TRACE_OPERATOR_HOME: HOME,
};

let build: { code: number; output: string } = { code: -1, output: 'not built' };

test.before(async () => {
  await mkdir(HOME, { recursive: true });
  try {
    const { stdout, stderr } = await run('npm', ['run', 'build', '--', '--outDir', DIST], {
      cwd: REPO,
      env: ENV,
      maxBuffer: 16 * 1024 * 1024,
    });
    build = { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    build = { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
});

test.after.always(async () => {
  await rm(HOME, { recursive: true, force: true });
});

test('npm run build bundles the whole CLI', (t) => {
  t.is(build.code, 0, build.output);
});

test('the bundled CLI runs runner, stop and run-local', async (t) => {
  await access(path.join(DIST, 'cli.js'));
  const help = await run(process.execPath, [path.join(DIST, 'cli.js'), 'runner', '--help'], { env: ENV });
  t.regex(help.stdout, /usage: trace-operator runner/);
  const stopHelp = await run(process.execPath, [path.join(DIST, 'cli.js'), 'stop', '--help'], { env: ENV });
  t.regex(stopHelp.stdout, /usage: trace-operator stop/);
  const local = await run(
    process.execPath,
    [path.join(DIST, 'cli.js'), 'run-local', '-e', 'BEGIN { @x = 7; exit(); }', '--result', 'json'],
    { env: ENV },
  );
  t.is(
    (JSON.parse(local.stdout.slice(local.stdout.indexOf('\n{') + 1)) as { maps: { value?: string }[] }).maps[0]?.value,
    '7',
  );
});

// The bundle turns CommonJS packages (yaml, ws, prom-client) into modules of
// its own; a named import that does not survive that breaks only there.
test('the bundled CLI draws the same chart as the source does', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const file = path.join(dir, 'tracejob.yaml');
  await writeFile(
    file,
    [
      'apiVersion: observe.alexeldeib.xyz/v1alpha1',
      'kind: TraceJob',
      'metadata: { name: bio, namespace: default }',
      'status:',
      '  result:',
      '    maps:',
      '      - name: "@usecs"',
      '        kind: histogram',
      '        histograms:',
      '          - { total: 37, p50: 512, p90: 512, p99: 2048, buckets: [{ low: 256, high: 512, count: 35 }, { low: 1024, high: 2048, count: 2 }] }',
      '',
    ].join('\n'),
  );
  const args = ['plot', 'tracejob/bio', '-f', file];
  const bundled = await run(process.execPath, [path.join(DIST, 'cli.js'), ...args], { env: ENV });
  const source = await run(process.execPath, [path.join(REPO, 'src', 'cli.ts'), ...args], { env: ENV });
  t.regex(bundled.stdout, /<rect aria-label="\[256, 512\) µs: 35"/);
  t.is(bundled.stdout, source.stdout);
});

test('the trace-operator wrapper on PATH runs a trace and the preStop hook', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const program = await writeProgram(dir, 'interval:ms:100 { @ticks = count(); }\n');
  const traced = await run(
    WRAPPER,
    [
      'runner',
      `--program=${program}`,
      '--deadline=1',
      '--grace-period=5',
      `--pid-file=${path.join(dir, 'runner.pid')}`,
    ],
    { env: ENV },
  );
  const result = parseRunnerOutput(traced.stdout);
  t.is(result?.outcome, 'DeadlineReached');
  t.truthy(result?.maps.find((m) => m.name === '@ticks'));
  const stop = await run(WRAPPER, ['stop', '--timeout=1', `--pid-file=${path.join(dir, 'runner.pid')}`], { env: ENV });
  t.regex(stop.stdout, /not running/);
});

/** The launcher's hand-over as the runner received it, from its environment (root may read it). */
async function handedOverPid(runnerPid: number): Promise<number | undefined> {
  const environ = (await readFile(`/proc/${runnerPid}/environ`, 'utf8')).split('\0');
  const value = environ.find((e) => e.startsWith('TRACE_OPERATOR_PRESTARTED_BPFTRACE='));
  return value === undefined ? undefined : Number(value.split('=')[1]?.split(':')[0]);
}

async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(name));
  }
  return children;
}

test('the runner takes over the bpftrace the launcher started, and stops it on SIGINT as its own', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const program = await writeProgram(dir, 'interval:ms:100 { @ticks = count(); }\n');
  const runner = spawn(WRAPPER, ['runner', `--program=${program}`, `--pid-file=${path.join(dir, 'runner.pid')}`], {
    env: ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => runner.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  runner.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  runner.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = once(runner, 'close');
  while (!stdout.includes('Attaching 1 probe...')) await new Promise((resolve) => setTimeout(resolve, 20));

  const pid = runner.pid ?? 0;
  const prestarted = await handedOverPid(pid);
  t.truthy(prestarted, 'the launcher handed a bpftrace over');
  t.deepEqual(await childrenOf(pid), [prestarted], 'the only bpftrace is the one the launcher started');
  runner.kill('SIGINT');
  t.deepEqual(await closed, [0, null]);
  const result = parseRunnerOutput(stdout);
  t.is(result?.outcome, 'Stopped', stderr);
  t.truthy(
    result?.maps.find((m) => m.name === '@ticks'),
    'bpftrace printed its maps on the SIGINT the runner sent it',
  );
  t.notRegex(stderr, /warning/);
});

test("a program bpftrace rejects before Node is up still gives bpftrace's own error and exit code", async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const program = await writeProgram(dir, 'BEGIN { @x = ; }\n');
  const failed = await run(WRAPPER, ['runner', `--program=${program}`, `--pid-file=${path.join(dir, 'runner.pid')}`], {
    env: ENV,
  }).then(
    () => undefined,
    (error: unknown) => error as { code: number; stdout: string; stderr: string },
  );
  t.is(failed?.code, 1);
  const result = parseRunnerOutput(failed?.stdout ?? '');
  t.is(result?.outcome, 'CompileError');
  t.is(result?.exitCode, 1, "bpftrace's exit code, read from the zombie it left");
  t.regex(result?.message ?? '', /syntax error/);
  t.notRegex(failed?.stderr ?? '', /not using the bpftrace the launcher started/);
});
