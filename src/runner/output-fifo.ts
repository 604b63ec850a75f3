// bpftrace's stdout goes to a FIFO the runner reads, not to the socket pair
// Node's spawn() makes for 'pipe'.
//
// Why: bpftrace (`-B line -f json`) writes every line on its own. A Unix
// socket charges each small write its whole buffer overhead, so the socket
// pair holds only a few KiB of lines (read every 1.1 ms, it gave 7.4 KiB a
// read where 10 KiB a millisecond were offered), and at a high rate bpftrace
// blocks on it and loses events. A pipe merges small writes into its 64 KiB.
// And Node reads whatever is there as soon as it is there: with a read buffer
// of one byte it stops after each read until the runner has taken it, so the
// lines wait in the pipe and come in few large reads (pumpStdout paces them).
// Measured here (2 vCPUs, 3 s of 200 000 lines/s, reading only): socket pair
// 453 604 lines, 153 673 events lost, Node 3.38 s CPU; this FIFO, paced,
// 596 902 lines, 1 112 lost, 0.93 s.
//
// Node cannot make a pipe(2) for a child, hence a named one: created in a
// private directory, both ends opened, and the name removed at once, so
// nothing is left behind however the runner ends. (In a worker thread Node
// warns when a later open reuses the read end's descriptor number, which the
// socket closed; the runner never runs in one, and the tests run in processes.)
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface OutputFifo {
  /** The write end, for the child's stdio; close it once the child is spawned. */
  writeFd: number;
  /** The read end. */
  readable: net.Socket;
}

/** Makes the FIFO; throws an Error saying why when it cannot (no mkfifo, no writable temp directory). */
export function openOutputFifo(): OutputFifo {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trace-operator-output-'));
  try {
    const fifo = path.join(dir, 'bpftrace-stdout');
    const made = spawnSync('mkfifo', ['-m', '600', fifo], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (made.error !== undefined) throw made.error;
    if (made.status !== 0) throw new Error(`mkfifo: ${made.stderr.toString().trim() || `exit code ${made.status}`}`);
    // Non-blocking, so opening the read end does not wait for a writer; then the write end does not wait either.
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    let writeFd: number;
    try {
      writeFd = openSync(fifo, constants.O_WRONLY);
    } catch (error) {
      closeSync(readFd);
      throw error;
    }
    // Node passes the stream options on to the socket's Readable; its types do not list them.
    const socketOptions: net.SocketConstructorOpts & { readableHighWaterMark: number } = {
      fd: readFd,
      readable: true,
      writable: false,
      readableHighWaterMark: 1,
    };
    return { writeFd, readable: new net.Socket(socketOptions) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
