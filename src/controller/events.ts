// Kubernetes Events about TraceJobs and TraceTriggers (core/v1, what `kubectl describe` and
// `kubectl get events` show). Recording never blocks, delays or fails a
// reconcile: `event()` puts the Event on a bounded queue that a few senders
// drain in the background (so Events never take more than SENDERS of the
// client's connections from reconciles); when the queue is full the Event is
// dropped and counted in the log, as client-go's broadcaster drops on a full
// channel. With `waitTurn`, the senders also wait for it before each write:
// the TraceJob manager passes "no trace waiting to start", so under a burst
// the API server's writes go to starting traces first and the Events follow
// (stamped with when they happened, not when they were sent). A failure is
// only logged. A repeat of the same event for the same object within a short
// window updates the count of the first one instead of creating another, as
// client-go does. At shutdown, close() gives the queue a few seconds and drops
// the rest: a manager stopped after a burst once spent two minutes writing
// its backlog of Events before it exited.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Event } from '@kubernetes/client-node';
import { API_GROUP_VERSION, KIND, type TraceJob } from '../tracejob/index.ts';
import type { Logger } from '../runtime/logger.ts';
import { resourcePath, type KubeClient } from '../runtime/kube-client.ts';

/** The two calls the recorder makes (a KubeClient has them). */
export type EventClient = Pick<KubeClient, 'create' | 'patch'>;
import type { EventRecorder, EventType } from './reconcile-deps.ts';
import { errorMessage } from '../error-message.ts';
import { isAlreadyExists } from '../runtime/api-error.ts';

const COMPONENT = 'trace-operator';
const REPEAT_WINDOW_MS = 10 * 60_000;
const MAX_REMEMBERED = 4096;
/**
 * Events waiting to be written; more are dropped (the conditions hold the same
 * facts). One per TraceJob of a 10 000-TraceJob burst fits (a few hundred bytes each, estimated).
 */
export const MAX_QUEUED_EVENTS = 10_000;
const SENDERS = 2;

/** What an Event names as its involved object. */
export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string | undefined;
    uid?: string | undefined;
    resourceVersion?: string | undefined;
  };
}

interface Pending {
  object: InvolvedObject;
  type: EventType;
  reason: string;
  message: string;
  at: Date;
}

interface Recorded {
  name: string;
  namespace: string;
  count: number;
  at: number;
}

export class KubeEventRecorder implements EventRecorder {
  readonly #client: EventClient;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #now: () => Date;
  readonly #waitTurn: () => Promise<void>;
  readonly #recent = new Map<string, Recorded>();
  readonly #queue: Pending[] = [];
  #sending = 0;
  #writing = 0;
  #dropped = 0;
  #closed = false;
  readonly #closing = Promise.withResolvers<void>();
  readonly #sendersDone: (() => void)[] = [];

  constructor(options: {
    client: EventClient;
    logger: Logger;
    instance: string;
    now?: () => Date;
    /** Awaited before each write (see the file header). */
    waitTurn?: () => Promise<void>;
  }) {
    this.#client = options.client;
    this.#log = options.logger;
    this.#instance = options.instance;
    this.#now = options.now ?? (() => new Date());
    this.#waitTurn = options.waitTurn ?? (() => Promise.resolve());
  }

  event(traceJob: TraceJob, type: EventType, reason: string, message: string): void {
    this.eventAbout({ apiVersion: API_GROUP_VERSION, kind: KIND, metadata: traceJob.metadata }, type, reason, message);
  }

  /** An Event about any namespaced object (the TraceTrigger controller's, for one). */
  eventAbout(object: InvolvedObject, type: EventType, reason: string, message: string): void {
    if (this.#closed) return;
    if (this.#queue.length >= MAX_QUEUED_EVENTS) {
      if (this.#dropped++ % 100 === 0)
        this.#log.warn('event queue full: dropping events (the conditions still say it)', {
          dropped: this.#dropped,
          queued: this.#queue.length,
        });
      return;
    }
    // Only what the Event needs, not the whole object (a TraceJob may hold a long program).
    const { name, namespace, uid, resourceVersion } = object.metadata;
    this.#queue.push({
      object: { apiVersion: object.apiVersion, kind: object.kind, metadata: { name, namespace, uid, resourceVersion } },
      type,
      reason,
      message,
      at: this.#now(),
    });
    if (this.#sending < SENDERS) void this.#drain();
  }

  /** Events not yet written. */
  pending(): number {
    return this.#queue.length + this.#writing;
  }

  /**
   * Takes no more Events and waits up to `graceMs` for the queued ones to be
   * written (without waiting for a turn); what is left is dropped, and logged.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    this.#closing.resolve();
    if (this.#sending > 0) {
      const grace = new AbortController();
      await Promise.race([
        new Promise<void>((resolve) => this.#sendersDone.push(resolve)),
        sleep(graceMs, undefined, { signal: grace.signal }).catch(() => {}),
      ]);
      grace.abort();
    }
    const queued = this.#queue.length;
    this.#queue.length = 0;
    if (queued + this.#writing > 0)
      this.#log.warn('shutting down with Events unwritten (the conditions still say it)', {
        dropped: queued,
        inFlight: this.#writing,
      });
  }

  async #drain(): Promise<void> {
    this.#sending++;
    try {
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        const { object, reason } = next;
        this.#writing++;
        if (!this.#closed) await Promise.race([this.#waitTurn(), this.#closing.promise]);
        await this.#record(next).catch((error: unknown) => {
          this.#log.warn('could not record event', {
            reason,
            [object.kind.toLowerCase()]: `${object.metadata.namespace ?? ''}/${object.metadata.name}`,
            error: errorMessage(error),
          });
        });
        this.#writing--;
      }
    } finally {
      this.#sending--;
      if (this.#sending === 0) for (const done of this.#sendersDone.splice(0)) done();
    }
  }

  async #record({ object, type, reason, message, at: now }: Pending): Promise<void> {
    const namespace = object.metadata.namespace ?? 'default';
    const key = `${object.metadata.uid ?? object.metadata.name}\u0000${type}\u0000${reason}\u0000${message}`;
    const seen = this.#recent.get(key);
    if (seen !== undefined && now.getTime() - seen.at < REPEAT_WINDOW_MS) {
      seen.count += 1;
      seen.at = now.getTime();
      await this.#client.patch(
        resourcePath({ version: 'v1', plural: 'events', namespace: seen.namespace, name: seen.name }),
        { count: seen.count, lastTimestamp: now.toISOString() },
        'merge',
      );
      return;
    }
    const name = `${object.metadata.name}.${randomBytes(8).toString('hex')}`;
    const event: CoreV1Event = {
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata.name,
        namespace,
        ...(object.metadata.uid === undefined ? {} : { uid: object.metadata.uid }),
        ...(object.metadata.resourceVersion === undefined ? {} : { resourceVersion: object.metadata.resourceVersion }),
      },
      reason,
      message: message.slice(0, 1024),
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: this.#instance,
    };
    // The name is random, so AlreadyExists means this very Event was written: the
    // transport retries a POST whose reused connection reset after sending it.
    await this.#client
      .create(resourcePath({ version: 'v1', plural: 'events', namespace }), event)
      .catch((error: unknown) => {
        if (!isAlreadyExists(error)) throw error;
      });
    if (this.#recent.size >= MAX_REMEMBERED) this.#recent.delete(this.#recent.keys().next().value ?? '');
    this.#recent.set(key, { name, namespace, count: 1, at: now.getTime() });
  }
}
