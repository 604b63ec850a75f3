// The bpftrace process the runner supervises: spawned with its stdout into a
// FIFO, or handed over by the launcher (bin/trace-operator) and checked
// before it is taken. Stand-ins for bpftrace (echo, sleep): only the process
// handling matters here; runner-build.test.ts takes over a real bpftrace.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import {
  bpftraceArgv,
  decodeWaitStatus,
  discardPrestarted,
  prestartedChild,
  prestartedFromEnv,
  prestartedMismatch,
  spawnBpftrace,
} from '../../src/runner/bpftrace-process.ts';
import { LineAwareWriter } from '../../src/runner/line-io.ts';
import { runTrace } from '../../src/runner/trace.ts';

async function readAll(stream: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

// echo stands in for bpftrace below: only the output path the spawn sets up matters.
test("bpftrace's stdout is a FIFO read one byte at a time (so lines wait in it), and no name is left behind", async (t) => {
  // A private TMPDIR, so that no other test's runner shows in it.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'fifo-test-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const stderr = new PassThrough();
  const tmpdir = process.env['TMPDIR'];
  process.env['TMPDIR'] = tmp;
  let spawned: ReturnType<typeof spawnBpftrace>;
  try {
    spawned = spawnBpftrace({ bpftrace: '/bin/echo', programFile: 'program.bt', args: ['x'], stderr });
  } finally {
    if (tmpdir === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = tmpdir;
  }
  const { stdout } = spawned;
  t.true(stdout instanceof Socket);
  t.is((stdout as Socket).readableHighWaterMark, 1, "read one byte at a time: the FIFO, not the child's pipe");
  t.is(await readAll(stdout), '-B line -f json -- program.bt x\n');
  t.deepEqual(await spawned.ended, { code: 0, signal: null });
  t.is(stderr.read(), null, 'no warning');
  t.deepEqual(readdirSync(tmp), []);
});

test("without mkfifo the output still arrives, through the child's pipe, and the runner says so", async (t) => {
  const stderr = new PassThrough();
  const searchPath = process.env['PATH'];
  process.env['PATH'] = '/nonexistent';
  let spawned: ReturnType<typeof spawnBpftrace>;
  try {
    spawned = spawnBpftrace({ bpftrace: '/bin/echo', programFile: 'program.bt', args: ['x'], stderr });
  } finally {
    process.env['PATH'] = searchPath; // before anything else in this process spawns
  }
  const { stdout } = spawned;
  t.not((stdout as Socket).readableHighWaterMark, 1, "the child's own pipe");
  t.is(await readAll(stdout), '-B line -f json -- program.bt x\n');
  t.regex(String(stderr.read()), /warning: cannot make a FIFO for bpftrace's output \(.*ENOENT.*\)/);
});

test('the hand-over is read only in the form the launcher writes', (t) => {
  t.deepEqual(prestartedFromEnv({ TRACE_OPERATOR_PRESTARTED_BPFTRACE: '4242:5:6' }), {
    pid: 4242,
    stdoutFd: 5,
    stderrFd: 6,
  });
  for (const value of [undefined, '', '4242', '4242:5', 'x:5:6', '4242:5:6 '])
    t.is(prestartedFromEnv({ TRACE_OPERATOR_PRESTARTED_BPFTRACE: value }), undefined, String(value));
});

test('a hand-over counts only when it names a child of this process', async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const env = (pid: number | undefined) => ({ TRACE_OPERATOR_PRESTARTED_BPFTRACE: `${pid}:5:6` });
  t.deepEqual(prestartedChild(env(child.pid)), { pid: child.pid, stdoutFd: 5, stderrFd: 6 });
  t.is(prestartedChild(env(1)), undefined, "init is nobody's child");
  t.is(prestartedChild({}), undefined);
});

test('wait statuses decode as Node reports a child: an exit code or a signal', (t) => {
  t.deepEqual(decodeWaitStatus(0), { code: 0, signal: null });
  t.deepEqual(decodeWaitStatus(1 << 8), { code: 1, signal: null });
  t.deepEqual(decodeWaitStatus(255 << 8), { code: 255, signal: null });
  t.deepEqual(decodeWaitStatus(9), { code: null, signal: 'SIGKILL' });
  t.deepEqual(decodeWaitStatus(2 | 0x80), { code: null, signal: 'SIGINT' }, 'with a core dump');
});

test("a process is taken over only when it is the runner's child running the same command line", async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const pid = child.pid ?? 0;
  const sleeping = { pid, stdoutFd: 5, stderrFd: 6 };
  t.is(prestartedMismatch(sleeping, ['sleep', '30']), undefined);
  t.is(
    prestartedMismatch(sleeping, bpftraceArgv('bpftrace', 'p.bt', [])),
    `process ${pid} runs 'sleep 30', not 'bpftrace -B line -f json -- p.bt'`,
  );
  t.is(prestartedMismatch({ ...sleeping, pid: 1 }, ['sleep', '30']), "process 1 is not the runner's child");
  const gone = spawn('true');
  await once(gone, 'exit');
  t.is(prestartedMismatch({ ...sleeping, pid: gone.pid ?? 0 }, ['true']), `there is no process ${gone.pid}`);
});

test('a bpftrace that is exiting, its command line gone but not yet a zombie, is known by its name', (t) => {
  // A fake /proc: the kernel shows this state only for the instant between a
  // process freeing its memory and becoming a zombie, too short to catch here.
  const procRoot = mkdtempSync(path.join(os.tmpdir(), 'trace-operator-proc-'));
  t.teardown(() => rmSync(procRoot, { recursive: true, force: true }));
  const exiting = (pid: number, comm: string) => {
    mkdirSync(path.join(procRoot, String(pid)));
    writeFileSync(path.join(procRoot, String(pid), 'stat'), `${pid} (${comm}) R ${process.pid} ${pid} 0 0 256\n`);
    writeFileSync(path.join(procRoot, String(pid), 'cmdline'), '');
    return { pid, stdoutFd: 5, stderrFd: 6 };
  };
  const argv = bpftraceArgv('/usr/bin/bpftrace', 'p.bt', []);
  t.is(prestartedMismatch(exiting(101, 'bpftrace'), argv, procRoot), undefined);
  t.is(prestartedMismatch(exiting(102, 'sleep'), argv, procRoot), 'process 102 is sleep, not bpftrace');
});

test('a handed-over process that does not run the trace is killed, and bpftrace is started as usual', async (t) => {
  const impostor = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
  t.teardown(() => impostor.kill('SIGKILL'));
  const ended = once(impostor, 'exit');
  const prestarted = {
    pid: impostor.pid ?? 0,
    stdoutFd: openSync('/dev/null', 'r'),
    stderrFd: openSync('/dev/null', 'r'),
  };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.setEncoding('utf8');
  stderr.setEncoding('utf8');
  const run = await runTrace({
    bpftrace: '/bin/echo',
    programFile: 'program.bt',
    args: [],
    gracePeriod: 1,
    stdout: new LineAwareWriter(stdout),
    stderr,
    onSignal: () => undefined,
    prestarted,
  });
  t.deepEqual(await ended, [null, 'SIGKILL']);
  t.regex(
    String(stderr.read()),
    /warning: not using the bpftrace the launcher started \(process \d+ runs 'sleep 30', not '\/bin\/echo -B line -f json -- program\.bt'\); starting it here/,
  );
  t.is(run.result.exitCode, 0, 'echo ran in its place');
});

test("discarding leaves a process that is not the runner's child alone", (t) => {
  const stdoutFd = openSync('/dev/null', 'r');
  const stderrFd = openSync('/dev/null', 'r');
  discardPrestarted({ pid: 1, stdoutFd, stderrFd });
  for (const fd of [stdoutFd, stderrFd]) {
    t.notThrows(() => fstatSync(fd), 'its descriptors stay open too');
    closeSync(fd);
  }
});
