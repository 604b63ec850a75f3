// Kubernetes Events about TraceJobs (core/v1, what `kubectl describe` and
// `kubectl get events` show). Recording never blocks or fails a reconcile:
// the write happens in the background and a failure is only logged. A repeat
// of the same event for the same object within a short window updates the
// count of the first one instead of creating another, as client-go does.
import { randomBytes } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { API_GROUP_VERSION, KIND, type TraceJob } from '../tracejob/index.ts';
import type { Logger } from '../runtime/logger.ts';
import { resourcePath, type KubeClient } from '../runtime/kube-client.ts';
import type { EventRecorder, EventType } from './reconcile-deps.ts';

const COMPONENT = 'trace-operator';
const REPEAT_WINDOW_MS = 10 * 60_000;
const MAX_REMEMBERED = 4096;

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

interface Recorded {
  name: string;
  namespace: string;
  count: number;
  at: number;
}

export class KubeEventRecorder implements EventRecorder {
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #now: () => Date;
  readonly #recent = new Map<string, Recorded>();

  constructor(options: { client: KubeClient; logger: Logger; instance: string; now?: () => Date }) {
    this.#client = options.client;
    this.#log = options.logger;
    this.#instance = options.instance;
    this.#now = options.now ?? (() => new Date());
  }

  event(traceJob: TraceJob, type: EventType, reason: string, message: string): void {
    this.eventAbout({ apiVersion: API_GROUP_VERSION, kind: KIND, metadata: traceJob.metadata }, type, reason, message);
  }

  /** An Event about any namespaced object (the TraceTrigger controller's, for one). */
  eventAbout(object: InvolvedObject, type: EventType, reason: string, message: string): void {
    this.#record(object, type, reason, message).catch((error: unknown) => {
      this.#log.warn('could not record event', {
        reason,
        [object.kind.toLowerCase()]: `${object.metadata.namespace ?? ''}/${object.metadata.name}`,
        error: error instanceof Error ? error.message : String(error),
      });
    });
  }

  async #record(traceJob: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = traceJob.metadata.namespace ?? 'default';
    const now = this.#now();
    const key = `${traceJob.metadata.uid ?? traceJob.metadata.name}\u0000${type}\u0000${reason}\u0000${message}`;
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
    const name = `${traceJob.metadata.name}.${randomBytes(8).toString('hex')}`;
    const event: CoreV1Event = {
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: traceJob.apiVersion,
        kind: traceJob.kind,
        name: traceJob.metadata.name,
        namespace,
        ...(traceJob.metadata.uid === undefined ? {} : { uid: traceJob.metadata.uid }),
        ...(traceJob.metadata.resourceVersion === undefined
          ? {}
          : { resourceVersion: traceJob.metadata.resourceVersion }),
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
    await this.#client.create(resourcePath({ version: 'v1', plural: 'events', namespace }), event);
    if (this.#recent.size >= MAX_REMEMBERED) this.#recent.delete(this.#recent.keys().next().value ?? '');
    this.#recent.set(key, { name, namespace, count: 1, at: now.getTime() });
  }
}
