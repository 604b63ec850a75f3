// Where the local control plane keeps its binaries, state and kubeconfig.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const K8S_VERSION = 'v1.37.2';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ClusterPaths {
  repoRoot: string;
  /** Cached binaries, built once per machine. */
  testbin: string;
  /** Runtime state: certificates, etcd data, logs, pid files. Git-ignored. */
  state: string;
  kubeconfig: string;
  logs: string;
}

/** Where builds are cached once per machine (binaries, images): $TRACE_OPERATOR_CACHE, else ~/.cache/trace-operator. */
export function cacheRoot(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env['TRACE_OPERATOR_CACHE'] ?? path.join(os.homedir(), '.cache', 'trace-operator');
}

export function clusterPaths(env: Readonly<Record<string, string | undefined>> = process.env): ClusterPaths {
  // TRACE_OPERATOR_CLUSTER_STATE runs a second local cluster beside the default one (its own ports, etcd and certificates).
  const state = env['TRACE_OPERATOR_CLUSTER_STATE'] ?? path.join(repoRoot, '.cluster');
  return {
    repoRoot,
    testbin: env['TESTBIN_DIR'] ?? path.join(cacheRoot(env), 'testbin', K8S_VERSION),
    state,
    kubeconfig: path.join(state, 'kubeconfig'),
    logs: path.join(state, 'logs'),
  };
}

/** Where the control plane's processes keep their pid files and logs. */
export function processDirs(p: ClusterPaths): { pids: string; logs: string } {
  return { pids: path.join(p.state, 'pids'), logs: p.logs };
}
