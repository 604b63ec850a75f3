// Validation of a TraceJob as the controller and run-local receive it. The
// API server already enforces the CRD schema, but objects can bypass it
// (an older CRD, a file for run-local, a hand-written status), so the same
// schema is checked again here, followed by the rules a schema cannot
// express: the byte size of the program, the image allow-list and the
// pairs of fields of which exactly one must be set.
import { Kind, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { TraceJobObject, TraceJobSpec, type TraceJob } from './schema.ts';
import { API_GROUP_VERSION, KIND, LIMITS } from './constants.ts';
import {
  CONFIGMAP_KEY_PATTERN,
  DNS_LABEL_PATTERN,
  DNS_SUBDOMAIN_PATTERN,
  UUID_PATTERN,
  isDnsLabel,
  isDnsSubdomain,
  registerFormats,
} from './formats.ts';
import { effectiveImages, isImageAllowed, isImageReference, type OperatorSettings } from './settings.ts';
import type { ValidationError } from './validation-error.ts';

// The controller and run-local import everything they need for validation from here.
export type { TraceJob, TraceJobSpec, TraceJobStatus } from './schema.ts';
export type { ResolvedTarget } from './target.ts';
export { defaultOperatorSettings, type OperatorSettings } from './settings.ts';

export type { ValidationError } from './validation-error.ts';

export type ValidationResult = { ok: true; traceJob: TraceJob } | { ok: false; errors: ValidationError[] };

/** Every reason validateTraceJob can return. */
export const VALIDATION_REASONS = {
  InvalidObject: 'InvalidObject',
  WrongAPIVersion: 'WrongAPIVersion',
  WrongKind: 'WrongKind',
  InvalidMetadata: 'InvalidMetadata',
  InvalidName: 'InvalidName',
  InvalidNamespace: 'InvalidNamespace',
  UnknownField: 'UnknownField',
  MissingSpec: 'MissingSpec',
  InvalidSpec: 'InvalidSpec',
  MissingProgram: 'MissingProgram',
  ProgramSourceConflict: 'ProgramSourceConflict',
  InvalidProgram: 'InvalidProgram',
  EmptyProgram: 'EmptyProgram',
  ProgramTooLarge: 'ProgramTooLarge',
  InvalidProgramFrom: 'InvalidProgramFrom',
  InvalidProgramArgs: 'InvalidProgramArgs',
  MissingTarget: 'MissingTarget',
  TargetConflict: 'TargetConflict',
  InvalidHostname: 'InvalidHostname',
  InvalidTargetPod: 'InvalidTargetPod',
  InvalidServiceAccount: 'InvalidServiceAccount',
  InvalidImage: 'InvalidImage',
  ImageNotAllowed: 'ImageNotAllowed',
  InvalidFetchHeaders: 'InvalidFetchHeaders',
  InvalidDeadline: 'InvalidDeadline',
  InvalidDeadlineGracePeriod: 'InvalidDeadlineGracePeriod',
  InvalidStop: 'InvalidStop',
  InvalidTTL: 'InvalidTTL',
  InvalidStartTimeout: 'InvalidStartTimeout',
  InvalidID: 'InvalidID',
  InvalidStatus: 'InvalidStatus',
} as const;
const R = VALIDATION_REASONS;

// Most specific prefix first; a prefix matches the field itself or anything below it.
const FIELD_REASONS: readonly (readonly [string, string])[] = [
  ['apiVersion', R.WrongAPIVersion],
  ['kind', R.WrongKind],
  ['metadata.name', R.InvalidName],
  ['metadata.namespace', R.InvalidNamespace],
  ['metadata', R.InvalidMetadata],
  ['spec.programFrom', R.InvalidProgramFrom],
  ['spec.programArgs', R.InvalidProgramArgs],
  ['spec.program', R.InvalidProgram],
  ['spec.hostname', R.InvalidHostname],
  ['spec.targetPod', R.InvalidTargetPod],
  ['spec.serviceAccount', R.InvalidServiceAccount],
  ['spec.imageNameTag', R.InvalidImage],
  ['spec.initImageNameTag', R.InvalidImage],
  ['spec.fetchHeaders', R.InvalidFetchHeaders],
  ['spec.deadlineGracePeriod', R.InvalidDeadlineGracePeriod],
  ['spec.deadline', R.InvalidDeadline],
  ['spec.stop', R.InvalidStop],
  ['spec.ttlSecondsAfterFinished', R.InvalidTTL],
  ['spec.startTimeoutSeconds', R.InvalidStartTimeout],
  ['spec', R.InvalidSpec],
  ['status.id', R.InvalidID],
  ['status', R.InvalidStatus],
];

function reasonFor(field: string, type: ValueErrorType): string {
  if (type === ValueErrorType.ObjectAdditionalProperties) return R.UnknownField;
  if (field === 'spec' && type === ValueErrorType.ObjectRequiredProperty) return R.MissingSpec;
  if (field === 'spec.program' && type === ValueErrorType.StringMinLength) return R.EmptyProgram;
  if (field === 'spec.program' && type === ValueErrorType.StringMaxLength) return R.ProgramTooLarge;
  for (const [prefix, reason] of FIELD_REASONS) {
    if (field === prefix || field.startsWith(`${prefix}.`) || field.startsWith(`${prefix}[`)) return reason;
  }
  return R.InvalidObject;
}

/** '/spec/programArgs/2' -> 'spec.programArgs[2]'. */
export function pointerToField(pointer: string): string {
  let field = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    field += /^\d+$/.test(part) ? `[${part}]` : field === '' ? part : `.${part}`;
  }
  return field;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string')
    return value.length > 80 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

const PATTERN_HINTS: Record<string, string> = {
  [DNS_SUBDOMAIN_PATTERN]:
    "must be a valid Kubernetes name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
  [DNS_LABEL_PATTERN]:
    "must be a valid DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
  [CONFIGMAP_KEY_PATTERN]: "must be a valid ConfigMap key: letters, digits, '-', '_' and '.'",
  [UUID_PATTERN]: 'must be a lower-case UUID (the operator assigns it; remove it from the status to get a new one)',
  '^\\S+$': 'must not contain whitespace',
};

function kindName(schema: TSchema): string {
  switch (schema[Kind]) {
    case 'Integer':
      return 'an integer';
    case 'Number':
      return 'a number';
    case 'String':
      return 'a string';
    case 'Boolean':
      return 'true or false';
    case 'Array':
      return 'a list';
    case 'Object':
    case 'Record':
      return 'an object';
    default:
      return 'a value of the right type';
  }
}

function problem(error: ValueError): string {
  const s = error.schema;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties: {
      const known = Object.keys((s['properties'] ?? {}) as Record<string, unknown>);
      return `is not a known field; remove it or check its spelling${known.length === 0 ? '' : ` (known fields: ${known.join(', ')})`}`;
    }
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${String(s['minimum'])}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${String(s['maximum'])}`;
    case ValueErrorType.StringMinLength:
      return s['minLength'] === 1 ? 'must not be empty' : `must be at least ${String(s['minLength'])} characters long`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(s['maxLength'])} characters long`;
    case ValueErrorType.StringPattern:
      return PATTERN_HINTS[String(s['pattern'])] ?? `must match the pattern ${String(s['pattern'])}`;
    case ValueErrorType.StringFormat:
    case ValueErrorType.StringFormatUnknown:
      return 'must be an RFC 3339 date-time such as 2024-01-02T03:04:05Z';
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${String(s['maxItems'])} items`;
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(s['const'])}`;
    case ValueErrorType.Union: {
      const options = ((s['anyOf'] ?? []) as TSchema[]).map((m) => JSON.stringify(m['const']));
      return `must be one of ${options.join(', ')}`;
    }
    default:
      return `must be ${kindName(s)}`;
  }
}

function schemaError(error: ValueError): ValidationError {
  const field = pointerToField(error.path);
  const description = typeof error.schema['description'] === 'string' ? ` ${error.schema['description']}` : '';
  // A property set to undefined is as good as missing.
  const missing = error.type === ValueErrorType.ObjectRequiredProperty || error.value === undefined;
  const type = missing ? ValueErrorType.ObjectRequiredProperty : error.type;
  const got = missing ? '' : ` (got ${show(error.value)})`;
  return {
    field,
    reason: reasonFor(field, type),
    message: `${field === '' ? 'the object' : field} ${missing ? 'is required' : problem(error)}${got}.${type === ValueErrorType.ObjectAdditionalProperties ? '' : description}`,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the schema cannot express. Runs on the defaulted copy; tolerates wrong types (the schema errors report those). */
function semanticErrors(obj: Record<string, unknown>, settings: OperatorSettings): ValidationError[] {
  const errors: ValidationError[] = [];
  const metadata = isRecord(obj['metadata']) ? obj['metadata'] : {};
  const name = metadata['name'];
  if (typeof name === 'string' && name.length > 0 && !isDnsSubdomain(name)) {
    errors.push({
      field: 'metadata.name',
      reason: R.InvalidName,
      message: `metadata.name ${PATTERN_HINTS[DNS_SUBDOMAIN_PATTERN]}, at most 253 characters (got ${show(name)}). Rename the TraceJob.`,
    });
  }
  const namespace = metadata['namespace'];
  if (typeof namespace === 'string' && !isDnsLabel(namespace)) {
    errors.push({
      field: 'metadata.namespace',
      reason: R.InvalidNamespace,
      message: `metadata.namespace ${PATTERN_HINTS[DNS_LABEL_PATTERN]} (got ${show(namespace)}).`,
    });
  }

  const spec = obj['spec'];
  if (!isRecord(spec)) return errors;

  const hasProgram = spec['program'] !== undefined;
  const hasProgramFrom = spec['programFrom'] !== undefined;
  if (hasProgram && hasProgramFrom) {
    errors.push({
      field: 'spec.program',
      reason: R.ProgramSourceConflict,
      message:
        'spec.program and spec.programFrom are both set; keep exactly one: the program text in spec.program, or a ConfigMap key holding it in spec.programFrom.configMapKeyRef.',
    });
  } else if (!hasProgram && !hasProgramFrom) {
    errors.push({
      field: 'spec.program',
      reason: R.MissingProgram,
      message:
        'no program: set spec.program to the bpftrace program text, or spec.programFrom.configMapKeyRef to the ConfigMap key holding it.',
    });
  }
  const program = spec['program'];
  if (typeof program === 'string') errors.push(...programTextErrors(program, 'spec.program'));

  const hasHost = spec['hostname'] !== undefined;
  const hasPod = spec['targetPod'] !== undefined;
  if (hasHost && hasPod) {
    errors.push({
      field: 'spec.hostname',
      reason: R.TargetConflict,
      message:
        'spec.hostname and spec.targetPod are both set; keep exactly one: hostname to trace a node, or targetPod to trace the node of a pod (the node is taken from the pod).',
    });
  } else if (!hasHost && !hasPod) {
    errors.push({
      field: 'spec.hostname',
      reason: R.MissingTarget,
      message:
        'no target: set spec.hostname to the node to trace (see `kubectl get nodes`), or spec.targetPod.name to a pod in this namespace.',
    });
  }

  const args = spec['programArgs'];
  if (Array.isArray(args)) {
    args.forEach((arg: unknown, i) => {
      if (typeof arg === 'string' && arg.includes('\0')) {
        errors.push({
          field: `spec.programArgs[${i}]`,
          reason: R.InvalidProgramArgs,
          message: `spec.programArgs[${i}] contains a NUL character, which cannot be passed as a command-line argument; remove it.`,
        });
      }
    });
  }

  errors.push(...imageErrors(spec, settings));
  return errors;
}

/**
 * Errors of a program text: blank, or over the byte limit. Exported for the
 * controller, which checks a program read from spec.programFrom the same way.
 */
export function programTextErrors(program: string, field: string): ValidationError[] {
  if (program.trim().length === 0) {
    return [
      {
        field,
        reason: R.EmptyProgram,
        message: `${field} is empty; write a bpftrace program, for example 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }'.`,
      },
    ];
  }
  const bytes = new TextEncoder().encode(program).byteLength;
  if (bytes > LIMITS.programBytes) {
    return [
      {
        field,
        reason: R.ProgramTooLarge,
        message: `${field} is ${bytes} bytes; the limit is ${LIMITS.programBytes} bytes (256 KiB). Shorten the program.`,
      },
    ];
  }
  return [];
}

function imageErrors(spec: Record<string, unknown>, settings: OperatorSettings): ValidationError[] {
  const errors: ValidationError[] = [];
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const images = effectiveImages(
    {
      imageNameTag: str(spec['imageNameTag']),
      initImageNameTag: str(spec['initImageNameTag']),
      fetchHeaders: spec['fetchHeaders'] === true,
    },
    settings,
  );
  const checks: [string, string | undefined, boolean][] = [
    ['spec.imageNameTag', images.main, spec['imageNameTag'] !== undefined],
    ['spec.initImageNameTag', images.init ?? str(spec['initImageNameTag']), spec['initImageNameTag'] !== undefined],
  ];
  for (const [field, image, explicit] of checks) {
    if (image === undefined || (explicit && typeof spec[field.slice('spec.'.length)] !== 'string')) continue;
    if (!isImageReference(image)) {
      errors.push({
        field,
        reason: R.InvalidImage,
        message: explicit
          ? `${field} ${show(image)} is not a valid image reference; use registry/repository:tag or registry/repository@sha256:digest.`
          : `the operator's default image ${show(image)} for ${field} is not a valid image reference; fix the operator's settings.`,
      });
    } else if (!isImageAllowed(image, settings.allowedImages)) {
      const allowed =
        settings.allowedImages.length === 0
          ? 'the allow-list is empty'
          : `allowed: ${settings.allowedImages.join(', ')}`;
      errors.push({
        field,
        reason: R.ImageNotAllowed,
        message: explicit
          ? `${field} ${show(image)} is not on the operator's image allow-list (${allowed}); use an allowed image, remove the field to use the default, or ask the operator's administrator to allow it.`
          : `the operator's default image ${show(image)} for ${field} is not on its own allow-list (${allowed}); the operator's administrator must add it to the allowed images.`,
      });
    }
  }
  return errors;
}

/**
 * Validates a TraceJob received from the API server or a file and returns it
 * with the schema's defaults applied (deadline, deadlineGracePeriod,
 * fetchHeaders, stop), or every problem found. Never throws.
 */
export function validateTraceJob(obj: unknown, settings: OperatorSettings): ValidationResult {
  registerFormats();
  if (!isRecord(obj)) {
    return {
      ok: false,
      errors: [
        {
          field: '',
          reason: R.InvalidObject,
          message: `expected a TraceJob object (apiVersion: ${API_GROUP_VERSION}, kind: ${KIND}), got ${show(obj)}.`,
        },
      ],
    };
  }
  const copy = Value.Clone(obj);
  if (isRecord(copy['spec'])) copy['spec'] = Value.Default(TraceJobSpec, copy['spec']);

  const errors: ValidationError[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(TraceJobObject, copy)) {
    const converted = schemaError(error);
    if (seen.has(converted.field)) continue;
    seen.add(converted.field);
    errors.push(converted);
  }
  for (const error of semanticErrors(copy, settings)) {
    // A field with a schema error (wrong type, out of bounds) is not reported twice.
    if (seen.has(error.field)) continue;
    errors.push(error);
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, traceJob: copy as TraceJob };
}

/** One line per error, for logs, Events and run-local. */
export function formatValidationErrors(errors: readonly ValidationError[]): string {
  return errors.map((e) => `${e.reason}: ${e.message}`).join('\n');
}
