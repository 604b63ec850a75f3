// The runner's stdout: one ordered writer that honours backpressure (a
// program may print hundreds of thousands of lines and none may be lost)
// and knows whether it is at the start of a line, so that the runner's own
// lines never run into the program's unterminated text. And the readers of
// bpftrace's output: paced chunks, split into lines.
import { setTimeout } from 'node:timers/promises';

export class LineAwareWriter {
  #stream: NodeJS.WritableStream;
  #tail: Promise<void> = Promise.resolve();
  #atLineStart = true;
  #failed: Error | undefined;

  constructor(stream: NodeJS.WritableStream) {
    this.#stream = stream;
    // A reader that went away (EPIPE) must not crash the runner: bpftrace's
    // output is still read to the end and the result still written to the
    // termination log; later writes are dropped.
    stream.on('error', (error: Error) => {
      this.#failed ??= error;
      stream.emit('close');
    });
  }

  /** Queues text after everything queued before; resolves when the stream took it (or drained). */
  write(text: string): Promise<void> {
    if (text === '') return this.#tail;
    this.#atLineStart = text.endsWith('\n');
    this.#tail = this.#tail.then(() => this.#writeNow(text));
    return this.#tail;
  }

  /** Writes a whole line of the runner's own, starting a new line first when needed. */
  writeLine(line: string): Promise<void> {
    return this.write(`${this.#atLineStart ? '' : '\n'}${line}\n`);
  }

  /** Ends an unterminated line of program output, so what follows starts on its own line. */
  endLine(): Promise<void> {
    return this.#atLineStart ? this.#tail : this.write('\n');
  }

  /** Resolves when everything queued has been handed to the stream. */
  flush(): Promise<void> {
    return this.#tail;
  }

  get error(): Error | undefined {
    return this.#failed;
  }

  #writeNow(text: string): Promise<void> {
    if (this.#failed !== undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let ok: boolean;
      try {
        ok = this.#stream.write(text);
      } catch (error) {
        this.#failed = error instanceof Error ? error : new Error(String(error));
        resolve();
        return;
      }
      if (ok) {
        resolve();
        return;
      }
      const done = (): void => {
        this.#stream.removeListener('drain', done);
        this.#stream.removeListener('close', done);
        resolve();
      };
      this.#stream.once('drain', done);
      this.#stream.once('close', done);
    });
  }
}

export interface Pacing {
  pauseMs: number;
  fullBytes: number;
  sleep?: (ms: number) => Promise<unknown>;
}

/** Yields the chunks of `stream`; after one smaller than `fullBytes`, waits `pauseMs` before reading on. */
export async function* pacedChunks(
  stream: AsyncIterable<Buffer | string>,
  { pauseMs, fullBytes, sleep = setTimeout }: Pacing,
): AsyncGenerator<Buffer | string> {
  for await (const chunk of stream) {
    yield chunk;
    if (chunk.length < fullBytes) await sleep(pauseMs);
  }
}

/**
 * Splits a byte stream into lines (without the "\n"), decoding UTF-8 across
 * chunk boundaries; yields the whole lines of each chunk together, so that a
 * reader can handle a burst of lines with one write.
 */
export async function* readLineBatches(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    if (lines.length > 0) yield lines;
  }
  pending += decoder.decode();
  if (pending !== '') yield [pending];
}

/** Splits a byte stream into lines (without the "\n"), one at a time. */
export async function* readLines(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  for await (const lines of readLineBatches(stream)) yield* lines;
}
