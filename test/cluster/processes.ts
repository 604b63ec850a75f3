// Starting and stopping the control plane's processes: each runs detached
// with its output in .cluster/logs/<name>.log and its pid in .cluster/pids/,
// so cluster:up can return while they keep running and cluster:down can find them.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessDirs {
  pids: string;
  logs: string;
}

export function logFile(dirs: ProcessDirs, name: string): string {
  return path.join(dirs.logs, `${name}.log`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function readPid(dirs: ProcessDirs, name: string): Promise<number | undefined> {
  const file = path.join(dirs.pids, `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(await readFile(file, 'utf8'), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export async function runningPid(dirs: ProcessDirs, name: string): Promise<number | undefined> {
  const pid = await readPid(dirs, name);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/** Starts a detached process whose output goes to its log file, and records its pid. */
export async function startDetached(dirs: ProcessDirs, name: string, binary: string, args: string[]): Promise<number> {
  await mkdir(dirs.pids, { recursive: true });
  await mkdir(dirs.logs, { recursive: true });
  const out = openSync(logFile(dirs, name), 'a');
  try {
    const child = spawn(binary, args, { detached: true, stdio: ['ignore', out, out] });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${name} (${binary})`);
    child.unref();
    await writeFile(path.join(dirs.pids, `${name}.pid`), `${pid}\n`);
    return pid;
  } finally {
    closeSync(out);
  }
}

/** Stops one recorded process: SIGTERM, then SIGKILL if it lingers. */
export async function stopProcess(dirs: ProcessDirs, name: string, graceMs = 10_000): Promise<void> {
  const pid = await readPid(dirs, name);
  if (pid !== undefined && isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isAlive(pid) && Date.now() < deadline) await sleep(100);
    if (isAlive(pid)) {
      process.kill(pid, 'SIGKILL');
      while (isAlive(pid)) await sleep(50);
    }
  }
  await rm(path.join(dirs.pids, `${name}.pid`), { force: true });
}

export async function recordedNames(dirs: ProcessDirs): Promise<string[]> {
  if (!existsSync(dirs.pids)) return [];
  return (await readdir(dirs.pids)).filter((f) => f.endsWith('.pid')).map((f) => f.slice(0, -'.pid'.length));
}

/** Polls until check() is true; on timeout the error names the component and its log. */
export async function waitFor(
  what: string,
  log: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  pid?: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (pid !== undefined && !isAlive(pid)) throw new Error(`${what} exited while starting; see its log: ${log}`);
    await sleep(200);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000}s; see its log: ${log}`);
}

/** A TCP port on 127.0.0.1 that is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
