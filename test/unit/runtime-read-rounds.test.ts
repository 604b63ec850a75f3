// Reading a watch response in rounds, on fake time: a lone chunk at once,
// chunks that keep coming gathered into one read per round, a stream
// faster than that read at once, the end, errors and aborts.
import { PassThrough } from 'node:stream';
import test from 'ava';
import { readInRounds } from '../../src/runtime/read-rounds.ts';
import { FakeClock } from '../support/fake-clock.ts';

/** Lets the stream's and the generator's callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(roundMs = 50): {
  clock: FakeClock;
  stream: PassThrough;
  abort: AbortController;
  reads: string[];
  done: Promise<unknown>;
} {
  const clock = new FakeClock(1_000);
  const stream = new PassThrough();
  const abort = new AbortController();
  const reads: string[] = [];
  const done = (async () => {
    for await (const chunk of readInRounds(stream, { roundMs, signal: abort.signal, clock }))
      reads.push(chunk.toString());
  })().then(
    () => 'ended',
    (error: unknown) => error,
  );
  return { clock, stream, abort, reads, done };
}

test('a chunk that comes alone is read at once, and so is the next one after a quiet spell', async (t) => {
  const { clock, stream, reads } = setup();
  stream.write('a');
  await settle();
  t.deepEqual(reads, ['a']);
  t.is(clock.pending(), 0, 'no wait after a read that follows nothing');
  await clock.advance(500);
  stream.write('b');
  await settle();
  t.deepEqual(reads, ['a', 'b'], 'read at once after a quiet spell');
  t.is(clock.pending(), 0);
});

test('everything buffered is taken as one chunk', async (t) => {
  const { stream, reads } = setup();
  stream.write('a');
  stream.write('b');
  stream.write('c');
  await settle();
  t.deepEqual(reads, ['abc']);
});

test('while chunks keep coming, the next read waits a round and takes what gathered', async (t) => {
  const { clock, stream, reads } = setup(50);
  stream.write('1');
  await settle();
  await clock.advance(10);
  stream.write('2');
  await settle();
  t.deepEqual(reads, ['1', '2'], 'the second read follows the first within two rounds: read, then wait');
  t.is(clock.pending(), 1, 'a round begins');
  stream.write('3');
  await settle();
  stream.write('4');
  await settle();
  t.deepEqual(reads, ['1', '2'], 'nothing read during the round');
  await clock.advance(49);
  t.deepEqual(reads, ['1', '2']);
  await clock.advance(1);
  await settle();
  t.deepEqual(reads, ['1', '2', '34'], 'the round gathered both chunks');
  t.is(clock.pending(), 1, 'still busy: another round');
  await clock.advance(50);
  await settle();
  await clock.advance(200);
  stream.write('5');
  await settle();
  t.deepEqual(reads, ['1', '2', '34', '5'], 'after a quiet spell a chunk is read at once again');
});

test("while a buffer's worth comes within a round, reads follow each other at once; rounds resume when it slows", async (t) => {
  const clock = new FakeClock(1_000);
  const stream = new PassThrough({ highWaterMark: 4 });
  const reads: string[] = [];
  const reading = (async () => {
    for await (const chunk of readInRounds(stream, { roundMs: 50, signal: new AbortController().signal, clock }))
      reads.push(chunk.toString());
  })();
  stream.write('11');
  await settle();
  stream.write('22');
  await settle();
  stream.write('3');
  await settle();
  t.deepEqual(reads, ['11', '22', '3'], 'each read as soon as it came: 4 bytes (the buffer) within the round');
  t.is(clock.pending(), 0, 'no round waited');
  await clock.advance(60);
  stream.write('4');
  await settle();
  t.deepEqual(reads, ['11', '22', '3', '4']);
  t.is(clock.pending(), 1, 'one byte in the last 50 ms, right after a read: a round begins');
  await clock.advance(50);
  stream.end();
  await reading;
});

test('strings (a stream with an encoding) are joined', async (t) => {
  const clock = new FakeClock();
  const stream = new PassThrough();
  stream.setEncoding('utf8');
  stream.write('{"a":');
  stream.write('1}\n');
  stream.end();
  const reads: string[] = [];
  for await (const chunk of readInRounds<string>(stream, { roundMs: 50, signal: new AbortController().signal, clock }))
    reads.push(chunk);
  t.deepEqual(reads, ['{"a":1}\n']);
  t.is(typeof reads[0], 'string');
});

test('ends with the stream, after the last bytes', async (t) => {
  const { stream, reads, done } = setup();
  stream.end('last');
  t.is(await done, 'ended');
  t.deepEqual(reads, ['last']);
});

test("the stream's error is thrown; a connection closed before the end is an error too", async (t) => {
  const failed = setup();
  failed.stream.destroy(new Error('socket hang up'));
  t.is(((await failed.done) as Error).message, 'socket hang up');

  const closed = setup();
  closed.stream.write('x');
  await settle();
  closed.stream.destroy();
  t.regex(((await closed.done) as Error).message, /closed before the response ended/);
  t.deepEqual(closed.reads, ['x']);
});

test('an abort ends the reading with its reason, while waiting for data or during a round', async (t) => {
  const waiting = setup();
  waiting.abort.abort(new Error('stopping'));
  t.is(((await waiting.done) as Error).message, 'stopping');

  const inRound = setup();
  inRound.stream.write('1');
  await settle();
  inRound.stream.write('2');
  await settle();
  t.is(inRound.clock.pending(), 1, 'in a round');
  inRound.abort.abort(new Error('stopping'));
  t.is(((await inRound.done) as Error).message, 'stopping');
});
