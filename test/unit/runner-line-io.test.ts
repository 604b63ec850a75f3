import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import test from 'ava';
import { LineAwareWriter, pacedChunks, readLines } from '../../src/runner/line-io.ts';
import { spawnBpftrace } from '../../src/runner/bpftrace-process.ts';

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
