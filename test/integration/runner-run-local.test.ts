// run-local with the real bpftrace: a TraceJob manifest validated by the
// controller's code, run on this machine.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { runLocalMain } from '../../src/runner/main.ts';
import { runLocal } from '../../src/runner/run-local.ts';
import { parseRunLocalArgs } from '../../src/runner/args.ts';
import { parseRunnerOutput } from '../../src/runner/result-parse.ts';
import { FIXTURES, generateDiskIo, runCli, runInProcess, tempDir } from '../fixtures/runner/harness.ts';
import type { TraceResult } from '../../src/tracejob/result.ts';

test('run-local -f runs a manifest with its program arguments and the deadline from the spec', async (t) => {
  const run = runInProcess(runLocalMain, ['-f', path.join(FIXTURES, 'program-args.yaml')]);
  t.is(await run.done, 0, run.stderr());
  t.true(run.stdout().startsWith('Attaching 2 probes...\nhello 42\n'), run.stdout());
  t.regex(run.stdout(), /@ticks: \d+\n/);
  const result = parseRunnerOutput(run.stdout());
  t.is(result?.outcome, 'DeadlineReached');
});

test('run-local --deadline overrides the spec and --result json prints the structured result', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const io = generateDiskIo(dir);
  t.teardown(() => io.stop());
  const started = Date.now();
  const run = runCli([
    'run-local',
    '-f',
    path.join(FIXTURES, 'biolatency.yaml'),
    '--deadline',
    '3',
    '--result',
    'json',
  ]);
  const exit = await run.done;
  t.deepEqual(exit, { code: 0, signal: null }, run.stderr());
  t.true(Date.now() - started < 25_000, 'spec.deadline (30s) was not overridden');
  const stdout = run.stdout();
  t.false(stdout.includes('TRACE_OPERATOR_RESULT'));
  const json = stdout.slice(stdout.lastIndexOf('\n{\n') + 1);
  const result = JSON.parse(json) as TraceResult;
  t.is(result.outcome, 'DeadlineReached');
  const usecs = result.maps.find((m) => m.name === '@usecs')?.histograms?.[0];
  t.true((usecs?.total ?? 0) > 0, stdout);
  t.truthy(usecs?.p99);
});

test('run-local -e runs a program without a manifest', async (t) => {
  const run = runInProcess(runLocalMain, ['-e', 'BEGIN { printf("hi\\n"); @x = 1; exit(); }']);
  t.is(await run.done, 0, run.stderr());
  t.true(run.stdout().startsWith('Attaching 1 probe...\nhi\n'));
  t.is(parseRunnerOutput(run.stdout())?.maps[0]?.value, '1');
});

test('run-local reports a program bpftrace rejects, naming it "program"', async (t) => {
  const run = runInProcess(runLocalMain, ['-e', 'BEGIN { @x = ; }']);
  t.is(await run.done, 1);
  t.regex(run.stderr(), /CompileError: program:1:14-15: ERROR: syntax error/);
});

test('run-local explains what it cannot run', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const invalid = path.join(dir, 'invalid.yaml');
  await writeFile(
    invalid,
    'apiVersion: observe.alexeldeib.xyz/v1alpha1\nkind: TraceJob\nmetadata: {name: x}\nspec: {hostname: n, program: "BEGIN {}", deadline: -1}\n',
  );
  const cases: [string[], RegExp][] = [
    [
      ['-f', path.join(FIXTURES, 'program-from.yaml')],
      /spec\.programFrom .* is not supported by run-local: put the program in spec\.program, or pass it with -e/,
    ],
    [['-f', path.join(dir, 'missing.yaml')], /cannot read .*missing\.yaml/],
    [['-f', path.join(FIXTURES, 'biolatency.bt')], /biolatency\.bt is not valid YAML/],
    [['-f', invalid], /invalid\.yaml is not a valid TraceJob:\n.*deadline/],
    [['-e', 'BEGIN { exit(); }', '--bpftrace=/nonexistent/bpftrace'], /bpftrace not found at \/nonexistent\/bpftrace/],
    [['-e', 'BEGIN { exit(); }', '--result=yaml'], /--result must be 'json'/],
  ];
  for (const [argv, message] of cases) {
    const run = runInProcess(runLocalMain, argv);
    t.not(await run.done, 0, argv.join(' '));
    t.regex(run.stderr(), message, argv.join(' '));
  }
  const noPath = runInProcess(runLocalMain, ['-e', 'BEGIN { exit(); }'], { PATH: dir });
  t.is(await noPath.done, 1);
  t.regex(noPath.stderr(), /bpftrace not found on PATH: install it \(Debian\/Ubuntu: apt-get install bpftrace\)/);
});

test('run-local refuses to run when not root', async (t) => {
  const stdout = { write: () => true } as unknown as NodeJS.WritableStream;
  const ctx = {
    argv: [],
    env: process.env,
    signal: new AbortController().signal,
    stdout,
    stderr: stdout,
    onSignal: () => {},
  };
  await t.throwsAsync(runLocal(parseRunLocalArgs(['-e', 'BEGIN { exit(); }']), ctx, { uid: 1000, pid: process.pid }), {
    message: /needs root .* sudo/,
  });
});
