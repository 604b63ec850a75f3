// Validation of a TraceTrigger as the controller and the webhook read it:
// the schema again (objects can bypass an older CRD), then what a schema
// cannot say: the matchers parse, and the template makes a valid TraceJob
// once a target is filled in (the same validateTraceJob the TraceJob
// controller applies, so a trigger never creates a TraceJob that is rejected).
import { Value } from '@sinclair/typebox/value';
import { registerFormats } from '../tracejob/formats.ts';
import { validateTraceJob, type OperatorSettings } from '../tracejob/validate.ts';
import { API_GROUP_VERSION, KIND } from '../tracejob/constants.ts';
import { fleetSpecProblems } from './fleet-plan.ts';
import { parseMatcherList, type Matcher } from './matchers.ts';
import { TraceTriggerObject, type TraceTrigger } from './schema.ts';

export interface TriggerProblem {
  field: string;
  reason: string;
  message: string;
}

export type TriggerValidation =
  { ok: true; trigger: TraceTrigger; matchers: Matcher[] } | { ok: false; problems: TriggerProblem[] };

export const TRIGGER_REASONS = {
  InvalidSpec: 'InvalidSpec',
  InvalidMatchers: 'InvalidMatchers',
  InvalidTemplate: 'InvalidTemplate',
  NoSource: 'NoSource',
  InvalidSchedule: 'InvalidSchedule',
  InvalidNodeSelector: 'InvalidNodeSelector',
} as const;

export function validateTraceTrigger(obj: unknown, settings: OperatorSettings): TriggerValidation {
  registerFormats();
  const problems: TriggerProblem[] = [];
  if (!Value.Check(TraceTriggerObject, obj)) {
    for (const e of Value.Errors(TraceTriggerObject, obj)) {
      const field = e.path.replace(/^\//, '').replace(/\//g, '.') || '<root>';
      problems.push({ field, reason: TRIGGER_REASONS.InvalidSpec, message: `${field}: ${e.message}` });
      if (problems.length >= 10) break;
    }
    return { ok: false, problems };
  }
  const trigger = obj as TraceTrigger;
  let matchers: Matcher[] = [];
  if (trigger.spec.alert !== undefined) {
    const parsed = parseMatcherList(trigger.spec.alert.matchers);
    if (parsed.ok) matchers = parsed.matchers;
    else
      problems.push({
        field: 'spec.alert.matchers',
        reason: TRIGGER_REASONS.InvalidMatchers,
        message: `spec.alert.matchers: ${parsed.error}`,
      });
  }
  problems.push(...fleetSpecProblems(trigger.spec));
  const sample = validateTraceJob(
    {
      apiVersion: API_GROUP_VERSION,
      kind: KIND,
      metadata: { name: 'template-check', namespace: trigger.metadata.namespace ?? 'default' },
      spec: { ...structuredClone(trigger.spec.template.spec), hostname: 'template-check' },
    },
    settings,
  );
  if (!sample.ok) {
    for (const e of sample.errors)
      problems.push({
        field: e.field.replace(/^spec\./, 'spec.template.spec.'),
        reason: TRIGGER_REASONS.InvalidTemplate,
        message: `spec.template: ${e.message}`,
      });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, trigger, matchers };
}
