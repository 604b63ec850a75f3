// Reads a long-running response (a watch) in rounds: everything that has
// arrived is taken as one chunk, and while data keeps coming (a read within
// two rounds of the one before), the next read waits until `roundMs` after
// the last. A change that comes alone is read at once; under a burst, the
// changes of `roundMs` are read together.
//
// Why: on the 2-vCPU VM the project is measured on, every turn of Node's
// event loop that a socket wakes costs about 50 µs of CPU before any work
// (a bare 2 ms timer: 50-60 µs each), and the API server sends each watch
// event on its own, in three HTTP chunks. Through a burst of 3 000 TraceJobs
// the manager receives about ten events per TraceJob on its watches, and on
// two saturated cores every millisecond it spends is taken from the API
// server. Reading a replayed burst (Pods, Jobs and ConfigMaps of 1 000
// TraceJobs, at a burst's pace, over TLS) took 3.8-4.0 ms of CPU per
// TraceJob one event at a time and 3.2-3.4 ms in 50 ms rounds
// (bench/README.md, 2026-12-07).
// The cost is at most `roundMs` of delay on a change that follows another.
//
// Backpressure is the stream's own: bytes not yet read stay in its buffer,
// and once that is full the socket stops reading. So while a buffer's worth
// (its highWaterMark) or more arrives within a round, reads follow each other
// at once: a watch's initial events (a restart over 10 000 objects) come
// faster than one buffer per round would take them. Reading 40 MiB from a
// local server took 0.4-0.5 s at once and 11 s in rounds of one buffer; a
// restart over 10 000 took 11 s to ready instead of 2.8 s (run 2306).
//
// API
//   readInRounds(stream, { roundMs, signal, clock? }): AsyncGenerator<Buffer>   (string chunks with setEncoding)
//     ends when the stream ends; throws its error, or signal.reason on abort
import type { Readable } from 'node:stream';
import { abortError, realClock, type Clock } from './clock.ts';

export interface ReadRoundsOptions {
  /** The shortest time between two reads while data keeps coming; 0 reads as soon as anything arrives. */
  roundMs: number;
  signal: AbortSignal;
  clock?: Clock;
}

/** Resolves once `stream` has something to read, has ended, or has failed (then rejects). */
function readable(stream: Readable, signal: AbortSignal): Promise<void> {
  if (stream.readableLength > 0 || stream.readableEnded) return Promise.resolve();
  if (stream.errored !== null) return Promise.reject(stream.errored);
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<void>((resolve, reject) => {
    const done = (error?: unknown): void => {
      stream.off('readable', onReadable);
      stream.off('end', onReadable);
      stream.off('close', onClose);
      stream.off('error', done);
      signal.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReadable = (): void => done();
    const onClose = (): void =>
      done(stream.readableEnded ? undefined : new Error('the connection closed before the response ended'));
    const onAbort = (): void => done(abortError(signal));
    stream.on('readable', onReadable);
    stream.on('end', onReadable);
    stream.on('close', onClose);
    stream.on('error', done);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reads everything buffered in `stream`: one Buffer (or string) per round. */
export async function* readInRounds<T extends Buffer | string = Buffer>(
  stream: Readable,
  options: ReadRoundsOptions,
): AsyncGenerator<T, void, undefined> {
  const { roundMs, signal } = options;
  const clock = options.clock ?? realClock;
  const recentReads = new RecentReads(roundMs);
  let lastRead = Number.NEGATIVE_INFINITY;
  for (;;) {
    await readable(stream, signal);
    const chunks: T[] = [];
    for (let chunk = stream.read() as T | null; chunk !== null; chunk = stream.read() as T | null) chunks.push(chunk);
    if (chunks.length === 0) {
      if (stream.readableEnded) return;
      continue;
    }
    const now = clock.now();
    const sincePrevious = now - lastRead;
    lastRead = now;
    const read = (
      chunks.length === 1
        ? chunks[0]
        : typeof chunks[0] === 'string'
          ? chunks.join('')
          : Buffer.concat(chunks as Buffer[])
    ) as T;
    // A buffer's worth within a round: the data comes faster than rounds would take it.
    const streaming = recentReads.add(now, read.length) >= stream.readableHighWaterMark;
    yield read;
    // Data keeps coming (this read follows the last within two rounds): let the next round gather.
    if (sincePrevious < 2 * roundMs && !streaming) await clock.sleep(roundMs - (clock.now() - now), signal);
  }
}

/** The amount read over the last `windowMs`. */
class RecentReads {
  readonly #windowMs: number;
  readonly #reads: { at: number; length: number }[] = [];
  #total = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Adds a read at `now` and returns the total over the window that ends there. */
  add(now: number, length: number): number {
    this.#reads.push({ at: now, length });
    this.#total += length;
    for (
      let oldest = this.#reads[0];
      oldest !== undefined && oldest.at <= now - this.#windowMs;
      oldest = this.#reads[0]
    ) {
      this.#total -= oldest.length;
      this.#reads.shift();
    }
    return this.#total;
  }
}
