// Prometheus metrics under controller-runtime's and client-go's names, so the
// dashboards and alerts people already have for Go operators work unchanged.
// One `RuntimeMetrics` owns one prom-client Registry (never the global one);
// TraceJob-specific metrics are registered on `metrics.registry` by their
// owner.
//
// API
//   class RuntimeMetrics
//     new RuntimeMetrics({ registry?, processMetrics = false })
//     readonly registry: Registry
//     controller(name, { maxConcurrentReconciles }): ControllerMetrics   zero-fills the controller's series
//     queue(name): QueueMetricsSink                       workqueue_* hooks for a WorkQueue
//     observeQueue(name, source): void                    unfinished-work / longest-running, read at scrape time
//     leader(name, leading: boolean): void                leader_election_master_status{name}
//     restRequest({ method, code, host, seconds? }): void rest_client_requests_total (+ duration)
//     render(): Promise<string>; contentType: string
//   interface ControllerMetrics { reconciled(result, seconds), error(), terminalError(), panic(), activeWorkers(delta) }
//   type ReconcileResult = 'success' | 'error' | 'requeue' | 'requeue_after'
//
// Series (labels)
//   controller_runtime_reconcile_total{controller,result}
//   controller_runtime_reconcile_errors_total{controller}
//   controller_runtime_terminal_reconcile_errors_total{controller}
//   controller_runtime_reconcile_panics_total{controller}
//   controller_runtime_reconcile_time_seconds{controller}          histogram
//   controller_runtime_max_concurrent_reconciles{controller}
//   controller_runtime_active_workers{controller}
//   workqueue_depth / workqueue_adds_total / workqueue_retries_total{name,controller}
//   workqueue_queue_duration_seconds / workqueue_work_duration_seconds{name,controller}   histograms
//   workqueue_unfinished_work_seconds / workqueue_longest_running_processor_seconds{name,controller}
//   leader_election_master_status{name}
//   rest_client_requests_total{code,method,host}   code "<error>" when no response came
//   rest_client_request_duration_seconds{verb,host}   histogram
// Buckets are controller-runtime's (reconcile time) and client-go's (workqueue, rest client).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from 'prom-client';
import type { QueueMetricsSink } from './queue.ts';

export type ReconcileResult = 'success' | 'error' | 'requeue' | 'requeue_after';
export const RECONCILE_RESULTS: readonly ReconcileResult[] = ['success', 'error', 'requeue', 'requeue_after'];

/** Per-controller hooks the controller runner calls. */
export interface ControllerMetrics {
  /** One reconcile ended with `result` after `seconds`. */
  reconciled(result: ReconcileResult, seconds: number): void;
  error(): void;
  terminalError(): void;
  panic(): void;
  activeWorkers(delta: number): void;
}

/** What `observeQueue` reads at scrape time (a WorkQueue satisfies it). */
export interface QueueGaugeSource {
  unfinishedWorkSeconds(): number;
  longestRunningProcessorSeconds(): number;
}

export interface RuntimeMetricsOptions {
  registry?: Registry;
  /** Also publish Node's process_* / nodejs_* metrics (default false). */
  processMetrics?: boolean;
}

const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75,
  2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
const WORKQUEUE_BUCKETS = exponentialBuckets(10e-9, 10, 12);
const REST_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];

/** The runtime's metric families on one registry. */
export class RuntimeMetrics {
  readonly registry: Registry;
  readonly #reconcileTotal: Counter<'controller' | 'result'>;
  readonly #reconcileErrors: Counter<'controller'>;
  readonly #terminalErrors: Counter<'controller'>;
  readonly #panics: Counter<'controller'>;
  readonly #reconcileTime: Histogram<'controller'>;
  readonly #maxConcurrent: Gauge<'controller'>;
  readonly #activeWorkers: Gauge<'controller'>;
  readonly #depth: Gauge<'name' | 'controller'>;
  readonly #adds: Counter<'name' | 'controller'>;
  readonly #retries: Counter<'name' | 'controller'>;
  readonly #queueDuration: Histogram<'name' | 'controller'>;
  readonly #workDuration: Histogram<'name' | 'controller'>;
  readonly #leader: Gauge<'name'>;
  readonly #restRequests: Counter<'code' | 'method' | 'host'>;
  readonly #restDuration: Histogram<'verb' | 'host'>;
  readonly #queueSources = new Map<string, QueueGaugeSource>();

  constructor(options: RuntimeMetricsOptions = {}) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    const registers = [registry];
    this.#reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.#reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#terminalErrors = new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#panics = new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Total number of reconciliation panics per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.#maxConcurrent = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    });
    this.#depth = new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name', 'controller'],
      registers,
    });
    this.#adds = new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name', 'controller'],
      registers,
    });
    this.#retries = new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name', 'controller'],
      registers,
    });
    this.#queueDuration = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name', 'controller'],
      buckets: WORKQUEUE_BUCKETS,
      registers,
    });
    this.#workDuration = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name', 'controller'],
      buckets: WORKQUEUE_BUCKETS,
      registers,
    });
    const sources = this.#queueSources;
    new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
      labelNames: ['name', 'controller'],
      registers,
      collect() {
        for (const [name, source] of sources) this.set({ name, controller: name }, source.unfinishedWorkSeconds());
      },
    });
    new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running.',
      labelNames: ['name', 'controller'],
      registers,
      collect() {
        for (const [name, source] of sources)
          this.set({ name, controller: name }, source.longestRunningProcessorSeconds());
      },
    });
    this.#leader = new Gauge({
      name: 'leader_election_master_status',
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
      labelNames: ['name'],
      registers,
    });
    this.#restRequests = new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code, method, and host.',
      labelNames: ['code', 'method', 'host'],
      registers,
    });
    this.#restDuration = new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds. Broken down by verb, and host.',
      labelNames: ['verb', 'host'],
      buckets: REST_BUCKETS,
      registers,
    });
    if (options.processMetrics === true) collectDefaultMetrics({ register: registry });
  }

  /** Zero-fills and returns the hooks for controller `name`. */
  controller(name: string, options: { maxConcurrentReconciles: number }): ControllerMetrics {
    const labels = { controller: name };
    for (const result of RECONCILE_RESULTS) this.#reconcileTotal.inc({ controller: name, result }, 0);
    this.#reconcileErrors.inc(labels, 0);
    this.#terminalErrors.inc(labels, 0);
    this.#panics.inc(labels, 0);
    this.#reconcileTime.zero(labels);
    this.#maxConcurrent.set(labels, options.maxConcurrentReconciles);
    this.#activeWorkers.set(labels, 0);
    return {
      reconciled: (result, seconds) => {
        this.#reconcileTotal.inc({ controller: name, result });
        this.#reconcileTime.observe(labels, seconds);
      },
      error: () => this.#reconcileErrors.inc(labels),
      terminalError: () => this.#terminalErrors.inc(labels),
      panic: () => this.#panics.inc(labels),
      activeWorkers: (delta) => this.#activeWorkers.inc(labels, delta),
    };
  }

  /** Zero-fills and returns the workqueue hooks for queue `name` (label controller = name, as controller-runtime does). */
  queue(name: string): QueueMetricsSink {
    const labels = { name, controller: name };
    this.#depth.set(labels, 0);
    this.#adds.inc(labels, 0);
    this.#retries.inc(labels, 0);
    this.#queueDuration.zero(labels);
    this.#workDuration.zero(labels);
    return {
      depth: (n) => this.#depth.set(labels, n),
      added: () => this.#adds.inc(labels),
      queueLatency: (seconds) => this.#queueDuration.observe(labels, seconds),
      workDuration: (seconds) => this.#workDuration.observe(labels, seconds),
      retried: () => this.#retries.inc(labels),
    };
  }

  /** Publishes the queue's in-progress gauges, read at scrape time. */
  observeQueue(name: string, source: QueueGaugeSource): void {
    this.#queueSources.set(name, source);
  }

  /** Sets leader_election_master_status{name} to 1 or 0. */
  leader(name: string, leading: boolean): void {
    this.#leader.set({ name }, leading ? 1 : 0);
  }

  /** Counts one API request; `code` is the HTTP status, or '<error>' when none came back. */
  restRequest(request: { method: string; code: number | string; host: string; seconds?: number }): void {
    this.#restRequests.inc({ code: String(request.code), method: request.method.toUpperCase(), host: request.host });
    if (request.seconds !== undefined)
      this.#restDuration.observe({ verb: request.method.toUpperCase(), host: request.host }, request.seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
