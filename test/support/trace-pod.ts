// Plays the end of a trace on a simulated (kwok) node: the output the runner
// would print becomes the pod's log (a CRI log file served by kwok through the
// API server, as a kubelet serves it), and the runner's termination message
// and exit code become the container's terminated state (kwok's test stage).
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { scratchDir } from './scratch-dir.ts';
import { formatResultLine, formatTerminationMessage, newNonce } from '../../src/runner/result-format.ts';
import type { TraceResult } from '../../src/tracejob/index.ts';
import { kubectl } from './cluster.ts';

/** A biolatency-like result: two buckets of @usecs, as a runner reports a trace that reached its deadline. */
export const histogramResult: TraceResult = {
  outcome: 'DeadlineReached',
  exitCode: 0,
  maps: [
    {
      name: '@usecs',
      kind: 'histogram',
      histograms: [
        {
          buckets: [
            { low: 256, high: 512, count: 3 },
            { low: 512, high: 1024, count: 1 },
          ],
          total: 4,
          p50: 512,
          p90: 1024,
          p99: 1024,
        },
      ],
    },
  ],
  truncated: false,
};

function criLog(text: string): string {
  const stamp = new Date().toISOString().replace('Z', '000000Z');
  return text
    .split('\n')
    .map((line) => `${stamp} stdout F ${line}`)
    .join('\n');
}

/** Makes kwok serve `text` as the log of the pod's container; returns the log file (see appendLog). */
export async function serveLog(
  namespace: string,
  pod: { name: string; container: string },
  text: string,
): Promise<string> {
  const dir = await scratchDir('trace-pod');
  const file = path.join(dir, 'container.log');
  await writeFile(file, `${criLog(text)}\n`);
  const logs = {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Logs',
    metadata: { name: pod.name, namespace },
    spec: { logs: [{ containers: [pod.container], logsFile: file }] },
  };
  const created = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(logs) });
  if (created.exitCode !== 0) throw new Error(`could not give pod ${pod.name} its log: ${created.stderr}`);
  return file;
}

/** Adds lines to a log served by serveLog, as a running trace prints more. */
export async function appendLog(file: string, text: string): Promise<void> {
  await appendFile(file, `${criLog(text)}\n`);
}

/** Ends a running trace pod; `log: false` leaves it without a log, as when its kubelet cannot be reached. */
export async function finishTracePod(
  namespace: string,
  pod: { name: string; container: string },
  run: { exitCode: number; text: string; result?: TraceResult; reason?: string; log?: boolean },
): Promise<void> {
  const nonce = newNonce();
  if (run.log !== false)
    await serveLog(
      namespace,
      pod,
      run.result === undefined ? run.text : `${run.text}\n${formatResultLine(run.result, nonce)}`,
    );
  const annotations = [`kwok.trace-operator.test/exit-code=${run.exitCode}`];
  if (run.result !== undefined)
    annotations.push(`kwok.trace-operator.test/termination-message=${formatTerminationMessage(run.result, nonce)}`);
  if (run.reason !== undefined) annotations.push(`kwok.trace-operator.test/reason=${run.reason}`);
  const annotated = await kubectl(['annotate', 'pod', pod.name, '--overwrite', ...annotations], { namespace });
  if (annotated.exitCode !== 0) throw new Error(`could not end pod ${pod.name}: ${annotated.stderr}`);
}
