// Reads a finished trace pod's output before it can disappear: the runner's
// structured result (from the termination message, falling back to the
// result line in the log) and the full text (the log, without the result line).
import type { V1Pod } from '@kubernetes/client-node';
import { parseRunnerOutput, parseTerminationMessage, stripResultLine } from '../runner/result-parse.ts';
import type { TraceResult } from '../tracejob/index.ts';
import type { TraceJobApi } from './reconcile-deps.ts';

/** Enough lines for the output ConfigMap's size limit; the final maps are at the end. */
export const LOG_TAIL_LINES = 50_000;

export interface CapturedOutput {
  result?: TraceResult;
  /** The text output without the runner's result line; undefined when the log could not be read. */
  text?: string;
  /** Why the log could not be read. */
  logError?: string;
}

export function isTerminated(pod: V1Pod | undefined): boolean {
  const phase = pod?.status?.phase;
  return (
    phase === 'Succeeded' || phase === 'Failed' || pod?.status?.containerStatuses?.[0]?.state?.terminated !== undefined
  );
}

function terminationMessageOf(pod: V1Pod): string | undefined {
  const message = pod.status?.containerStatuses?.[0]?.state?.terminated?.message;
  return message === undefined || message.trim() === '' ? undefined : message;
}

/** Reads the result and text of a terminated trace pod. Never throws for a missing log; the reason is returned. */
export async function captureOutput(api: TraceJobApi, pod: V1Pod, signal?: AbortSignal): Promise<CapturedOutput> {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  const container = pod.spec?.containers[0]?.name ?? '';
  const termination = terminationMessageOf(pod);
  const log = await api.readPodLog(namespace, name, container, LOG_TAIL_LINES, signal);
  if ('error' in log) {
    const fromTermination = termination === undefined ? undefined : parseTerminationMessage(termination)?.result;
    return { ...(fromTermination === undefined ? {} : { result: fromTermination }), logError: log.error };
  }
  const result = parseRunnerOutput(log.text, termination);
  return { ...(result === undefined ? {} : { result }), text: stripResultLine(log.text, termination) };
}
