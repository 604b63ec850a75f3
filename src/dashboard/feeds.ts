// What the page sees of the cluster, as streams of small messages: lists of
// TraceJobs and TraceTriggers, one object with its Events, and a trace pod's
// log followed. Each is the runtime's Watcher (list + watch, 410 -> relist)
// or a followed log, run with the user's own client for as long as the page
// listens. Failures the API server reports (403 for RBAC, 404 for a missing
// CRD) become `problem` messages carrying the server's own words.
import type { KubeClient } from '../runtime/kube-client.ts';
import { resourcePath } from '../runtime/kube-client.ts';
import type { KubeObject } from '../runtime/objects.ts';
import { nopLogger, type LogFields, type Logger } from '../runtime/logger.ts';
import { Watcher, type WatcherEvent } from '../runtime/watcher.ts';
import { API_GROUP, API_VERSION, PLURAL } from '../tracejob/constants.ts';

export const TRIGGER_PLURAL = 'tracetriggers';

export type Send = (event: string, data: unknown) => void;

export type Kind = 'tracejobs' | 'tracetriggers';

export function collectionPath(kind: Kind, namespace: string | undefined): string {
  return resourcePath({
    group: API_GROUP,
    version: API_VERSION,
    plural: kind === 'tracejobs' ? PLURAL : TRIGGER_PLURAL,
    ...(namespace === undefined ? {} : { namespace }),
  });
}

interface ErrorLike {
  status?: number;
  reason?: string;
  message?: string;
}

/** A Logger that turns the Watcher's failure lines into `problem` messages (once per distinct message). */
function problemLogger(send: Send, what: string): Logger {
  let last = '';
  const report = (msg: string, fields?: LogFields): void => {
    const err = (fields?.['err'] ?? fields?.['error']) as ErrorLike | undefined;
    if (err === undefined) return;
    const message = err.message ?? msg;
    if (message === last) return;
    last = message;
    send('problem', { what, status: err.status, reason: err.reason, message });
  };
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: report,
    error: report,
    child: () => logger,
    enabled: () => true,
  };
  return logger;
}

function watcher<T extends KubeObject>(
  client: KubeClient,
  path: string,
  send: Send,
  what: string,
  extra: { fieldSelector?: string; labelSelector?: string; transform?: (o: KubeObject) => T } = {},
): Watcher<T> {
  return new Watcher<T>({
    transport: client,
    path,
    ...extra,
    timeoutSeconds: [240, 300],
    logger: problemLogger(send, what),
  });
}

/** Drops what the list never shows (managedFields, big results), so list messages stay small. */
export function listSummary(o: KubeObject): KubeObject {
  const obj = o as KubeObject & {
    spec?: Record<string, unknown>;
    status?: Record<string, unknown> & { result?: { outcome?: string }; runs?: unknown[] };
  };
  const {
    managedFields: _m,
    annotations: _a,
    ...metadata
  } = obj.metadata as KubeObject['metadata'] & {
    managedFields?: unknown;
  };
  const spec = obj.spec ?? {};
  const status = obj.status ?? {};
  const runs = Array.isArray(status.runs) ? status.runs : undefined;
  const lastRun = runs?.[runs.length - 1] as { id?: string; time?: string; traceJobs?: unknown[] } | undefined;
  return {
    ...(obj.kind === undefined ? {} : { kind: obj.kind }),
    metadata,
    spec: {
      hostname: spec['hostname'],
      targetPod: spec['targetPod'],
      stop: spec['stop'],
      schedule: spec['schedule'],
      alert: spec['alert'] === undefined ? undefined : true,
      suspend: spec['suspend'],
    },
    status: {
      phase: status['phase'],
      node: status['node'],
      id: status['id'],
      outcome: status.result?.outcome,
      conditions: status['conditions'],
      runCount: runs?.length,
      lastRun:
        lastRun === undefined
          ? undefined
          : { id: lastRun.id, time: lastRun.time, traceJobs: lastRun.traceJobs?.length ?? 0 },
    },
  } as KubeObject;
}

function forward<T>(send: Send, event: string): (e: WatcherEvent<T>) => void {
  return (e) => {
    if (e.type === 'sync') send(event, { type: 'sync', objects: e.objects });
    else send(event, { type: e.type, object: e.object });
  };
}

/** TraceJobs and TraceTriggers of one namespace (or all), as `tracejobs` and `tracetriggers` messages. */
export function listFeed(client: KubeClient, namespace: string | undefined, send: Send, signal: AbortSignal): void {
  for (const kind of ['tracejobs', 'tracetriggers'] as const) {
    const w = watcher(client, collectionPath(kind, namespace), send, kind, { transform: listSummary });
    void w.run(forward(send, kind), signal);
  }
}

/** One object (`object` messages with the whole object) and its Events (`events` messages). */
export function objectFeed(
  client: KubeClient,
  kind: Kind,
  namespace: string,
  name: string,
  send: Send,
  signal: AbortSignal,
): void {
  const fieldSelector = `metadata.name=${name}`;
  const strip = (o: KubeObject): KubeObject => {
    const { managedFields: _m, ...metadata } = o.metadata as KubeObject['metadata'] & { managedFields?: unknown };
    return { ...o, metadata };
  };
  void watcher(client, collectionPath(kind, namespace), send, kind, { fieldSelector, transform: strip }).run(
    forward(send, 'object'),
    signal,
  );
  const involved = kind === 'tracejobs' ? 'TraceJob' : 'TraceTrigger';
  void watcher(client, resourcePath({ version: 'v1', plural: 'events', namespace }), send, 'events', {
    fieldSelector: `involvedObject.kind=${involved},involvedObject.name=${name}`,
  }).run(forward(send, 'events'), signal);
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * The trace pod's log, followed: `log` messages with text as it comes, then
 * `log-end` when the container has ended. Waits for the pod and its container
 * to start; a refusal (RBAC) is sent once as a `problem`.
 */
export async function followTraceLog(
  client: KubeClient,
  namespace: string,
  traceId: string,
  send: Send,
  signal: AbortSignal,
  logger: Logger = nopLogger,
): Promise<void> {
  let reported = '';
  const problem = (error: unknown): void => {
    const e = error as ErrorLike;
    const message = e.message ?? String(error);
    if (message === reported) return;
    reported = message;
    send('problem', { what: 'log', status: e.status, reason: e.reason, message });
  };
  while (!signal.aborted) {
    let pod: string | undefined;
    try {
      const pods = await client.list<KubeObject & { status?: { phase?: string } }>(
        resourcePath({ version: 'v1', plural: 'pods', namespace }),
        { labelSelector: `iovisor.org/kubectl-trace-id=${traceId}` },
        { signal },
      );
      const found = pods.items.find((p) => p.status?.phase === 'Running') ?? pods.items[0];
      pod = found?.metadata.name;
      if (found !== undefined && found.status?.phase !== 'Running' && found.status?.phase !== 'Pending') {
        // Ended before we could follow it: its whole log, once.
        const text = await client.getLog(resourcePath({ version: 'v1', plural: 'pods', namespace, name: pod }), {
          limitBytes: 1 << 20,
        });
        send('log', { pod, text, reset: true });
        send('log-end', { pod });
        return;
      }
    } catch (error) {
      if (signal.aborted) return;
      problem(error);
      await sleep(3000, signal);
      continue;
    }
    if (pod === undefined) {
      await sleep(1000, signal);
      continue;
    }
    try {
      let first = true;
      for await (const text of client.followLog(
        resourcePath({ version: 'v1', plural: 'pods', namespace, name: pod }),
        { limitBytes: 4 << 20 },
        signal,
      )) {
        send('log', { pod, text, reset: first });
        first = false;
      }
      if (signal.aborted) return;
      send('log-end', { pod });
      return;
    } catch (error) {
      if (signal.aborted) return;
      // 400 "container ... is waiting to start" until the kubelet starts it.
      if ((error as ErrorLike).status !== 400) problem(error);
      logger.debug('log follow failed; retrying', { err: error });
      await sleep(1000, signal);
    }
  }
}
