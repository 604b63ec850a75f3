// Helpers for integration tests against the local control plane that
// `npm run cluster:up` starts (test/cluster/). Tests never start it
// themselves: `npm test` brings it up before ava runs.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { clusterPaths } from '../cluster/paths.ts';

const paths = clusterPaths();

/** Absolute path of the admin kubeconfig written by cluster:up. */
export const kubeconfigPath = paths.kubeconfig;

/** True when cluster:up has written a kubeconfig (integration tests skip loudly otherwise). */
export function clusterAvailable(): boolean {
  return existsSync(kubeconfigPath);
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs the testbin kubectl against the local cluster; never throws on a non-zero exit. */
export async function kubectl(
  args: readonly string[],
  options: { input?: string; namespace?: string } = {},
): Promise<KubectlResult> {
  const ns = options.namespace === undefined ? [] : ['--namespace', options.namespace];
  const result = await execa(path.join(paths.testbin, 'kubectl'), ['--kubeconfig', kubeconfigPath, ...ns, ...args], {
    input: options.input,
    reject: false,
  });
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode ?? -1 };
}

/** Creates a uniquely named namespace for one test; returns its name and a cleanup function. */
export async function createTestNamespace(prefix: string): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`.toLowerCase().slice(0, 63);
  const created = await kubectl(['create', 'namespace', name]);
  if (created.exitCode !== 0) throw new Error(`could not create test namespace ${name}: ${created.stderr}`);
  return {
    name,
    cleanup: async () => {
      await kubectl(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
    },
  };
}
