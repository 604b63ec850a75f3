// The burst: N TraceJobs created as fast as the API server accepts them,
// `concurrency` requests in flight, spread round-robin over namespaces and
// the kwok nodes.
import type { KubeClient } from '../../src/runtime/kube-client.ts';
import { API_GROUP_VERSION, KIND } from '../../src/tracejob/index.ts';
import { traceJobPath } from '../../src/controller/tracejob-kube-api.ts';

/** The kwok nodes of the local cluster (test/cluster/nodes.yaml); kwok-node-1's hostname label differs from its name. */
export const NODES = ['kwok-node-0', 'kwok-node-1'] as const;

/** A small real-looking program; the pods run on kwok, so it never runs. */
const PROGRAM = 'tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }\n';

export function traceJobName(i: number): string {
  return `bench-${String(i).padStart(5, '0')}`;
}

export function traceJobManifest(i: number, namespace: string, labels: Record<string, string>): object {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: KIND,
    metadata: { name: traceJobName(i), namespace, labels },
    // Long enough that no trace ends (nor its Job's activeDeadlineSeconds) during a run.
    spec: { hostname: NODES[i % NODES.length], program: PROGRAM, deadline: 7200 },
  };
}

export interface BurstResult {
  created: number;
  failed: number;
  firstError?: string;
  /** performance.now() of the first send and of the last answer. */
  startedAt: number;
  endedAt: number;
}

/** Creates TraceJobs 0..n-1; `namespaceOf(i)` places each. */
export async function burst(options: {
  client: KubeClient;
  n: number;
  concurrency: number;
  namespaceOf: (i: number) => string;
  labels: Record<string, string>;
  onSent: (key: string, at: number) => void;
  onAck: (key: string, at: number) => void;
}): Promise<BurstResult> {
  const { client, n, concurrency } = options;
  let next = 0;
  let created = 0;
  let failed = 0;
  let firstError: string | undefined;
  const startedAt = performance.now();
  let endedAt = startedAt;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const namespace = options.namespaceOf(i);
      const key = `${namespace}/${traceJobName(i)}`;
      options.onSent(key, performance.now());
      try {
        await client.create(traceJobPath(namespace), traceJobManifest(i, namespace, options.labels));
        const at = performance.now();
        options.onAck(key, at);
        created++;
        endedAt = Math.max(endedAt, at);
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { created, failed, ...(firstError === undefined ? {} : { firstError }), startedAt, endedAt };
}
