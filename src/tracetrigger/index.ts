// The TraceTrigger API: schema and types, validation, matchers, target
// resolution from alert labels, deterministic names, the firing model and
// its limits. No I/O anywhere in this package.
export * from './constants.ts';
export * from './schema.ts';
export { traceTriggerCrd, traceTriggerOpenApiSchema, renderTriggerCrdYaml, TRIGGER_CRD_FILE } from './crd.ts';
export { parseMatchers, parseMatcherList, matches, matchesAll, type Matcher, type MatchOp } from './matchers.ts';
export { validateTraceTrigger, TRIGGER_REASONS, type TriggerProblem, type TriggerValidation } from './validate.ts';
export {
  NodeIndex,
  hostCandidates,
  resolveNodeFromLabels,
  resolvePodFromLabels,
  resolveTargetFromLabels,
  type NodeFacts,
  type Target,
  type TargetResolution,
} from './target.ts';
export {
  traceJobName,
  targetHash,
  labelSafe,
  alertFiringKey,
  nodeTargetKey,
  podTargetKey,
  type TargetKey,
} from './names.ts';
export {
  buildTriggeredTraceJob,
  triggerOwnerReference,
  type AlertFacts,
  type Firing,
  type FiringItem,
} from './firing.ts';
export {
  decide,
  recordCreation,
  historyToDelete,
  RATE_WINDOW_MS,
  type Decision,
  type KnownTraceJob,
  type LimitInput,
  type TriggerLimitState,
  type FinishedTraceJob,
} from './limits.ts';
export { planAlertNotification, type AlertPlan, type NotifiedAlert } from './alert-firing.ts';
