// The harness's side of the cluster: its own fast client (the project's
// KubeClient), namespaces, the CRD, object counts, and the control plane's
// process ids (for the CPU split).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterPaths } from '../../test/cluster/paths.ts';
import { installCrd } from '../../test/support/manager.ts';
import { isAlreadyExists, isNotFound } from '../../src/runtime/api-error.ts';
import { KubeClient, loadKubeConfig, resourcePath } from '../../src/runtime/kube-client.ts';
import type { ObjectList } from '../../src/runtime/objects.ts';
import { CRD_NAME } from '../../src/tracejob/index.ts';

export const paths = clusterPaths();
export const CONTROL_PLANE = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;

/** A client for the harness: a keep-alive pool of `maxSockets` connections. */
export function benchClient(maxSockets: number): KubeClient {
  return new KubeClient({
    kubeConfig: loadKubeConfig({ kubeconfig: paths.kubeconfig }),
    maxSockets,
    userAgent: 'trace-operator-bench',
    fieldManager: 'trace-operator-bench',
  });
}

/** Why the local control plane cannot be used, or undefined when it answers /readyz; `client` is made only if there is a kubeconfig. */
export async function clusterProblem(client: () => KubeClient): Promise<string | undefined> {
  if (!existsSync(paths.kubeconfig))
    return `no kubeconfig at ${paths.kubeconfig}: start the local control plane with npm run cluster:up`;
  try {
    const res = await client().request('GET', '/readyz', {}, { timeoutMs: 5000 });
    return res.status === 200 ? undefined : `the API server answered /readyz with ${res.status}`;
  } catch (error) {
    return `the API server does not answer (${error instanceof Error ? error.message : String(error)}): npm run cluster:up`;
  }
}

/** Pids of the control plane's processes, from .cluster/pids. */
export function controlPlanePids(): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const name of CONTROL_PLANE) {
    const file = path.join(paths.state, 'pids', `${name}.pid`);
    const pid = existsSync(file) ? Number.parseInt(readFileSync(file, 'utf8'), 10) : Number.NaN;
    out[name] = Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }
  return out;
}

/** Installs the TraceJob CRD unless it is already served. */
export async function ensureCrd(client: KubeClient): Promise<void> {
  try {
    await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await installCrd();
  }
}

/** Creates the namespaces and waits until each has its default ServiceAccount (pods are refused before it exists). */
export async function createNamespaces(
  client: KubeClient,
  names: readonly string[],
  labels: Record<string, string>,
): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      try {
        await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
    }),
  );
  const deadline = Date.now() + 60_000;
  for (const name of names) {
    for (;;) {
      try {
        await client.get(resourcePath({ version: 'v1', plural: 'serviceaccounts', namespace: name, name: 'default' }));
        break;
      } catch (error) {
        if (!isNotFound(error) || Date.now() > deadline)
          throw new Error(
            `namespace ${name} got no default ServiceAccount within 60s (is kube-controller-manager running?)`,
            { cause: error },
          );
        await sleep(200);
      }
    }
  }
}

/** Starts deleting namespaces (does not wait). */
export async function deleteNamespaces(client: KubeClient, names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      try {
        await client.delete(resourcePath({ version: 'v1', plural: 'namespaces', name }), {
          propagationPolicy: 'Background',
        });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }),
  );
}

/** How many of `names` still exist. */
export async function existingNamespaces(client: KubeClient, names: readonly string[]): Promise<number> {
  const found = await Promise.all(
    names.map(async (name) => {
      try {
        await client.get(resourcePath({ version: 'v1', plural: 'namespaces', name }));
        return 1;
      } catch (error) {
        if (isNotFound(error)) return 0;
        throw error;
      }
    }),
  );
  return found.reduce<number>((a, b) => a + b, 0);
}

/** Namespaces left over by earlier bench runs (label trace-operator-bench/run). */
export async function leftoverNamespaces(client: KubeClient): Promise<string[]> {
  const list = await client.list<{ metadata: { name?: string } }>('/api/v1/namespaces', {
    labelSelector: 'trace-operator-bench/run',
  });
  return list.items.map((n) => n.metadata.name ?? '').filter((n) => n !== '');
}

export interface CollectionRef {
  group?: string;
  version: string;
  plural: string;
}

/**
 * Number of objects in one namespace's collection, from a one-item list's
 * remainingItemCount: cheap even for 10 000 objects. (The API server gives
 * no remainingItemCount to lists filtered by a selector, so there is none.)
 */
export async function countObjects(client: KubeClient, ref: CollectionRef, namespace: string): Promise<number> {
  const list: ObjectList<unknown> = await client.list(resourcePath({ ...ref, namespace }), { limit: 1 });
  return list.items.length + (list.metadata.remainingItemCount ?? 0);
}

/**
 * Garbage collections the API server's Go runtime has run
 * (go_gc_duration_seconds_count). One that falls inside a restart takes it
 * a second or more on 2 cores: the API server's heap holds every cached
 * object (2.5 GB RSS over 10 000 settled TraceJobs).
 */
export async function apiserverGcCycles(client: KubeClient): Promise<number> {
  const line = (await apiserverMetricLines(client)).find((l) => l.startsWith('go_gc_duration_seconds_count '));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The API server's apiserver_request_total for mutating verbs, by "VERB resource[/subresource]" (all clients, all namespaces). */
export async function apiserverWrites(client: KubeClient): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of await apiserverMetricLines(client)) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const label = (name: string): string => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? '';
    const verb = label('verb');
    if (!['POST', 'PUT', 'PATCH', 'DELETE', 'DELETECOLLECTION', 'APPLY'].includes(verb)) continue;
    const sub = label('subresource');
    const key = `${verb} ${label('resource')}${sub === '' ? '' : `/${sub}`}`;
    out[key] = (out[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

/** The API server's /metrics, in Prometheus' text format, line by line. */
async function apiserverMetricLines(client: KubeClient): Promise<string[]> {
  const res = await client.request('GET', '/metrics', { accept: 'text/plain' }, { timeoutMs: 30_000 });
  return res.text.split('\n');
}
