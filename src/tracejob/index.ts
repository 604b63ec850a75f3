// The TraceJob API: schema and types, validation, the pure mapping to the
// objects that run a trace, and the derivation of status from what runs.
// No I/O anywhere in this package.
export * from './constants.ts';
export {
  ConfigMapKeySelector,
  ProgramSource,
  TargetPod,
  TraceJobSpec,
  ConditionStatus,
  Condition,
  Phase,
  OutputReference,
  TraceJobStatus,
  ObjectMeta,
  TraceJobObject,
  type TraceJob,
} from './schema.ts';
export { TraceResult, TraceOutcome, MapResult, MapEntry, Histogram, HistogramBucket, RESULT_LIMITS } from './result.ts';
export { isDnsLabel, isDnsSubdomain, isLabelValue, isUuid, isDateTime } from './formats.ts';
export {
  defaultOperatorSettings,
  effectiveImages,
  isImageAllowed,
  isImageReference,
  DEFAULT_RUNNER_IMAGE,
  DEFAULT_INIT_IMAGE,
  type OperatorSettings,
  type ImagePullPolicy,
} from './settings.ts';
export {
  validateTraceJob,
  programTextErrors,
  formatValidationErrors,
  pointerToField,
  VALIDATION_REASONS,
  type ValidationError,
  type ValidationResult,
} from './validate.ts';
export {
  findNodeByHostname,
  hostnameLabelOf,
  resolveNodeTarget,
  resolvePodTarget,
  stripRuntimePrefix,
  TARGET_REASONS,
  type ResolvedTarget,
  type TargetResolution,
} from './target.ts';
export { resolveProgram, PROGRAM_REASONS, type ProgramResolution } from './program.ts';
export {
  buildTraceObjects,
  traceObjectName,
  traceLabels,
  traceAnnotations,
  ownerReference,
  traceId,
  traceIdOf,
  runnerArgs,
  stopRequestData,
  stopRequestPatch,
  isStopRequested,
  type TraceObjects,
} from './mapping.ts';
export { specHash, specChangedAfterStart, specAppliedCondition, SPEC_HASH_ANNOTATION_KEY } from './spec-change.ts';
export { buildOutputConfigMap, outputConfigMapName, keepTail } from './output-configmap.ts';
export {
  CONDITION_TYPES,
  REASONS,
  setCondition,
  findCondition,
  isConditionTrue,
  isStartProblem,
  type ConditionType,
  type ConditionUpdate,
} from './conditions.ts';
export {
  awaitsPodCreation,
  podStartIsLate,
  POD_START_POLL_MS,
  awaitsPodStart,
  deriveTraceState,
  isFinishedPhase,
  isStarted,
  stoppedBeforeStart,
  ttlExpiry,
  type ObservedTrace,
  type DerivedState,
} from './phase.ts';
export { toRfc3339, timeString } from './time.ts';
export { jsonEqual } from './canonical-json.ts';
export {
  traceJobCrd,
  traceJobOpenApiSchema,
  renderCrdYaml,
  renderCrdKustomization,
  toStructural,
  CRD_FILE,
  CRD_KUSTOMIZATION_FILE,
} from './crd.ts';
