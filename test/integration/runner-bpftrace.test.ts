// The runner against Debian's real bpftrace, as root: biolatency on real disk
// I/O, the deadline, SIGINT (once and twice), the stop file, compile and
// attach errors, and a program that prints 100 000 lines.
import { statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { runnerMain } from '../../src/runner/main.ts';
import { FIRST_SIGINT_LINE } from '../../src/runner/trace.ts';
import { parseRunnerOutput, parseTerminationMessage } from '../../src/runner/result-parse.ts';
import {
  FIXTURES,
  bpftraceRunning,
  generateDiskIo,
  runCli,
  runInProcess,
  sectorsWritten,
  tempDir,
  writeProgram,
} from '../fixtures/runner/harness.ts';

test.before((t) => {
  if (process.getuid?.() !== 0) t.fail('these tests load BPF programs and must run as root');
});

const TICKS = 'interval:ms:100 { @ticks = count(); }\n';

test.serial('biolatency on real disk I/O gives a histogram in the text and in the result', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const termination = path.join(dir, 'termination-log');
  const before = await sectorsWritten();
  const run = runInProcess(runnerMain, [
    `--program=${path.join(FIXTURES, 'biolatency.bt')}`,
    '--deadline=4',
    '--grace-period=10',
    `--termination-log=${termination}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  await run.waitFor('Attaching 3 probes...');
  const io = generateDiskIo(dir);
  const code = await run.done;
  await io.stop();
  const after = await sectorsWritten();
  t.true(
    [...after].some(([dev, n]) => n > (before.get(dev) ?? n)),
    'no block device saw writes: is the temp dir on tmpfs?',
  );

  t.is(code, 0, run.stderr());
  const stdout = run.stdout();
  t.regex(stdout, /@usecs: \n/);
  const bucketLines = stdout.split('\n').filter((l) => /^\[\d+[KMGT]?, \d+[KMGT]?\)\s+\d+ \|/.test(l));
  t.true(
    bucketLines.some((l) => Number(l.slice(16, 24)) > 0),
    stdout,
  );

  const result = parseRunnerOutput(stdout, await readFile(termination, 'utf8'));
  t.is(result?.outcome, 'DeadlineReached');
  const usecs = result?.maps.find((m) => m.name === '@usecs');
  t.is(usecs?.kind, 'histogram');
  const histogram = usecs?.histograms?.[0];
  t.true((histogram?.total ?? 0) > 0);
  t.true((histogram?.buckets.length ?? 0) > 0 && (histogram?.buckets.every((b) => b.count > 0) ?? false));
  t.true(histogram?.p50 !== undefined && histogram.p90 !== undefined && histogram.p99 !== undefined);
  t.true((histogram?.p50 ?? 0) <= (histogram?.p90 ?? 0) && (histogram?.p90 ?? 0) <= (histogram?.p99 ?? 0));
  // @start was cleared in END, so it is not part of the result.
  t.falsy(result?.maps.find((m) => m.name === '@start' && (m.entries?.length ?? 0) > 0));
});

test.serial('the deadline ends the run on time and the maps are printed', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const termination = path.join(dir, 'termination-log');
  const started = Date.now();
  const run = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, TICKS)}`,
    '--deadline=2',
    '--grace-period=30',
    `--termination-log=${termination}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  const code = await run.done;
  const elapsed = (Date.now() - started) / 1000;
  t.is(code, 0, run.stderr());
  // Ended by the deadline's SIGINT, not by the grace-period kill 30 s later:
  // the bound only tells the two apart, leaving room for bpftrace's start-up
  // (LLVM) on a loaded 2-core machine; the result says how it ended.
  t.true(elapsed >= 2 && elapsed < 20, `took ${elapsed}s`);
  t.true(run.stdout().includes(`${FIRST_SIGINT_LINE}\n`));
  t.regex(run.stdout(), /\n@ticks: \d+\n/);
  t.false(
    run.stderr().includes('RLIMIT_MEMLOCK'),
    'the harmless RLIMIT_MEMLOCK "ERROR" is held back when bpftrace runs',
  );
  const message = parseTerminationMessage(await readFile(termination, 'utf8'));
  t.is(message?.result.outcome, 'DeadlineReached');
  t.is(message?.result.message, undefined, 'bpftrace exited by itself, not by the grace-period kill');
  t.is(message?.result.exitCode, 0);
  t.true(Number(message?.result.maps.find((m) => m.name === '@ticks')?.value) >= 10);
  // The termination message holds the whole result, so no result line is shown to people.
  t.false(run.stdout().includes('TRACE_OPERATOR_RESULT'), run.stdout());
  t.deepEqual(parseRunnerOutput(run.stdout(), await readFile(termination, 'utf8')), message?.result);
});

test.serial('a result too big for the termination message ends the log with one short, marked line', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const termination = path.join(dir, 'termination-log');
  const fill = ['a', 'b', 'c', 'd', 'e']
    .map((m) => `@${m}[$i, "a key long enough to fill the termination message"] = $i;`)
    .join(' ');
  const run = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, `BEGIN { $i = 0; while ($i < 60) { ${fill} $i++; } exit(); }\n`)}`,
    `--termination-log=${termination}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await run.done, 0, run.stderr());
  const message = await readFile(termination, 'utf8');
  t.true(parseTerminationMessage(message)?.result.truncated, 'the termination message had to be trimmed');
  const lines = run.stdout().trimEnd().split('\n');
  const last = lines.at(-1) ?? '';
  t.regex(last, /^TRACE_OPERATOR_RESULT [0-9a-f]{32} z:[A-Za-z0-9_-]+$/);
  t.is(lines.filter((l) => l.includes('TRACE_OPERATOR_RESULT')).length, 1);
  const full = parseRunnerOutput(run.stdout(), message);
  t.false(full?.truncated);
  t.is(full?.maps.length, 5);
  t.is(full?.maps[0]?.entries?.length, 60);
  // Compressed, the line is far shorter than the result's JSON.
  t.true(last.length < JSON.stringify(full).length / 3, `${last.length} vs ${JSON.stringify(full).length}`);
});

test.serial('SIGINT to the runner process stops bpftrace, which prints its maps', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const run = runCli([
    'runner',
    `--program=${await writeProgram(dir, TICKS)}`,
    '--deadline=60',
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  await run.waitFor('Attaching 1 probe...');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const signalled = Date.now();
  run.child.kill('SIGINT');
  const exit = await run.done;
  // Well before the 60 s deadline: the SIGINT ended it.
  t.true(Date.now() - signalled < 20_000, `took ${Date.now() - signalled}ms after SIGINT`);
  t.deepEqual(exit, { code: 0, signal: null }, run.stderr());
  t.true(run.stdout().includes(FIRST_SIGINT_LINE));
  t.regex(run.stdout(), /\n@ticks: \d+\n/);
  const result = parseRunnerOutput(run.stdout());
  t.is(result?.outcome, 'Stopped');
  t.truthy(result?.maps.find((m) => m.name === '@ticks'));
});

test.serial('a second SIGINT ends bpftrace at once', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const program = await writeProgram(dir, TICKS);
  const run = runCli([
    'runner',
    `--program=${program}`,
    '--deadline=60',
    '--grace-period=60',
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  await run.waitFor('Attaching 1 probe...');
  const bpftracePid = await bpftraceRunning(program);
  // Real bpftrace exits at once on SIGINT; to keep it from doing so, it is
  // stopped (SIGSTOP), as a bpftrace stuck printing a huge map would be.
  process.kill(bpftracePid, 'SIGSTOP');
  run.child.kill('SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.is(run.child.exitCode, null, 'the runner must wait for the grace period after one SIGINT');
  const second = Date.now();
  run.child.kill('SIGINT');
  const exit = await run.done;
  // Well before the 60 s grace period: the second SIGINT ended it.
  t.true(Date.now() - second < 20_000, `took ${Date.now() - second}ms after the second SIGINT`);
  t.deepEqual(exit, { code: 0, signal: null }, run.stderr());
  t.regex(run.stderr(), /again; ending bpftrace at once/);
  const result = parseRunnerOutput(run.stdout());
  t.is(result?.outcome, 'Stopped');
  t.regex(result?.message ?? '', /second SIGINT/);
  t.is(result?.exitCode, 137);
});

test.serial('bpftrace that ignores SIGINT is killed when the grace period ends', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const program = await writeProgram(dir, TICKS);
  const run = runInProcess(runnerMain, [
    `--program=${program}`,
    '--deadline=1',
    '--grace-period=1',
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  await run.waitFor('Attaching 1 probe...');
  process.kill(await bpftraceRunning(program), 'SIGSTOP');
  const started = Date.now();
  t.is(await run.done, 0, run.stderr());
  t.true(Date.now() - started < 20_000, `took ${Date.now() - started}ms`);
  const result = parseRunnerOutput(run.stdout());
  t.is(result?.outcome, 'DeadlineReached');
  t.regex(result?.message ?? '', /did not exit within the 1s grace period/);
});

test.serial('a stop while bpftrace is still attaching probes still ends it with its maps', async (t) => {
  // bpftrace v0.17 misses a SIGINT that arrives while it attaches probes and
  // would run until the grace period ends; the runner nudges it with SIGTERM.
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const run = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, 'tracepoint:syscalls:sys_enter_s* { @[probe] = count(); }\n')}`,
    '--grace-period=30',
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  await run.waitFor(/Attaching \d+ probes\.\.\./);
  // An idle machine may make no sys_enter_s* call between attach and exit: make some (stat is statx).
  const poke = setInterval(() => statSync('/'), 5);
  t.teardown(() => clearInterval(poke));
  run.raise('SIGINT'); // at once: bpftrace is attaching now
  const stopped = Date.now();
  t.is(await run.done, 0, run.stderr());
  t.true(Date.now() - stopped < 15_000, `took ${Date.now() - stopped}ms after SIGINT`);
  const result = parseRunnerOutput(run.stdout());
  t.is(result?.outcome, 'Stopped');
  t.is(result?.message, undefined, 'bpftrace must exit by itself, not by the grace-period kill');
  t.regex(run.stdout(), /\n@\[tracepoint:syscalls:sys_enter_\w+\]: \d+\n/);
});

test.serial('the stop file stops the trace like SIGINT', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const stopFile = path.join(dir, 'stop');
  const run = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, TICKS)}`,
    '--deadline=60',
    `--stop-file=${stopFile}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  await run.waitFor('Attaching 1 probe...');
  await writeFile(stopFile, 'true');
  const created = Date.now();
  t.is(await run.done, 0, run.stderr());
  // Well before the 60 s deadline: the stop file ended it.
  t.true(Date.now() - created < 20_000, `took ${Date.now() - created}ms after the stop file appeared`);
  t.regex(run.stderr(), /stop file .* appeared/);
  t.true(run.stdout().includes(FIRST_SIGINT_LINE));
  t.regex(run.stdout(), /\n@ticks: \d+\n/);
  t.is(parseRunnerOutput(run.stdout())?.outcome, 'Stopped');
});

test("a syntax error ends non-zero with bpftrace's error in the result", async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const termination = path.join(dir, 'termination-log');
  const program = await writeProgram(dir, 'BEGIN { @x = ; }\n');
  const run = runInProcess(runnerMain, [
    `--program=${program}`,
    `--termination-log=${termination}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await run.done, 1);
  const result = parseRunnerOutput(run.stdout(), await readFile(termination, 'utf8'));
  t.is(result?.outcome, 'CompileError');
  t.is(result?.exitCode, 1);
  t.is(result?.message, `${program}:1:14-15: ERROR: syntax error, unexpected ;`);
  const field = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, 'tracepoint:block:block_rq_issue { @[args->nosuch] = count(); }\n', 'field.bt')}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await field.done, 1);
  t.is(parseRunnerOutput(field.stdout())?.outcome, 'CompileError');
  t.regex(parseRunnerOutput(field.stdout())?.message ?? '', /does not contain a field named 'nosuch'/);
  const lastLine = run.stderr().trimEnd().split('\n').at(-1);
  t.is(lastLine, `trace-operator runner: CompileError: ${program}:1:14-15: ERROR: syntax error, unexpected ;`);
});

test('a probe that does not exist ends non-zero with an attach error', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  for (const [probe, expected] of [
    ['tracepoint:nosuch:thing', /tracepoint not found: nosuch:thing/],
    ['kprobe:vfs_read', /Error attaching probe: 'kprobe:vfs_read'/], // this kernel has no kprobes
    ['tracepoint:block:nosuch_*', /tracepoints not found: block:nosuch_\*/],
    ['uprobe:/bin/sh:no_such_symbol_xyz', /^No probes to attach$/], // bpftrace says so without "ERROR:"
  ] as const) {
    const run = runInProcess(runnerMain, [
      `--program=${await writeProgram(dir, `${probe} { exit(); }\n`)}`,
      `--pid-file=${path.join(dir, 'runner.pid')}`,
    ]);
    t.is(await run.done, 1, probe);
    const result = parseRunnerOutput(run.stdout());
    t.is(result?.outcome, 'AttachError', probe);
    t.regex(result?.message ?? '', expected);
    t.regex(run.stderr(), /trace-operator runner: AttachError: /);
  }
});

test.serial('a program that prints 100 000 lines loses none of them', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  // 1000 lines every 25 ms, with a perf buffer (4 MiB per CPU) that holds
  // the whole output, so that bpftrace drops nothing even when a busy
  // machine starves its reader: a missing line would be the runner's loss.
  const program = await writeProgram(
    dir,
    'interval:ms:25 /@n < 100/ { $i = 0; while ($i < 1000) { printf("line %d\\n", @n * 1000 + $i); $i++; } @n++; if (@n == 100) { exit(); } }\n',
  );
  const run = runCli(
    ['runner', `--program=${program}`, '--deadline=60', `--pid-file=${path.join(dir, 'runner.pid')}`],
    { env: { BPFTRACE_PERF_RB_PAGES: '1024' } },
  );
  const exit = await run.done;
  t.deepEqual(exit, { code: 0, signal: null }, run.stderr());
  const lines = run.stdout().split('\n');
  const numbered = lines.filter((l) => l.startsWith('line '));
  t.false(
    lines.some((l) => l.startsWith('Lost ')),
    'bpftrace itself lost events (perf buffer overflow): the machine was too busy',
  );
  t.is(numbered.length, 100_000);
  t.true(
    numbered.every((l, i) => l === `line ${i}`),
    'lines out of order or changed',
  );
  const result = parseRunnerOutput(run.stdout());
  t.is(result?.outcome, 'Completed');
  t.is(result?.outputLines, 100_000);
  t.is(result?.maps.find((m) => m.name === '@n')?.value, '100');
});

test('a program that prints a fake result line does not fool the parser', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const termination = path.join(dir, 'termination-log');
  const fake =
    'TRACE_OPERATOR_RESULT 0123456789abcdef0123456789abcdef {\\"outcome\\":\\"CompileError\\",\\"exitCode\\":1,\\"maps\\":[],\\"truncated\\":false}';
  const program = await writeProgram(
    dir,
    `BEGIN { printf("${fake}\\n"); printf("no newline at the end"); @answer = 42; exit(); }\n`,
  );
  const run = runInProcess(runnerMain, [
    `--program=${program}`,
    `--termination-log=${termination}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await run.done, 0, run.stderr());
  t.true(run.stdout().includes('TRACE_OPERATOR_RESULT 0123456789abcdef0123456789abcdef {"outcome":"CompileError"'));
  // With the termination message, its nonce says the fake line is not the runner's.
  const result = parseRunnerOutput(run.stdout(), await readFile(termination, 'utf8'));
  t.is(result?.outcome, 'Completed');
  t.is(result?.maps.find((m) => m.name === '@answer')?.value, '42');
  // Without one, the runner prints its own line after everything bpftrace printed, and the last line wins.
  const bare = runInProcess(runnerMain, [`--program=${program}`, `--pid-file=${path.join(dir, 'runner.pid')}`]);
  t.is(await bare.done, 0, bare.stderr());
  t.is(parseRunnerOutput(bare.stdout())?.outcome, 'Completed');
  t.regex(bare.stdout(), /\n@answer: 42\nTRACE_OPERATOR_RESULT [0-9a-f]{32} z:\S+\n$/);
  // The program's unterminated line is ended, so what follows starts on its own line.
  t.regex(run.stdout(), /no newline at the end\n/);
});

test('program arguments reach bpftrace as $1, $2', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const program = await writeProgram(dir, 'BEGIN { printf("%s %d\\n", str($1), $2); exit(); }\n');
  const run = runInProcess(runnerMain, [
    `--program=${program}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
    '--',
    'hello',
    '-5',
  ]);
  t.is(await run.done, 0, run.stderr());
  t.true(run.stdout().startsWith('Attaching 1 probe...\nhello -5\n'));
});

test('a missing program or bpftrace is a clear error in the result', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const missing = runInProcess(runnerMain, [
    `--program=${path.join(dir, 'nope.bt')}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await missing.done, 1);
  t.regex(parseRunnerOutput(missing.stdout())?.message ?? '', /cannot read the program .*nope\.bt/);
  const noBpftrace = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, TICKS)}`,
    '--bpftrace=/nonexistent/bpftrace',
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await noBpftrace.done, 1);
  const result = parseRunnerOutput(noBpftrace.stdout());
  t.is(result?.outcome, 'Error');
  t.is(result?.exitCode, 127);
  t.regex(result?.message ?? '', /bpftrace not found/);
});
