// The two controllers the harness runs as processes: the real manager
// (`trace-operator manager`, scoped to the bench namespaces) and the ceiling
// client (bench/ceiling.ts). Their logs go to files in the run directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { inspectorUrl, liveHeap, startCpuProfile, type CpuProfiling, type LiveHeap } from './inspector.ts';
import { inCgroup, type MemoryCgroup } from './memory-limit.ts';
import { parseMetrics, type Sample } from './prom.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(repoRoot, 'src', 'cli.ts');
const CEILING = path.join(repoRoot, 'bench', 'ceiling.ts');

/** The environment without TRACE_OPERATOR_* settings, so only the flags given here apply. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TRACE_OPERATOR_') && k !== 'KUBECONFIG'),
  );
}

/** Children still running, so an interrupted run can end them. */
export const liveChildren = new Set<ChildProcess>();

function exitOf(child: ChildProcess): Promise<number> {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? 128);
    else child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

export interface ManagerTimes {
  /** performance.now() at spawn, when /readyz first answered 200, and when it logged that it leads. */
  spawnedAt: number;
  readyAt: number;
  leadingAt?: number;
}

export class ManagerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  readonly times: ManagerTimes;
  metricsUrl = '';
  probesUrl = '';
  inspector: string | undefined;
  warnings = 0;
  errors = 0;
  readonly #exited: Promise<number>;
  #log: WriteStream;

  private constructor(child: ChildProcess, logFile: string, log: WriteStream, spawnedAt: number) {
    this.child = child;
    this.pid = child.pid ?? -1;
    this.logFile = logFile;
    this.#log = log;
    this.times = { spawnedAt, readyAt: Number.NaN };
    this.#exited = exitOf(child);
  }

  /** Starts the manager and resolves once /readyz answers 200 (caches synced). */
  static async start(options: {
    kubeconfig: string;
    namespaces: readonly string[];
    concurrency: number;
    logFile: string;
    leaseName: string;
    onSpawn?: (pid: number) => void;
    nodeOptions?: readonly string[];
    /** The CLI to run: dist/cli.js as the image runs it, or src/cli.ts (the default). */
    cli?: string;
    /** More manager flags. */
    args?: readonly string[];
    /** Run inside this memory cgroup (the shipped limit), as in the pod. */
    memoryCgroup?: MemoryCgroup;
  }): Promise<ManagerProcess> {
    const [leaseNamespace] = options.namespaces;
    if (leaseNamespace === undefined) throw new Error('the manager needs at least one namespace');
    const args = [
      // The inspector only so that liveHeap() can force a GC before reading the heap (and for --burst-cpu-prof).
      '--inspect=127.0.0.1:0',
      ...(options.nodeOptions ?? []),
      options.cli ?? CLI,
      'manager',
      `--kubeconfig=${options.kubeconfig}`,
      `--watch-namespaces=${options.namespaces.join(',')}`,
      `--leader-election-namespace=${leaseNamespace}`,
      `--leader-election-id=${options.leaseName}`,
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      '--log-level=info',
      `--concurrency=${options.concurrency}`,
      ...(options.args ?? []),
    ];
    const log = createWriteStream(options.logFile, { flags: 'a' });
    const spawnedAt = performance.now();
    const [command, argv] =
      options.memoryCgroup === undefined
        ? [process.execPath, args]
        : inCgroup(options.memoryCgroup, process.execPath, args);
    const child = spawn(command, argv, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const manager = new ManagerProcess(child, options.logFile, log, spawnedAt);
    options.onSpawn?.(manager.pid);
    let addresses: { probes: string; metrics: string } | undefined;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        log.write(`${line}\n`);
        manager.inspector ??= inspectorUrl(line);
        if (line.includes('"level":"warn"')) manager.warnings++;
        if (line.includes('"level":"error"')) manager.errors++;
        if (addresses === undefined && line.includes('"manager starting"'))
          addresses = JSON.parse(line) as { probes: string; metrics: string };
        if (manager.times.leadingAt === undefined && line.includes('"leading: starting reconciles"'))
          manager.times.leadingAt = performance.now();
      });
    }
    let exitCode: number | undefined;
    void manager.#exited.then((code) => (exitCode = code));
    for (;;) {
      if (exitCode !== undefined)
        throw new Error(`the manager exited with ${exitCode} while starting; see ${options.logFile}`);
      if (addresses !== undefined) {
        manager.probesUrl = `http://${addresses.probes}`;
        manager.metricsUrl = `http://${addresses.metrics}/metrics`;
        try {
          if ((await fetch(`${manager.probesUrl}/readyz`)).ok) break;
        } catch {
          // not listening yet
        }
      }
      if (performance.now() - spawnedAt > 600_000)
        throw new Error(`the manager was not ready within 600s; see ${options.logFile}`);
      await sleep(20);
    }
    manager.times.readyAt = performance.now();
    return manager;
  }

  async metrics(): Promise<Sample[]> {
    return parseMetrics(await (await fetch(this.metricsUrl)).text());
  }

  /** The live heap after a forced full GC (undefined when the inspector did not start). */
  async liveHeap(): Promise<LiveHeap | undefined> {
    return this.inspector === undefined ? undefined : liveHeap(this.inspector);
  }

  /** Starts a CPU profile of the manager through its inspector (undefined when the inspector did not start). */
  async startCpuProfile(): Promise<CpuProfiling | undefined> {
    return this.inspector === undefined ? undefined : startCpuProfile(this.inspector);
  }

  /** Waits until the manager logs that it leads (its reconciles start). */
  async leading(timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.times.leadingAt === undefined) {
      if (performance.now() > deadline)
        throw new Error(`the manager did not become leader within ${timeoutMs / 1000}s; see ${this.logFile}`);
      await sleep(20);
    }
  }

  /** SIGTERM, then waits for the exit; returns how long shutting down took (ms). */
  async stop(): Promise<number> {
    const at = performance.now();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
    await this.#exited;
    clearTimeout(timer);
    await new Promise<void>((resolve) => this.#log.end(resolve));
    return performance.now() - at;
  }
}

export interface CeilingReport {
  processed: number;
  failed: number;
  firstError?: string;
  requests: { byMethod: Record<string, number>; writesByCode: Record<string, number>; writes: number; reads: number };
  /** Mean API latency the client saw, by verb. */
  latency: Record<string, { count: number; meanSeconds: number }>;
}

export class CeilingProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly #lines: string[] = [];
  readonly #exited: Promise<number>;
  #inspector: string | undefined;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.pid = child.pid ?? -1;
    this.#exited = exitOf(child);
  }

  static async start(options: {
    kubeconfig: string;
    selector: string;
    concurrency: number;
    logFile: string;
    /** Run with the inspector on loopback, for startCpuProfile(). */
    inspect?: boolean;
  }): Promise<CeilingProcess> {
    const child = spawn(
      process.execPath,
      [
        ...(options.inspect === true ? ['--inspect=127.0.0.1:0'] : []),
        CEILING,
        `--kubeconfig=${options.kubeconfig}`,
        `--selector=${options.selector}`,
        `--concurrency=${options.concurrency}`,
      ],
      { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const ceiling = new CeilingProcess(child);
    const log = createWriteStream(options.logFile, { flags: 'a' });
    if (child.stderr !== null)
      createInterface({ input: child.stderr }).on('line', (line) => {
        log.write(`${line}\n`);
        ceiling.#inspector ??= inspectorUrl(line);
      });
    if (child.stdout !== null) createInterface({ input: child.stdout }).on('line', (line) => ceiling.#lines.push(line));
    let exitCode: number | undefined;
    void ceiling.#exited.then((code) => (exitCode = code));
    const started = performance.now();
    while (!ceiling.#lines.includes('ready')) {
      if (exitCode !== undefined)
        throw new Error(`the ceiling client exited with ${exitCode} while starting; see ${options.logFile}`);
      if (performance.now() - started > 60_000)
        throw new Error(`the ceiling client did not start within 60s; see ${options.logFile}`);
      await sleep(20);
    }
    return ceiling;
  }

  /** Starts a CPU profile through the inspector (undefined unless started with `inspect`). */
  async startCpuProfile(): Promise<CpuProfiling | undefined> {
    return this.#inspector === undefined ? undefined : startCpuProfile(this.#inspector);
  }

  /** SIGTERM; resolves with the counts it printed. */
  async stop(): Promise<CeilingReport> {
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.#exited;
    clearTimeout(timer);
    const line = this.#lines.find((l) => l.startsWith('{'));
    if (line === undefined) throw new Error('the ceiling client printed no counts');
    return JSON.parse(line) as CeilingReport;
  }
}
