// What the Dockerfile runs, run here (there is no Docker engine on the test
// machines): `npm run build`, then the compiled CLI as the runner image runs
// it, through the same trace-operator wrapper script, with the real bpftrace.
import { execFile } from 'node:child_process';
import { access, mkdir, rm } from 'node:fs/promises';
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

test('npm run build compiles the whole project', (t) => {
  t.is(build.code, 0, build.output);
});

test('the compiled CLI runs runner, stop and run-local (tsc emits even when other modules have type errors)', async (t) => {
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
