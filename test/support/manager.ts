// Runs the real manager (`trace-operator manager`) as a process against the
// local control plane, scoped to a test's namespaces so test files running
// in parallel each have their own manager and their own Lease.
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubeconfigPath, kubectl } from './cluster.ts';
import { eventually } from './eventually.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(repoRoot, 'src', 'cli.ts');

export interface RunningManager {
  metricsUrl: string;
  probesUrl: string;
  /** What the manager logged so far (JSON lines). */
  logs(): string;
  metrics(): Promise<string>;
  /** Sends SIGTERM and resolves with the exit code once the process has ended. */
  stop(): Promise<number>;
  /** Sends `signal` (e.g. SIGKILL, for crash tests) and resolves once the process has ended. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Installs the CRDs from config/crd (TraceJob and TraceTrigger; idempotent) and waits until both are served. */
export async function installCrd(): Promise<void> {
  const applied = await kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    path.join(repoRoot, 'config', 'crd', 'bases'),
  ]);
  if (applied.exitCode !== 0) throw new Error(`could not install the TraceJob CRD: ${applied.stderr}`);
  const established = await kubectl([
    'wait',
    '--for=condition=Established',
    'crd/tracejobs.observe.alexeldeib.xyz',
    'crd/tracetriggers.observe.alexeldeib.xyz',
    '--timeout=60s',
  ]);
  if (established.exitCode !== 0) throw new Error(`the CRDs were not established: ${established.stderr}`);
}

export async function startManager(options: {
  namespaces: string[];
  args?: string[];
  kubeconfig?: string;
}): Promise<RunningManager> {
  const [leaseNamespace] = options.namespaces;
  if (leaseNamespace === undefined) throw new Error('startManager needs at least one namespace');
  let output = '';
  let exited: number | undefined;
  const child: ResultPromise = execa(
    process.execPath,
    [
      CLI,
      'manager',
      `--kubeconfig=${options.kubeconfig ?? kubeconfigPath}`,
      `--watch-namespaces=${options.namespaces.join(',')}`,
      `--leader-election-namespace=${leaseNamespace}`,
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      '--log-level=debug',
      ...(options.args ?? []),
    ],
    { reject: false, all: true, env: { TRACE_OPERATOR_LOG_LEVEL: undefined } },
  );
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  void child.then((result) => {
    exited = result.exitCode ?? -1;
  });
  const started = await eventually(
    'the manager logs its addresses',
    async () => {
      const line = output.split('\n').find((l) => l.includes('"manager starting"'));
      if (exited !== undefined) throw new Error(`the manager exited with ${exited}:\n${output}`);
      return line === undefined ? undefined : (JSON.parse(line) as { probes: string; metrics: string });
    },
    30_000,
  );
  const probesUrl = `http://${started.probes}`;
  await eventually(
    'the manager is ready',
    async () => ((await fetch(`${probesUrl}/readyz`)).ok ? true : undefined),
    30_000,
  );
  return {
    metricsUrl: `http://${started.metrics}/metrics`,
    probesUrl,
    logs: () => output,
    metrics: async () => (await fetch(`http://${started.metrics}/metrics`)).text(),
    stop: async () => {
      child.kill('SIGTERM');
      return (await child).exitCode ?? -1;
    },
    kill: async (signal) => {
      child.kill(signal);
      await child;
    },
  };
}

/** Sum of a counter's samples whose labels contain all of `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
