// Temporary directories for what a test hands to another process and that
// must outlive the call that made it: a log file kwok keeps serving, a
// kubeconfig a manager reads, a Prometheus data directory. All go under one
// directory per test process, removed when the process exits, so a test run
// leaves nothing in the system's temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

let root: string | undefined;

function processRoot(): string {
  if (root === undefined) {
    const made = mkdtempSync(path.join(os.tmpdir(), `trace-operator-test-${process.pid}-`));
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
    root = made;
  }
  return root;
}

/** A new directory named `prefix`-XXXXXX, removed with all the others when this process exits. */
export function scratchDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(processRoot(), `${prefix}-`));
}

/** scratchDir, for synchronous callers. */
export function scratchDirSync(prefix: string): string {
  return mkdtempSync(path.join(processRoot(), `${prefix}-`));
}
