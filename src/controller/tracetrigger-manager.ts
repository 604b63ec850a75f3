// Alert-triggered tracing inside the manager: the trigger caches, the
// TraceTrigger controller (leader only), the firing path and the webhook
// server. The manager calls run() next to its own watches (every replica
// watches and serves, so a standby is warm) and lead() when it leads; the
// webhook answers 503 until the caches are synced and this replica leads.
import type { OperatorSettings } from '../tracejob/index.ts';
import { NodeIndex, TRIGGER_PLURAL, type TraceTrigger } from '../tracetrigger/index.ts';
import { Controller, type ReadinessGate } from '../runtime/controller.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RuntimeMetrics } from '../runtime/metrics.ts';
import { splitKey } from '../runtime/objects.ts';
import { WorkQueue } from '../runtime/queue.ts';
import { runResync } from '../runtime/resync.ts';
import { alertmanagerReceiver } from '../webhook/alertmanager-receiver.ts';
import { Authorizer } from '../webhook/auth.ts';
import { WebhookServer } from '../webhook/server.ts';
import { KubeEventRecorder } from './events.ts';
import type { NodeCache } from './node-cache.ts';
import { createTriggerCaches, type TriggerCaches } from './tracetrigger-caches.ts';
import { FiringPath } from './tracetrigger-firing.ts';
import { triggerApi } from './tracetrigger-kube-api.ts';
import { registerTriggerMetrics } from './tracetrigger-metrics.ts';
import { reconcileTraceTrigger, triggerReadiness, type Readiness } from './tracetrigger-reconcile.ts';
import { addCounts, TriggerStatusWriter } from './tracetrigger-status.ts';

export const TRIGGER_CONTROLLER_NAME = 'tracetrigger';

export interface WebhookOptions {
  /** host:port; undefined or '' disables the webhook. */
  address?: string | undefined;
  /** Directory of tls.crt/tls.key; required unless insecure. */
  certDir?: string | undefined;
  insecure: boolean;
  maxBodyBytes: number;
}

export interface TriggerFeatureOptions {
  client: KubeClient;
  metrics: RuntimeMetrics;
  logger: Logger;
  identity: string;
  settings: OperatorSettings;
  watchNamespaces?: readonly string[] | undefined;
  allowedNamespaces?: ReadonlySet<string> | undefined;
  /** The manager's Node cache, shared with the TraceJob controller. */
  nodes: NodeCache;
  webhook: WebhookOptions;
  maxTriggeredPerMinute?: number | undefined;
  /** --max-fleet-nodes: at most this many nodes in one schedule or annotation run, whatever spec.maxNodes says. */
  maxFleetNodes?: number | undefined;
  resyncPeriodMs: number;
  concurrency: number;
}

export class TraceTriggerFeature {
  readonly caches: TriggerCaches;
  readonly firing: FiringPath;
  readonly #o: TriggerFeatureOptions;
  readonly #queue: WorkQueue;
  readonly #status: TriggerStatusWriter;
  readonly #events: KubeEventRecorder;
  readonly #readiness = new Map<string, { generation: number | undefined; result: Readiness }>();
  readonly #server: WebhookServer | undefined;
  #leading = false;

  constructor(options: TriggerFeatureOptions) {
    this.#o = options;
    const { client, logger } = options;
    this.caches = createTriggerCaches({
      transport: client,
      logger: logger.child({ component: 'trigger-cache' }),
      namespaces: options.watchNamespaces,
      nodes: options.nodes,
    });
    const api = triggerApi(client);
    this.#status = new TriggerStatusWriter({ api, logger: logger.child({ component: 'trigger-status' }) });
    this.#events = new KubeEventRecorder({
      client,
      logger: logger.child({ component: 'events' }),
      instance: options.identity,
    });
    const metrics = registerTriggerMetrics(options.metrics.registry);
    this.firing = new FiringPath({
      api,
      caches: this.caches,
      status: this.#status,
      events: this.#events,
      metrics,
      logger: logger.child({ component: 'firing' }),
      maxPerMinute: options.maxTriggeredPerMinute,
    });
    this.#queue = new WorkQueue({ metrics: options.metrics.queue(TRIGGER_CONTROLLER_NAME) });
    options.metrics.observeQueue(TRIGGER_CONTROLLER_NAME, this.#queue);
    this.caches.onChange((key) => this.#queue.add(key));
    const address = options.webhook.address;
    if (address !== undefined && address !== '') {
      const authorizer = new Authorizer({ backend: { reviewToken: (t) => api.reviewToken(t), mayFire: api.mayFire } });
      this.#server = new WebhookServer({
        address,
        certDir: options.webhook.insecure ? undefined : options.webhook.certDir,
        maxBodyBytes: options.webhook.maxBodyBytes,
        logger: logger.child({ component: 'webhook' }),
        handler: alertmanagerReceiver({
          authorizer,
          serving: () => {
            if (!this.caches.hasSynced())
              return { ok: false, why: 'the manager is starting: its caches are not synced yet' };
            if (!this.#leading)
              return { ok: false, why: 'this replica is not the leader; Alertmanager will retry (on the leader)' };
            return { ok: true };
          },
          trigger: (namespace, name) => this.caches.trigger(namespace, name),
          readiness: (trigger) => {
            const r = this.readiness(trigger);
            return r.ok ? r : { ok: false, message: `TraceTrigger is not Ready (${r.reason}): ${r.message}` };
          },
          nodes: () => new NodeIndex(this.caches.nodes().map((n) => n.facts)),
          fleet: () => ({
            nodes: this.caches.nodes().map((n) => ({ name: n.facts.name, labels: n.labels, ready: n.ready })),
            operatorMaxNodes: options.maxFleetNodes,
          }),
          fire: (trigger, firing, extras) => this.firing.fire(trigger, firing, extras),
          countRejected: (trigger) => this.#countNotification(trigger),
          result: (result) => metrics.notification(result),
          logger: logger.child({ component: 'webhook' }),
        }),
      });
    }
  }

  /** Whether a trigger can fire, memoised per generation. */
  readiness(trigger: TraceTrigger): Readiness {
    const key = trigger.metadata.uid ?? `${trigger.metadata.namespace ?? ''}/${trigger.metadata.name}`;
    const memo = this.#readiness.get(key);
    if (memo !== undefined && memo.generation === trigger.metadata.generation) return memo.result;
    const result = triggerReadiness(trigger, this.#o.settings, this.#o.allowedNamespaces);
    if (this.#readiness.size > 10_000) this.#readiness.clear();
    this.#readiness.set(key, { generation: trigger.metadata.generation, result });
    return result;
  }

  #countNotification(trigger: TraceTrigger): void {
    void this.#status
      .update(trigger.metadata.namespace ?? 'default', trigger.metadata.name, (status) => {
        addCounts(status, { notifications: 1 });
        return status;
      })
      .catch(() => undefined);
  }

  gates(): ReadinessGate[] {
    return this.caches.gates();
  }

  /** Starts the webhook server when configured (fails fast on a bad address or certificate). */
  async listen(signal: AbortSignal): Promise<{ host: string; port: number; tls: boolean } | undefined> {
    if (this.#server === undefined) return undefined;
    const at = await this.#server.listen(signal);
    this.#o.logger.info('webhook listening', { address: `${at.host}:${at.port}`, tls: at.tls });
    return at;
  }

  /** Runs the watches until `signal` aborts, then waits for the webhook server to close. */
  async run(signal: AbortSignal): Promise<void> {
    await this.caches.run(signal);
    await this.#server?.closed();
  }

  /** At shutdown: see KubeEventRecorder.close. */
  closeEvents(graceMs: number): Promise<void> {
    return this.#events.close(graceMs);
  }

  /** Runs the TraceTrigger controller while this replica leads. */
  async lead(leaderSignal: AbortSignal): Promise<void> {
    const { logger } = this.#o;
    await Promise.all(this.caches.gates().map((gate) => gate.ready(leaderSignal)));
    this.#leading = true;
    leaderSignal.addEventListener('abort', () => (this.#leading = false), { once: true });
    for (const key of this.caches.triggerKeys()) this.#queue.add(key);
    const context = {
      caches: this.caches,
      api: triggerApi(this.#o.client),
      status: this.#status,
      events: this.#events,
      settings: this.#o.settings,
      allowedNamespaces: this.#o.allowedNamespaces,
      now: () => new Date(),
      logger: logger.child({ controller: TRIGGER_CONTROLLER_NAME }),
      fleet: {
        caches: this.caches,
        api: triggerApi(this.#o.client),
        firing: this.firing,
        status: this.#status,
        events: this.#events,
        logger: logger.child({ controller: TRIGGER_CONTROLLER_NAME, source: 'fleet' }),
        now: () => new Date(),
        operatorMaxNodes: this.#o.maxFleetNodes,
      },
    };
    const controller = new Controller({
      name: TRIGGER_CONTROLLER_NAME,
      queue: this.#queue,
      concurrency: Math.min(4, this.#o.concurrency),
      waitFor: this.caches.gates(),
      reconcile: (key) => {
        const { namespace, name } = splitKey(key);
        return reconcileTraceTrigger(namespace ?? '', name, context);
      },
      metrics: this.#o.metrics,
      logger: logger.child({ controller: TRIGGER_CONTROLLER_NAME, resource: TRIGGER_PLURAL }),
    });
    await Promise.all([
      controller.run(leaderSignal),
      runResync(
        {
          everyMs: this.#o.resyncPeriodMs,
          keys: () => this.caches.triggerKeys(),
          enqueue: (key) => this.#queue.add(key),
          logger,
        },
        leaderSignal,
      ),
    ]);
  }
}
