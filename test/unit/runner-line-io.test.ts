import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import test from 'ava';
import { LineAwareWriter, pacedChunks, readLines } from '../../src/runner/line-io.ts';
import { spawnBpftrace } from '../../src/runner/trace.ts';

test('lines are split across chunks, including a UTF-8 character cut in two', async (t) => {
  const bytes = Buffer.from('one\ntwo é\nthree');
  const chunks = [bytes.subarray(0, 2), bytes.subarray(2, 9), bytes.subarray(9, 10), bytes.subarray(10)];
  const lines: string[] = [];
  for await (const line of readLines(Readable.from(chunks))) lines.push(line);
  t.deepEqual(lines, ['one', 'two é', 'three']);
});

test('the writer waits for a slow reader and loses nothing', async (t) => {
  let received = '';
  const slow = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _encoding, callback) {
      received += chunk.toString();
      setTimeout(callback, 1);
    },
  });
  const writer = new LineAwareWriter(slow);
  let waited = 0;
  for (let i = 0; i < 200; i++) {
    const started = Date.now();
    await writer.write(`line ${i}\n`);
    waited += Date.now() - started;
  }
  await writer.flush();
  await new Promise((resolve) => slow.end(resolve));
  t.is(received.split('\n').length, 201);
  t.true(waited > 0, 'write() should have waited for drain');
});

test("the runner's own lines start on a new line", async (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const writer = new LineAwareWriter(out);
  await writer.write('partial');
  await writer.writeLine('RUNNER');
  await writer.write('full\n');
  await writer.writeLine('AGAIN');
  await writer.write('tail');
  await writer.endLine();
  await writer.endLine();
  t.is(text, 'partial\nRUNNER\nfull\nAGAIN\ntail\n');
});

test('a reader that went away does not crash the writer', async (t) => {
  const broken = new Writable({
    write(_chunk, _encoding, callback) {
      callback(new Error('EPIPE'));
    },
  });
  const writer = new LineAwareWriter(broken);
  await writer.write('a\n');
  await writer.write('b\n');
  await writer.flush();
  t.regex(writer.error?.message ?? '', /EPIPE/);
});

test('paced reading passes every chunk on in order and waits only after a small one', async (t) => {
  const chunks = [Buffer.alloc(10, 'a'), Buffer.alloc(100, 'b'), Buffer.alloc(5, 'c'), Buffer.alloc(100, 'd')];
  const pauses: string[] = [];
  const seen: string[] = [];
  const pacing = { pauseMs: 1, fullBytes: 100, sleep: async () => void pauses.push(seen.at(-1) ?? '') };
  for await (const chunk of pacedChunks(Readable.from(chunks), pacing)) seen.push(chunk.toString()[0] ?? '');
  t.deepEqual(seen, ['a', 'b', 'c', 'd']);
  t.deepEqual(pauses, ['a', 'c'], 'a pause follows each chunk under fullBytes, none a full one');
});

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
  const { child, stdout } = spawned;
  const closed = once(child, 'close');
  t.is(child.stdout, null, 'stdout goes to the FIFO, not to a pipe of the child');
  t.true(stdout instanceof Socket);
  t.is((stdout as Socket).readableHighWaterMark, 1);
  t.is(await readAll(stdout), '-B line -f json -- program.bt x\n');
  await closed;
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
  const { child, stdout } = spawned;
  t.true(stdout === child.stdout);
  t.is(await readAll(stdout as AsyncIterable<Buffer>), '-B line -f json -- program.bt x\n');
  t.regex(String(stderr.read()), /warning: cannot make a FIFO for bpftrace's output \(.*ENOENT.*\)/);
});
