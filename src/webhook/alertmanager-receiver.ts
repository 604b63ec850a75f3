// POST /alertmanager/namespaces/{namespace}/tracetriggers/{name}: an
// Alertmanager notification for one trigger, in this order: the route (404),
// the method (405), the bearer token and permission (401, 403), readiness
// and leadership (503: only the leader writes, and Alertmanager retries a
// 5xx, possibly on another replica), the trigger (404 unknown, 422 not
// Ready or without spec.alert), the body (413 too large, 400 malformed),
// then the firing (200 with a summary; 503 when the API server fails midway,
// so the retry finishes the job: names are deterministic). Bad input is
// never a 5xx.
import type { Matcher } from '../tracetrigger/matchers.ts';
import { planAlertNotification, type AlertFleet } from '../tracetrigger/alert-firing.ts';
import type { Firing } from '../tracetrigger/firing.ts';
import type { TraceTrigger } from '../tracetrigger/schema.ts';
import type { NodeIndex } from '../tracetrigger/target.ts';
import type { Logger } from '../runtime/logger.ts';
import { parsePayload } from './alertmanager-payload.ts';
import type { Authorizer } from './auth.ts';
import type { WebhookHandler, WebhookResponse } from './server.ts';
import { errorMessage } from '../error-message.ts';

/** What the webhook answered, one word per status code it uses (the metric's label). */
export const NOTIFICATION_RESULTS = [
  'accepted',
  'malformed',
  'unauthenticated',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'trigger_not_ready',
  'too_large',
  'unavailable',
] as const;
export type NotificationResult = (typeof NOTIFICATION_RESULTS)[number];

export const ROUTE = /^\/alertmanager\/namespaces\/([^/]+)\/tracetriggers\/([^/]+)\/?$/;

export function webhookPath(namespace: string, name: string): string {
  return `/alertmanager/namespaces/${namespace}/tracetriggers/${name}`;
}

export interface ReceiverDeps {
  authorizer: Pick<Authorizer, 'check'>;
  /** Caches synced and this replica leads. */
  serving(): { ok: true } | { ok: false; why: string };
  trigger(namespace: string, name: string): TraceTrigger | undefined;
  /** The trigger's parsed matchers, or why it cannot fire. */
  readiness(trigger: TraceTrigger): { ok: true; matchers: Matcher[] } | { ok: false; message: string };
  nodes(): NodeIndex;
  /** Nodes with labels and readiness, so an alert naming no node can use spec.nodeSelector (issue 14). */
  fleet?(): AlertFleet;
  fire(
    trigger: TraceTrigger,
    firing: Firing,
    extras: { notifications: number; alerts: number; stop: string[] },
  ): Promise<object>;
  /** Counts a notification that never reached fire() (for status.counts.notifications); best effort. */
  countRejected?(trigger: TraceTrigger): void;
  result(result: NotificationResult): void;
  logger: Logger;
}

const answer = (
  status: number,
  reason: string,
  message: string,
  headers?: Record<string, string>,
): WebhookResponse => ({
  status,
  body: { status: 'error', code: status, reason, message },
  ...(headers === undefined ? {} : { headers }),
});

export function alertmanagerReceiver(deps: ReceiverDeps): WebhookHandler {
  return async (request) => {
    const done = (result: NotificationResult, response: WebhookResponse): WebhookResponse => {
      deps.result(result);
      if (response.status >= 400)
        deps.logger.info('webhook request refused', { path: request.path, status: response.status, result });
      return response;
    };
    const route = ROUTE.exec(request.path);
    if (route === null)
      return done(
        'not_found',
        answer(
          404,
          'NotFound',
          `no such path; post Alertmanager notifications to ${webhookPath('<namespace>', '<tracetrigger>')}`,
        ),
      );
    const namespace = decodeURIComponent(route[1] ?? '');
    const name = decodeURIComponent(route[2] ?? '');
    if (request.method !== 'POST')
      return done('method_not_allowed', answer(405, 'MethodNotAllowed', 'use POST', { allow: 'POST' }));
    let auth;
    try {
      auth = await deps.authorizer.check(request.headers.authorization, namespace, name);
    } catch (error) {
      deps.logger.warn('webhook: cannot review the token', {
        error: errorMessage(error),
      });
      return done(
        'unavailable',
        answer(503, 'ServiceUnavailable', 'the API server could not be asked about the token; retry', {
          'retry-after': '5',
        }),
      );
    }
    if (!auth.ok)
      return done(
        auth.status === 401 ? 'unauthenticated' : 'forbidden',
        answer(
          auth.status,
          auth.reason,
          auth.message,
          auth.status === 401 ? { 'www-authenticate': 'Bearer' } : undefined,
        ),
      );
    const serving = deps.serving();
    if (!serving.ok) return done('unavailable', answer(503, 'ServiceUnavailable', serving.why, { 'retry-after': '5' }));
    const trigger = deps.trigger(namespace, name);
    if (trigger === undefined)
      return done('not_found', answer(404, 'NotFound', `no TraceTrigger ${name} in namespace ${namespace}`));
    const body = await request.body();
    if (body === undefined) {
      deps.countRejected?.(trigger);
      return done('too_large', answer(413, 'RequestEntityTooLarge', 'the body exceeds --webhook-max-body-bytes'));
    }
    const parsed = parsePayload(body);
    if (!parsed.ok) {
      deps.countRejected?.(trigger);
      return done('malformed', answer(400, 'BadRequest', parsed.error));
    }
    const ready = deps.readiness(trigger);
    if (!ready.ok) {
      deps.countRejected?.(trigger);
      return done('trigger_not_ready', answer(422, 'TriggerNotReady', ready.message));
    }
    const plan = planAlertNotification(trigger, ready.matchers, parsed.payload.alerts, deps.nodes(), deps.fleet?.());
    let summary: object;
    try {
      summary = await deps.fire(trigger, plan.firing, {
        notifications: 1,
        alerts: plan.matched,
        stop: plan.stop,
      });
    } catch (error) {
      deps.logger.warn('webhook: firing failed; Alertmanager will retry', {
        trigger: `${namespace}/${name}`,
        error: errorMessage(error),
      });
      return done(
        'unavailable',
        answer(
          503,
          'ServiceUnavailable',
          'the API server failed while creating TraceJobs; retry (what was created is kept)',
          {
            'retry-after': '5',
          },
        ),
      );
    }
    return done('accepted', {
      status: 200,
      body: {
        status: 'ok',
        alerts: parsed.payload.alerts.length,
        matched: plan.matched,
        ignored: plan.ignored,
        ...summary,
      },
    });
  };
}
