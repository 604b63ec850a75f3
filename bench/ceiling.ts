// The ceiling: a plain client that makes the writes the operator must make
// for each new TraceJob, and nothing else, so `npm run bench` can say how
// close the operator comes to what the API server allows.
//
// It learns of TraceJobs from one watch (the operator has to learn of them
// somehow too) and, `--concurrency` at a time, for each: PUT status with the
// id (docs/design.md: the id is persisted before anything is created), POST the
// ConfigMap, POST the Job (the operator's own mapping, so the objects and the
// Job controller's work downstream are the same), PUT status naming the Job.
// No caches of owned objects, no work queue, no validation, no Node lookups
// (nodes are read once), no Events.
//
// Usage (bench/run.ts starts it): node bench/ceiling.ts --kubeconfig=F --selector=LABELS --concurrency=8
// Prints "ready" once its watch runs; on SIGTERM prints one JSON line of counts and exits.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { V1Node } from '@kubernetes/client-node';
import { isAlreadyExists } from '../src/runtime/api-error.ts';
import { KubeClient, loadKubeConfig, resourcePath } from '../src/runtime/kube-client.ts';
import { RuntimeMetrics } from '../src/runtime/metrics.ts';
import { Watcher } from '../src/runtime/watcher.ts';
import { traceJobPath } from '../src/controller/tracejob-kube-api.ts';
import {
  API_GROUP,
  API_VERSION,
  buildTraceObjects,
  CONDITION_TYPES as C,
  defaultOperatorSettings,
  findNodeByHostname,
  PLURAL,
  REASONS,
  resolveNodeTarget,
  setCondition,
  type TraceJob,
} from '../src/tracejob/index.ts';
import { meanRequestSeconds, parseMetrics, requestCounts } from './lib/prom.ts';

const { values } = parseArgs({
  options: { kubeconfig: { type: 'string' }, selector: { type: 'string' }, concurrency: { type: 'string' } },
  strict: true,
});
const concurrency = Number(values.concurrency ?? '8');
const metrics = new RuntimeMetrics();
const client = new KubeClient({
  kubeConfig: loadKubeConfig(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
  metrics,
  maxSockets: Math.max(8, concurrency * 2),
  userAgent: 'trace-operator-bench-ceiling',
});
const settings = defaultOperatorSettings();
const nodes = (await client.list<V1Node>(resourcePath({ version: 'v1', plural: 'nodes' }))).items;

const pending: TraceJob[] = [];
let wake: (() => void) | undefined;
let processed = 0;
let failed = 0;
let firstError: string | undefined;
const stop = new AbortController();

async function createIfAbsent(path: string, body: object): Promise<void> {
  try {
    await client.create(path, body);
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
  }
}

async function handle(traceJob: TraceJob): Promise<void> {
  const namespace = traceJob.metadata.namespace ?? '';
  const path = traceJobPath(namespace, traceJob.metadata.name);
  const generation = traceJob.metadata.generation;
  const now = new Date();
  const accepted = setCondition(
    undefined,
    { type: C.Accepted, status: 'True', reason: REASONS.Valid, message: 'The spec is valid.' },
    now,
    generation,
  );
  const withId = await client.replaceStatus<TraceJob>(path, {
    ...traceJob,
    status: {
      id: randomUUID(),
      phase: 'Pending',
      conditions: accepted,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    },
  });
  const hostname = traceJob.spec.hostname ?? '';
  const resolution = resolveNodeTarget(hostname, findNodeByHostname(nodes, hostname));
  if (!resolution.ok) throw new Error(resolution.error.message);
  const objects = buildTraceObjects(withId, resolution.target, settings);
  await createIfAbsent(resourcePath({ version: 'v1', plural: 'configmaps', namespace }), objects.configMap);
  await createIfAbsent(resourcePath({ group: 'batch', version: 'v1', plural: 'jobs', namespace }), objects.job);
  const jobName = objects.job.metadata?.name ?? '';
  const conditions = setCondition(
    withId.status?.conditions,
    {
      type: C.JobCreated,
      status: 'True',
      reason: REASONS.Created,
      message: `Created ConfigMap and Job ${jobName} for node ${resolution.target.nodeName}`,
    },
    now,
    generation,
  );
  await client.replaceStatus<TraceJob>(path, {
    ...withId,
    status: { ...withId.status, jobName, node: resolution.target.nodeName, conditions },
  });
}

async function worker(): Promise<void> {
  while (!stop.signal.aborted) {
    const next = pending.shift();
    if (next === undefined) {
      await new Promise<void>((resolve) => {
        const previous = wake;
        wake = () => {
          previous?.();
          resolve();
        };
      });
      continue;
    }
    try {
      await handle(next);
      processed++;
    } catch (error) {
      failed++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  }
}

function enqueue(tj: TraceJob): void {
  if (tj.status?.id !== undefined && tj.status.id !== '') return;
  pending.push(tj);
  const w = wake;
  wake = undefined;
  w?.();
}

const watcher = new Watcher<TraceJob & { metadata: { name: string } }>({
  transport: client,
  path: `/apis/${API_GROUP}/${API_VERSION}/${PLURAL}`,
  ...(values.selector === undefined ? {} : { labelSelector: values.selector }),
  timeoutSeconds: [1800, 3600],
  onState: (state) => {
    if (state === 'watching') process.stdout.write('ready\n');
  },
});
const watching = watcher.run((event) => {
  if (event.type === 'sync') event.objects.forEach(enqueue);
  else if (event.type === 'added') enqueue(event.object);
}, stop.signal);
const workers = Array.from({ length: concurrency }, worker);

process.once('SIGTERM', () => {
  stop.abort();
  const w = wake;
  wake = undefined;
  w?.();
  void (async () => {
    await Promise.allSettled([watching, ...workers]);
    const samples = parseMetrics(await metrics.render());
    process.stdout.write(
      `${JSON.stringify({ processed, failed, firstError, requests: requestCounts(samples), latency: meanRequestSeconds(samples) })}\n`,
    );
    client.close();
  })();
});
