// Resolving spec.programFrom: the controller reads the referenced ConfigMap
// from the API server (a GET; user ConfigMaps are not cached) and this pure function checks and extracts the program,
// with the same rules as an inline spec.program.
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { TraceJob } from './schema.ts';
import { programTextErrors, type ValidationError } from './validate.ts';

export const PROGRAM_REASONS = {
  ProgramConfigMapNotFound: 'ProgramConfigMapNotFound',
  ProgramKeyNotFound: 'ProgramKeyNotFound',
} as const;

export type ProgramResolution = { ok: true; program: string } | { ok: false; error: ValidationError };

/**
 * The program text of a TraceJob: spec.program, or the value of the
 * ConfigMap key spec.programFrom.configMapKeyRef names (`configMap` is that
 * ConfigMap, or undefined when it does not exist).
 */
export function resolveProgram(traceJob: TraceJob, configMap: V1ConfigMap | undefined): ProgramResolution {
  const spec = traceJob.spec;
  if (spec.program !== undefined) return { ok: true, program: spec.program };
  const ref = spec.programFrom?.configMapKeyRef;
  if (ref === undefined) {
    return {
      ok: false,
      error: {
        field: 'spec.program',
        reason: 'MissingProgram',
        message: 'no program: set spec.program or spec.programFrom.configMapKeyRef.',
      },
    };
  }
  if (configMap === undefined) {
    return {
      ok: false,
      error: {
        field: 'spec.programFrom.configMapKeyRef.name',
        reason: PROGRAM_REASONS.ProgramConfigMapNotFound,
        message: `ConfigMap ${ref.name} (spec.programFrom.configMapKeyRef.name) does not exist in namespace ${traceJob.metadata.namespace ?? '<unknown>'}; create it or fix the name.`,
      },
    };
  }
  const program = configMap.data?.[ref.key];
  if (program === undefined) {
    const keys = Object.keys(configMap.data ?? {});
    return {
      ok: false,
      error: {
        field: 'spec.programFrom.configMapKeyRef.key',
        reason: PROGRAM_REASONS.ProgramKeyNotFound,
        message: `ConfigMap ${ref.name} has no data key ${JSON.stringify(ref.key)}${keys.length === 0 ? ' (it has no data keys)' : `; its keys are: ${keys.join(', ')}`}.`,
      },
    };
  }
  const [error] = programTextErrors(program, `ConfigMap ${ref.name} key ${ref.key}`);
  if (error !== undefined) return { ok: false, error: { ...error, field: 'spec.programFrom.configMapKeyRef.key' } };
  return { ok: true, program };
}
