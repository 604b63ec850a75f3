// Alertmanager's webhook payload, version 4 (the only version Alertmanager
// has sent since 0.8; https://prometheus.io/docs/alerting/latest/configuration/#webhook_config),
// checked with a TypeBox schema so a malformed body gets a 400 naming the field.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { errorMessage } from '../error-message.ts';

const Labels = Type.Record(Type.String(), Type.String());

export const WebhookAlert = Type.Object({
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  labels: Labels,
  annotations: Type.Optional(Labels),
  startsAt: Type.String({ minLength: 1 }),
  endsAt: Type.Optional(Type.String()),
  generatorURL: Type.Optional(Type.String()),
  fingerprint: Type.String({ minLength: 1, maxLength: 64 }),
});

export const WebhookPayload = Type.Object({
  version: Type.Literal('4'),
  groupKey: Type.Optional(Type.String()),
  truncatedAlerts: Type.Optional(Type.Integer({ minimum: 0 })),
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  receiver: Type.Optional(Type.String()),
  groupLabels: Type.Optional(Labels),
  commonLabels: Type.Optional(Labels),
  commonAnnotations: Type.Optional(Labels),
  externalURL: Type.Optional(Type.String()),
  alerts: Type.Array(WebhookAlert, { maxItems: 10_000 }),
});

export type WebhookAlert = Static<typeof WebhookAlert>;
export type WebhookPayload = Static<typeof WebhookPayload>;

export type PayloadParse = { ok: true; payload: WebhookPayload } | { ok: false; error: string };

/** Parses and checks a request body; the error says what is wrong, for the 400 answer. */
export function parsePayload(body: string): PayloadParse {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    return { ok: false, error: `the body is not JSON: ${errorMessage(error)}` };
  }
  if (typeof value === 'object' && value !== null && 'version' in value && value.version !== '4')
    return {
      ok: false,
      error: `payload version ${JSON.stringify(value.version)} is not supported; Alertmanager's webhook sends version "4"`,
    };
  if (!Value.Check(WebhookPayload, value)) {
    const errors = [...Value.Errors(WebhookPayload, value)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`);
    return { ok: false, error: `not an Alertmanager webhook payload (version 4): ${errors.join('; ')}` };
  }
  for (const alert of value.alerts)
    if (Number.isNaN(Date.parse(alert.startsAt)))
      return {
        ok: false,
        error: `alert ${alert.fingerprint}: startsAt ${JSON.stringify(alert.startsAt)} is not a time`,
      };
  return { ok: true, payload: value };
}
