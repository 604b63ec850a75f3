// run-local -f: a TraceJob manifest read, validated like the controller
// does, and turned into what run-local runs. Loaded only for -f, so that
// run-local -e and the runner start without YAML and the schema.
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { defaultOperatorSettings, formatValidationErrors, validateTraceJob } from '../tracejob/index.ts';
import type { RunLocalOptions } from './args.ts';
import { DEFAULT_GRACE_PERIOD } from './args.ts';
import { type LocalProgram, RunLocalError } from './run-local-program.ts';
import { errorMessage } from '../error-message.ts';

function parseManifest(text: string, file: string): unknown {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length === 0) throw new RunLocalError(`${file} is empty: it should hold one TraceJob manifest`);
  const values: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0)
      throw new RunLocalError(`${file} is not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
    values.push(doc.toJS());
  }
  const traceJobs = values.filter(
    (v) => typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'TraceJob',
  );
  if (traceJobs.length > 1)
    throw new RunLocalError(`${file} holds ${traceJobs.length} TraceJobs: run-local runs one; split the file`);
  return traceJobs[0] ?? values[0];
}

/** Loads and validates a TraceJob manifest and returns what run-local runs. */
export async function loadTraceJobProgram(
  file: string,
  options: Pick<RunLocalOptions, 'deadline' | 'gracePeriod' | 'args'>,
): Promise<LocalProgram> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new RunLocalError(`cannot read ${file}: ${errorMessage(error)}`);
  }
  const validation = validateTraceJob(parseManifest(text, file), defaultOperatorSettings());
  if (!validation.ok)
    throw new RunLocalError(`${file} is not a valid TraceJob:\n${formatValidationErrors(validation.errors)}`);
  const spec = validation.traceJob.spec;
  if (spec.programFrom !== undefined) {
    throw new RunLocalError(
      `${file}: spec.programFrom (a program in a ConfigMap) is not supported by run-local: put the program in spec.program, or pass it with -e`,
    );
  }
  if (spec.program === undefined) throw new RunLocalError(`${file}: spec.program is missing`);
  return {
    program: spec.program,
    args: options.args.length > 0 ? options.args : [...(spec.programArgs ?? [])],
    deadline: options.deadline ?? spec.deadline,
    gracePeriod: options.gracePeriod ?? spec.deadlineGracePeriod ?? DEFAULT_GRACE_PERIOD,
    source: file,
  };
}
