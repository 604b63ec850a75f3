// Timestamps of what happens to each TraceJob of a burst, from watches the
// harness runs itself (the API server's creationTimestamps have one-second
// precision; a watch event's arrival is timed to the microsecond here, and
// every measurement pays the same watch delivery delay). Also counts the
// writes the watches see, by resource: TraceJob updates, owned ConfigMaps and
// Jobs, Events about TraceJobs, and renewals of the leader Lease.
import { setTimeout as sleep } from 'node:timers/promises';
import { OWNED_SELECTOR } from '../../src/controller/caches.ts';
import type { KubeClient } from '../../src/runtime/kube-client.ts';
import type { KubeObject } from '../../src/runtime/objects.ts';
import { Watcher, type WatcherEvent, type WatcherState } from '../../src/runtime/watcher.ts';
import { API_GROUP, API_VERSION, PLURAL } from '../../src/tracejob/index.ts';

export interface TraceTimes {
  /** performance.now() when the harness sent the create, and when the API server answered it. */
  sentAt?: number;
  ackAt?: number;
  /** First watch event of the TraceJob. */
  addedAt?: number;
  /** First event with status.id set. */
  idAt?: number;
  /** First event with status.jobName set: the create path's last write. */
  jobNameAt?: number;
  /** First event with status.phase Running (the pod runs on its kwok node). */
  runningAt?: number;
  jobAt?: number;
  configMapAt?: number;
  /** Updates (MODIFIED events) of the TraceJob seen so far. */
  updates: number;
  /** Updates seen up to and including the one that named the Job (the create path's status writes). */
  updatesToReconciled?: number;
}

export interface WatchCounts {
  traceJobUpdates: number;
  configMaps: number;
  jobs: number;
  eventsCreated: number;
  eventsUpdated: number;
  leaseWrites: number;
  relists: number;
}

interface TrimmedTraceJob extends KubeObject {
  status?: { id?: string; jobName?: string; phase?: string };
}

const trimTraceJob = (obj: KubeObject): TrimmedTraceJob => {
  const status = (obj as TrimmedTraceJob).status;
  return {
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
    status: { id: status?.id, jobName: status?.jobName, phase: status?.phase },
  };
};
const trimOwned = (obj: KubeObject): KubeObject => ({
  metadata: {
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    ownerReferences: obj.metadata.ownerReferences,
  },
});

export interface TrackerOptions {
  client: KubeClient;
  /** Label selector matching exactly this phase's TraceJobs. */
  traceJobSelector: string;
  namespaces: readonly string[];
  /** Namespace and name of the manager's leader Lease, to count its renewals apart. */
  lease?: { namespace: string; name: string };
}

export class Tracker {
  readonly traces = new Map<string, TraceTimes>();
  readonly counts: WatchCounts = {
    traceJobUpdates: 0,
    configMaps: 0,
    jobs: 0,
    eventsCreated: 0,
    eventsUpdated: 0,
    leaseWrites: 0,
    relists: 0,
  };
  /** performance.now() of the last TraceJob change seen. */
  lastTraceJobChangeAt = 0;
  /** When the last Event about a TraceJob was written (the operator writes its Events after the burst's creates). */
  lastEventAt = 0;
  /** When each Event about a TraceJob was created, and each status write after the one naming the Job (follow-ups). */
  readonly eventTimes: number[] = [];
  readonly followUpWriteTimes: number[] = [];
  readonly #options: TrackerOptions;
  readonly #namespaces: Set<string>;
  readonly #abort = new AbortController();
  #runs: Promise<void>[] = [];

  constructor(options: TrackerOptions) {
    this.#options = options;
    this.#namespaces = new Set(options.namespaces);
  }

  #entry(key: string): TraceTimes {
    let t = this.traces.get(key);
    if (t === undefined) {
      t = { updates: 0 };
      this.traces.set(key, t);
    }
    return t;
  }

  sent(key: string, at: number): void {
    this.#entry(key).sentAt = at;
  }

  ack(key: string, at: number): void {
    this.#entry(key).ackAt = at;
  }

  /** Starts the watches; resolves once every one of them is watching. */
  async start(): Promise<void> {
    const { client } = this.#options;
    const ready: Promise<void>[] = [];
    const watch = <T extends KubeObject>(
      path: string,
      selector: { labelSelector?: string; fieldSelector?: string },
      transform: (o: KubeObject) => T,
      consume: (e: WatcherEvent<T>, at: number) => void,
    ): void => {
      let firstSync = true;
      let markReady: () => void = () => undefined;
      ready.push(new Promise<void>((resolve) => (markReady = resolve)));
      const watcher = new Watcher<T>({
        transport: client,
        path,
        ...selector,
        transform,
        timeoutSeconds: [1800, 3600],
        onState: (state: WatcherState) => {
          if (state === 'watching') markReady();
        },
      });
      this.#runs.push(
        watcher.run((event) => {
          const at = performance.now();
          if (event.type === 'sync') {
            if (!firstSync) this.counts.relists++;
            firstSync = false;
          }
          consume(event, at);
        }, this.#abort.signal),
      );
    };

    watch<TrimmedTraceJob>(
      `/apis/${API_GROUP}/${API_VERSION}/${PLURAL}`,
      { labelSelector: this.#options.traceJobSelector },
      trimTraceJob,
      (event, at) => {
        const objects = event.type === 'sync' ? event.objects : event.type === 'deleted' ? [] : [event.object];
        for (const obj of objects) {
          const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
          const t = this.#entry(key);
          t.addedAt ??= at;
          if (event.type === 'modified') {
            t.updates++;
            this.counts.traceJobUpdates++;
            if (t.jobNameAt !== undefined) this.followUpWriteTimes.push(at);
          }
          if (obj.status?.id !== undefined && obj.status.id !== '') t.idAt ??= at;
          if (obj.status?.jobName !== undefined && obj.status.jobName !== '' && t.jobNameAt === undefined) {
            t.jobNameAt = at;
            t.updatesToReconciled = t.updates;
          }
          if (obj.status?.phase === 'Running') t.runningAt ??= at;
          this.lastTraceJobChangeAt = at;
        }
      },
    );

    const owned =
      (kind: 'jobs' | 'configMaps') =>
      (event: WatcherEvent<KubeObject>, at: number): void => {
        const objects = event.type === 'sync' ? event.objects : event.type === 'added' ? [event.object] : [];
        for (const obj of objects) {
          const namespace = obj.metadata.namespace ?? '';
          if (!this.#namespaces.has(namespace)) continue;
          const owner = obj.metadata.ownerReferences?.find((o) => o.kind === 'TraceJob');
          if (owner === undefined) continue;
          const t = this.#entry(`${namespace}/${owner.name}`);
          if (kind === 'jobs') {
            if (t.jobAt === undefined && event.type === 'added') this.counts.jobs++;
            t.jobAt ??= at;
          } else {
            if (t.configMapAt === undefined && event.type === 'added') this.counts.configMaps++;
            t.configMapAt ??= at;
          }
        }
      };
    watch('/apis/batch/v1/jobs', { labelSelector: OWNED_SELECTOR }, trimOwned, owned('jobs'));
    watch('/api/v1/configmaps', { labelSelector: OWNED_SELECTOR }, trimOwned, owned('configMaps'));
    watch(
      '/api/v1/events',
      { fieldSelector: 'involvedObject.kind=TraceJob' },
      (o) => ({ metadata: { namespace: o.metadata.namespace } }),
      (event, at) => {
        if (event.type === 'sync' || !this.#namespaces.has(event.object.metadata.namespace ?? '')) return;
        if (event.type === 'added') {
          this.counts.eventsCreated++;
          this.eventTimes.push(at);
        } else if (event.type === 'modified') this.counts.eventsUpdated++;
        this.lastEventAt = at;
      },
    );
    const lease = this.#options.lease;
    if (lease !== undefined) {
      watch(
        `/apis/coordination.k8s.io/v1/namespaces/${lease.namespace}/leases`,
        { fieldSelector: `metadata.name=${lease.name}` },
        (o) => ({ metadata: { name: o.metadata.name } }),
        (event) => {
          if (event.type === 'added' || event.type === 'modified') this.counts.leaseWrites++;
        },
      );
    }
    await Promise.all(ready);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#runs);
    this.#runs = [];
  }

  /** When the TraceJob existed for the API server: its create's answer or its first watch event, whichever came first. */
  static createdAt(t: TraceTimes): number | undefined {
    if (t.ackAt === undefined) return t.addedAt;
    return t.addedAt === undefined ? t.ackAt : Math.min(t.ackAt, t.addedAt);
  }

  /** When the TraceJob was fully reconciled: its Job exists and its status names the Job. */
  static doneAt(t: TraceTimes): number | undefined {
    return t.jobAt === undefined || t.jobNameAt === undefined ? undefined : Math.max(t.jobAt, t.jobNameAt);
  }

  countDone(): number {
    let n = 0;
    for (const t of this.traces.values()) if (Tracker.doneAt(t) !== undefined) n++;
    return n;
  }

  countRunning(): number {
    let n = 0;
    for (const t of this.traces.values()) if (t.runningAt !== undefined) n++;
    return n;
  }

  /** Polls `done` until it is true or `timeoutMs` passes; calls `progress` every `everyMs`. */
  static async waitUntil(
    done: () => boolean,
    timeoutMs: number,
    progress?: () => void,
    everyMs = 10_000,
  ): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    let nextProgress = performance.now() + everyMs;
    while (!done()) {
      if (performance.now() > deadline) return false;
      if (progress !== undefined && performance.now() >= nextProgress) {
        progress();
        nextProgress += everyMs;
      }
      await sleep(50);
    }
    return true;
  }
}
