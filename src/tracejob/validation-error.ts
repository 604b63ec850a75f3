// One problem with a TraceJob, as validation and target resolution report it
// (apart from validate.ts so that target.ts needs nothing from validation).

export interface ValidationError {
  /** Path of the offending field, e.g. 'spec.deadline' or 'spec.programArgs[2]'. */
  field: string;
  /** CamelCase reason, usable as a condition or Event reason. */
  reason: string;
  /** What is wrong and what to do about it. */
  message: string;
}
