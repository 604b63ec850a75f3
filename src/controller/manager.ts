// The manager: wires the TraceJob controller (caches, work queue,
// reconciler), the TraceTrigger feature (its caches, reconciler and webhook),
// leader election and the probe and metrics servers, and runs them until its
// signal aborts (SIGTERM) or leadership is lost.
//
// Every replica watches (so a standby is warm and /readyz means "caches
// synced"); only the Lease holder runs reconciles, so only it writes.
import type { OperatorSettings } from '../tracejob/index.ts';
import { createCaches, type WatchedCaches } from './caches.ts';
import { KubeEventRecorder } from './events.ts';
import { reconcileTraceJob } from './reconcile.ts';
import { cachedPriority, PRIORITY } from './reconcile-priority.ts';
import type { TraceJobReconcilerDeps } from './reconcile-deps.ts';
import { Controller } from '../runtime/controller.ts';
import { EndpointServer, eventLoopCheck } from '../runtime/health.ts';
import { KubeClient, loadKubeConfig } from '../runtime/kube-client.ts';
import { LeaderElector, defaultIdentity } from '../runtime/leader.ts';
import type { Logger } from '../runtime/logger.ts';
import { RuntimeMetrics } from '../runtime/metrics.ts';
import { splitKey } from '../runtime/objects.ts';
import { WorkQueue } from '../runtime/queue.ts';
import { runResync } from '../runtime/resync.ts';
import { traceJobApi } from './tracejob-kube-api.ts';
import { registerTraceJobMetrics } from './tracejob-metrics.ts';
import { TraceTriggerFeature, type WebhookOptions } from './tracetrigger-manager.ts';

export const CONTROLLER_NAME = 'tracejob';
/** How long a stopping manager still writes queued Events: well inside the Deployment's 15 s grace. */
const EVENT_FLUSH_MS = 3_000;

export interface ManagerOptions {
  kubeconfig?: string | undefined;
  settings: OperatorSettings;
  allowedNamespaces?: ReadonlySet<string> | undefined;
  /** Namespaces to watch; undefined watches the whole cluster. */
  watchNamespaces?: readonly string[] | undefined;
  /** Stop traces at once through pods/exec (stop-delivery.ts); false leaves stops to the ConfigMap fallback. */
  stopExec?: boolean | undefined;
  concurrency: number;
  metricsAddress: string;
  probeAddress: string;
  leaderElection: { enabled: boolean; namespace: string; name: string };
  resyncPeriodMs: number;
  logger: Logger;
  /** Alert-triggered tracing: the webhook (disabled without an address) and the operator-wide rate cap. */
  triggers?:
    | { webhook: WebhookOptions; maxTriggeredPerMinute?: number | undefined; maxFleetNodes?: number | undefined }
    | undefined;
}

export type ManagerExit = 'stopped' | 'leadership-lost';

/** Runs the manager until `signal` aborts ('stopped') or the Lease is lost ('leadership-lost'). */
export async function runManager(options: ManagerOptions, signal: AbortSignal): Promise<ManagerExit> {
  const { logger } = options;
  const identity = defaultIdentity();
  const metrics = new RuntimeMetrics({ processMetrics: true });
  const client = new KubeClient({
    kubeConfig: loadKubeConfig(options.kubeconfig === undefined ? {} : { kubeconfig: options.kubeconfig }),
    metrics,
    maxSockets: Math.max(8, options.concurrency * 2),
    logger: logger.child({ component: 'client' }),
  });
  const traceJobs = traceJobController(options, client, metrics, identity);
  const triggers = new TraceTriggerFeature({
    client,
    metrics,
    logger: logger.child({ component: 'tracetrigger' }),
    identity,
    settings: options.settings,
    watchNamespaces: options.watchNamespaces,
    allowedNamespaces: options.allowedNamespaces,
    nodes: traceJobs.caches.nodes,
    webhook: options.triggers?.webhook ?? { insecure: false, maxBodyBytes: 1 << 20 },
    maxTriggeredPerMinute: options.triggers?.maxTriggeredPerMinute,
    maxFleetNodes: options.triggers?.maxFleetNodes,
    resyncPeriodMs: options.resyncPeriodMs,
    concurrency: options.concurrency,
  });

  const run = new AbortController();
  const stop = (): void => run.abort();
  signal.addEventListener('abort', stop, { once: true });
  const probes = new EndpointServer({
    address: options.probeAddress,
    healthz: { ping: () => undefined, 'event-loop': eventLoopCheck({ signal: run.signal }) },
    readyz: {
      'caches-synced': () => assertSynced(traceJobs.caches.hasSynced()),
      'trigger-caches-synced': () => assertSynced(triggers.caches.hasSynced()),
    },
    logger,
  });
  const metricsServer = new EndpointServer({ address: options.metricsAddress, metrics, logger });

  try {
    const [probeAt, metricsAt] = await Promise.all([probes.listen(run.signal), metricsServer.listen(run.signal)]);
    await triggers.listen(run.signal);
    logger.info('manager starting', {
      identity,
      probes: `${probeAt.host}:${probeAt.port}`,
      metrics: `${metricsAt.host}:${metricsAt.port}`,
      watching: options.watchNamespaces ?? 'all namespaces',
      allowedNamespaces: options.allowedNamespaces === undefined ? 'all' : [...options.allowedNamespaces],
    });
    const watching = Promise.all([traceJobs.caches.run(run.signal), triggers.run(run.signal)]);
    const lead = async (leaderSignal: AbortSignal): Promise<void> => {
      logger.info('leading: starting reconciles', { identity });
      // The TraceJob caches (the Node cache among them) are synced before triggers fire anything.
      await traceJobs.synced(leaderSignal);
      await Promise.all([traceJobs.lead(leaderSignal), triggers.lead(leaderSignal)]);
    };
    const exit = await leadWhileElected(options, client, metrics, identity, lead, run.signal);
    run.abort();
    await watching;
    return exit;
  } finally {
    signal.removeEventListener('abort', stop);
    run.abort();
    await Promise.all([
      probes.closed(),
      metricsServer.closed(),
      traceJobs.events.close(EVENT_FLUSH_MS),
      triggers.closeEvents(EVENT_FLUSH_MS),
    ]);
    client.close();
    logger.info('manager stopped');
  }
}

interface TraceJobController {
  caches: WatchedCaches;
  events: KubeEventRecorder;
  /** Resolves once every TraceJob cache has its first list. */
  synced(signal: AbortSignal): Promise<void>;
  /** Reconciles (and resyncs) TraceJobs until the signal aborts; every TraceJob is looked at once first. */
  lead(signal: AbortSignal): Promise<void>;
}

/** The TraceJob caches, work queue and reconciler, wired and not yet running. */
function traceJobController(
  options: ManagerOptions,
  client: KubeClient,
  metrics: RuntimeMetrics,
  identity: string,
): TraceJobController {
  const { logger } = options;
  const caches = createCaches({
    transport: client,
    logger: logger.child({ component: 'cache' }),
    namespaces: options.watchNamespaces,
  });
  const traceJobMetrics = registerTraceJobMetrics(metrics.registry, () => caches.traceJobs.list());
  const queue = new WorkQueue({
    metrics: metrics.queue(CONTROLLER_NAME),
    priorityOf: (key) => {
      const { namespace = '', name } = splitKey(key);
      return cachedPriority(caches.view, namespace, name);
    },
  });
  metrics.observeQueue(CONTROLLER_NAME, queue);
  caches.onChange((key) => queue.add(key));
  const events = new KubeEventRecorder({
    client,
    logger: logger.child({ component: 'events' }),
    instance: identity,
    waitTurn: () => queue.idle(PRIORITY.startOrStop),
  });
  const deps: TraceJobReconcilerDeps = {
    caches: caches.view,
    api: traceJobApi(client),
    events,
    settings: options.settings,
    allowedNamespaces: options.allowedNamespaces,
    now: () => new Date(),
    metrics: traceJobMetrics,
    logReadFailures: new Map<string, number>(),
    statusWrites: new Map(),
    stopExec: options.stopExec ?? true,
    stopExecAttempts: new Map(),
  };
  return {
    caches,
    events,
    synced: async (signal) => {
      await Promise.all(caches.gates().map((gate) => gate.ready(signal)));
    },
    lead: async (signal) => {
      for (const key of caches.traceJobs.keys()) queue.add(key);
      const controller = new Controller({
        name: CONTROLLER_NAME,
        queue,
        concurrency: options.concurrency,
        waitFor: caches.gates(),
        reconcile: (_key, ctx) => reconcileTraceJob(deps, ctx),
        metrics,
        logger: logger.child({ controller: CONTROLLER_NAME }),
      });
      await Promise.all([
        controller.run(signal),
        runResync(
          {
            everyMs: options.resyncPeriodMs,
            keys: () => [...caches.traceJobs.keys()],
            enqueue: (key) => queue.add(key),
            logger,
          },
          signal,
        ),
      ]);
    },
  };
}

/** Runs `lead` while this replica holds the Lease (or at once without leader election) until `signal` aborts. */
async function leadWhileElected(
  options: ManagerOptions,
  client: KubeClient,
  metrics: RuntimeMetrics,
  identity: string,
  lead: (leaderSignal: AbortSignal) => Promise<void>,
  signal: AbortSignal,
): Promise<ManagerExit> {
  const { logger } = options;
  if (!options.leaderElection.enabled) {
    await lead(signal);
    return 'stopped';
  }
  const elector = new LeaderElector({
    client,
    namespace: options.leaderElection.namespace,
    name: options.leaderElection.name,
    identity,
    releaseOnCancel: true,
    onStartedLeading: lead,
    onNewLeader: (holder) => logger.info('lease holder', { holder }),
    metrics,
    logger: logger.child({ component: 'leader-election' }),
  });
  if ((await elector.run(signal)) !== 'lost') return 'stopped';
  logger.error('leader election lost: stopping so that only the new leader writes', { identity });
  return 'leadership-lost';
}

function assertSynced(synced: boolean): void {
  if (!synced) throw new Error('watch caches have not finished their first list');
}
