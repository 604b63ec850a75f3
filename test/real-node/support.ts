// Helpers for the end-to-end tests on the real node (test/cluster/real-node.ts):
// what the node is called and which runner image it has, a manager that runs
// trace pods with that image, never pulling it, and the hooks every such test
// file shares (realNodeFile).
import type { V1Pod } from '@kubernetes/client-node';
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import { clusterPaths } from '../cluster/paths.ts';
import { readRealNodeInfo, type RealNodeInfo } from '../cluster/real-node.ts';
import { createTestNamespace, kubeconfigPath, kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { listJson, waitForPhase, waitForTraceJob } from '../support/tracejobs.ts';

/** The running real node; throws saying how to start it. */
export async function realNode(): Promise<RealNodeInfo> {
  const info = await readRealNodeInfo(clusterPaths());
  if (info === undefined) throw new Error('no real node is running: start it with `npm run cluster:up -- --real-node`');
  const node = await kubectl([
    'get',
    'node',
    info.nodeName,
    '-o',
    'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
  ]);
  if (node.stdout.trim() !== 'True')
    throw new Error(
      `the real node ${info.nodeName} is not Ready (${node.stderr.trim() || node.stdout.trim()}): restart it with \`npm run cluster:down && npm run cluster:up -- --real-node\``,
    );
  return info;
}

/**
 * The manager, with the node's locally built runner image as default and only
 * allowed image, never pulled; as admin, or with `kubeconfig` (a ServiceAccount's).
 */
export function startRealNodeManager(
  namespace: string,
  node: RealNodeInfo,
  kubeconfig?: string,
): Promise<RunningManager> {
  return startManager({
    namespaces: [namespace],
    args: [`--default-image=${node.runnerImage}`, `--allowed-images=${node.runnerImage}`, '--image-pull-policy=Never'],
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
  });
}

/** What a real-node test file shares: its namespace, the node, and a manager serving the namespace. */
export interface RealNodeFile {
  readonly ns: string;
  readonly node: RealNodeInfo;
  readonly manager: RunningManager;
}

/**
 * Registers the hooks of a real-node test file: before all, the node (Ready),
 * the CRDs, a namespace named after `prefix` and a manager for it (`start`,
 * by default startRealNodeManager); after all, the manager stops and the
 * namespace goes; a failed test logs the manager's last 40 lines. Read the
 * fields inside tests, once the before hook has run.
 */
export function realNodeFile(
  prefix: string,
  start: (namespace: string, node: RealNodeInfo) => Promise<RunningManager> = startRealNodeManager,
): RealNodeFile {
  let ns: string | undefined;
  let node: RealNodeInfo | undefined;
  let manager: RunningManager | undefined;
  let cleanupNamespace: () => Promise<void> = async () => undefined;

  test.before(async () => {
    node = await realNode();
    await installCrd();
    const namespace = await createTestNamespace(prefix);
    ns = namespace.name;
    cleanupNamespace = namespace.cleanup;
    manager = await start(ns, node);
  });
  test.after.always(async () => {
    await manager?.stop();
    await cleanupNamespace();
  });
  test.afterEach.always((t) => {
    if (!t.passed && manager !== undefined)
      t.log(`manager log (last 40 lines):\n${manager.logs().split('\n').slice(-40).join('\n')}`);
  });

  const set = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not set up: the file's before hook failed or has not run`);
    return value;
  };
  return {
    get ns() {
      return set(ns, 'the namespace');
    },
    get node() {
      return set(node, 'the real node');
    },
    get manager() {
      return set(manager, 'the manager');
    },
  };
}

/** A TraceJob manifest for the file's namespace, on the real node. */
export function realNodeTraceJob(file: RealNodeFile, name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name, namespace: file.ns },
    spec: { hostname: file.node.nodeName, ...spec },
  };
}

/** Waits until the trace's pod runs bpftrace with its probes attached; returns the id, pod and container names. */
export async function attachedTrace(
  namespace: string,
  name: string,
): Promise<{ id: string; pod: string; container: string }> {
  const running = await waitForPhase(namespace, name, 'Running', 90_000);
  const id = running.status?.id ?? '';
  const pod = await runningTracePod(namespace, id);
  const podName = pod.metadata?.name ?? '';
  await waitForLog(namespace, podName, 'Attaching');
  return { id, pod: podName, container: pod.spec?.containers[0]?.name ?? '' };
}

/** The TraceJob once it has ended (Succeeded or Failed). */
export const traceEnded = (namespace: string, name: string, timeoutMs: number): Promise<TraceJob> =>
  waitForTraceJob(
    namespace,
    name,
    'ends',
    (tj) => tj.status?.phase === 'Succeeded' || tj.status?.phase === 'Failed',
    timeoutMs,
  );

/** The trace pod of a trace id once its container runs. */
export function runningTracePod(namespace: string, id: string, timeoutMs = 90_000): Promise<V1Pod> {
  return eventually(
    `the trace pod of ${id} runs`,
    async () => {
      const pods = await listJson<V1Pod>(namespace, 'pods', `iovisor.org/kubectl-trace-id=${id}`);
      return pods.find((p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
    },
    timeoutMs,
    500,
  );
}

/** `kubectl logs` of a pod, with the TTY's \r\n turned into \n. */
export async function podLogs(namespace: string, pod: string): Promise<string> {
  const result = await kubectl(['logs', pod], { namespace });
  if (result.exitCode !== 0) throw new Error(`kubectl logs ${pod} failed: ${result.stderr}`);
  return result.stdout.replace(/\r\n/g, '\n');
}

/** Waits until the pod's log contains `text` (bpftrace printed "Attaching N probes..." once its probes are in). */
export function waitForLog(namespace: string, pod: string, text: string, timeoutMs = 90_000): Promise<string> {
  return eventually(
    `pod ${pod} logs ${JSON.stringify(text)}`,
    async () => {
      const logs = await podLogs(namespace, pod).catch(() => '');
      return logs.includes(text) ? logs : undefined;
    },
    timeoutMs,
    500,
  );
}

export interface Stream {
  text: () => string;
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<string>;
  done: ResultPromise;
  stop: () => Promise<void>;
}

/**
 * Runs a kubectl command whose output streams (logs -f, attach) and collects it.
 * With `tty`, kubectl runs inside `script` so it has a terminal, as a person's
 * `kubectl attach -it` (and `kubectl trace attach`) does.
 */
export function streamKubectl(args: readonly string[], options: { namespace: string; tty?: boolean }): Stream {
  const kubectlBin = path.join(clusterPaths().testbin, 'kubectl');
  const full = [kubectlBin, '--kubeconfig', kubeconfigPath, '--namespace', options.namespace, ...args];
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const child =
    options.tty === true
      ? execa('script', ['-qec', full.map(quote).join(' '), '/dev/null'], { reject: false, all: true, stdin: 'pipe' })
      : execa(full[0] ?? 'kubectl', full.slice(1), { reject: false, all: true, stdin: 'ignore' });
  let output = '';
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString().replace(/\r\n/g, '\n');
  });
  return {
    text: () => output,
    waitFor: (pattern, timeoutMs) =>
      eventually(
        `kubectl ${args.join(' ')} prints ${pattern}`,
        async () => (pattern.test(output) ? output : undefined),
        timeoutMs,
        200,
      ),
    done: child,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}
