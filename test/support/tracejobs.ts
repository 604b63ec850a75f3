// Small helpers for tests that drive TraceJobs through kubectl and read back
// what the operator did.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { V1ConfigMap, V1Job, V1Pod } from '@kubernetes/client-node';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { kubectl } from './cluster.ts';
import { eventually } from './eventually.ts';

const samplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'samples');

/** A sample manifest from config/samples, parsed. */
export function sample(file: string): TraceJob {
  return parse(readFileSync(path.join(samplesDir, file), 'utf8')) as TraceJob;
}

export async function apply(namespace: string, obj: object): Promise<void> {
  const result = await kubectl(['apply', '-f', '-'], { namespace, input: JSON.stringify(obj) });
  if (result.exitCode !== 0) throw new Error(`kubectl apply failed: ${result.stderr}`);
}

export async function getJson<T>(namespace: string, kind: string, name: string): Promise<T | undefined> {
  const result = await kubectl(['get', kind, name, '-o', 'json', '--ignore-not-found'], { namespace });
  if (result.exitCode !== 0) throw new Error(`kubectl get ${kind} ${name} failed: ${result.stderr}`);
  return result.stdout.trim() === '' ? undefined : (JSON.parse(result.stdout) as T);
}

export async function listJson<T>(namespace: string, kind: string, selector?: string): Promise<T[]> {
  const result = await kubectl(['get', kind, '-o', 'json', ...(selector === undefined ? [] : ['-l', selector])], {
    namespace,
  });
  if (result.exitCode !== 0) throw new Error(`kubectl get ${kind} failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { items: T[] }).items;
}

export const getTraceJob = (namespace: string, name: string): Promise<TraceJob | undefined> =>
  getJson<TraceJob>(namespace, 'tracejob', name);
export const getJob = (namespace: string, name: string): Promise<V1Job | undefined> =>
  getJson<V1Job>(namespace, 'job', name);
export const getConfigMap = (namespace: string, name: string): Promise<V1ConfigMap | undefined> =>
  getJson<V1ConfigMap>(namespace, 'configmap', name);

/** Waits until the TraceJob satisfies `done`, and returns it. */
export function waitForTraceJob(
  namespace: string,
  name: string,
  what: string,
  done: (tj: TraceJob) => boolean,
  timeoutMs = 60_000,
): Promise<TraceJob> {
  return eventually(
    `TraceJob ${namespace}/${name} ${what}`,
    async () => {
      const tj = await getTraceJob(namespace, name);
      return tj !== undefined && done(tj) ? tj : undefined;
    },
    timeoutMs,
  );
}

export const waitForPhase = (namespace: string, name: string, phase: string, timeoutMs?: number): Promise<TraceJob> =>
  waitForTraceJob(namespace, name, `reaches phase ${phase}`, (tj) => tj.status?.phase === phase, timeoutMs);

/** The running trace pod of a trace id. */
export function waitForTracePod(namespace: string, id: string): Promise<V1Pod> {
  return eventually(`the trace pod of ${id} runs`, async () => {
    const pods = await listJson<V1Pod>(namespace, 'pods', `iovisor.org/kubectl-trace-id=${id}`);
    return pods.find((p) => p.status?.phase === 'Running');
  });
}

/** Events recorded for one TraceJob, as "Type Reason: message". */
export async function eventsFor(namespace: string, name: string): Promise<string[]> {
  const result = await kubectl(
    ['get', 'events', '-o', 'json', '--field-selector', `involvedObject.kind=TraceJob,involvedObject.name=${name}`],
    { namespace },
  );
  if (result.exitCode !== 0) throw new Error(`kubectl get events failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { items: { type: string; reason: string; message: string }[] }).items.map(
    (e) => `${e.type} ${e.reason}: ${e.message}`,
  );
}

/**
 * The TraceJob's Events once one starts with `prefix`. The manager writes
 * Events in the background, so they can land after what they tell of; on
 * timeout this throws, listing the Events last seen.
 */
export async function eventsOnceRecorded(namespace: string, name: string, prefix: string): Promise<string[]> {
  let seen: string[] = [];
  try {
    return await eventually(`an Event "${prefix}" for ${name}`, async () => {
      seen = await eventsFor(namespace, name);
      return seen.some((e) => e.startsWith(prefix)) ? seen : undefined;
    });
  } catch (error: unknown) {
    throw new Error(`no Event "${prefix}" for ${namespace}/${name}; its Events:\n${seen.join('\n')}`, { cause: error });
  }
}

export function condition(tj: TraceJob, type: string): { status: string; reason: string; message: string } | undefined {
  return tj.status?.conditions?.find((c) => c.type === type);
}
