// End to end on a real node: the manager creates the trace's Job, the real
// scheduler binds its pod to the real kubelet, containerd runs the runner
// image built from the Dockerfile (npm run setup) and bpftrace traces this
// machine. Nothing is simulated: output comes from the real pod's log,
// deletion runs the real preStop hook, and `kubectl logs`/`kubectl attach` go
// through the API server to the kubelet. spec.stop has its own file,
// stop.e2e.ts.
import test from 'ava';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { generateDiskIo, tempDir } from '../fixtures/runner/harness.ts';
import { kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { apply, condition, getConfigMap, listJson, sample, waitForPhase } from '../support/tracejobs.ts';
import {
  attachedTrace,
  podLogs,
  realNodeFile,
  realNodeTraceJob,
  runningTracePod,
  streamKubectl,
  traceEnded,
  waitForLog,
} from './support.ts';

const file = realNodeFile('real-node');

const traceJob = (name: string, spec: Record<string, unknown>): object => realNodeTraceJob(file, name, spec);
const attached = (name: string): ReturnType<typeof attachedTrace> => attachedTrace(file.ns, name);
const ended = (name: string, timeoutMs: number): Promise<TraceJob> => traceEnded(file.ns, name, timeoutMs);

test.serial(
  'the biolatency sample runs bpftrace on the real node and ends Succeeded at its deadline with the histogram',
  async (t) => {
    const tj = sample('observe_v1alpha1_tracejob.yaml');
    tj.metadata.namespace = file.ns;
    tj.spec.hostname = file.node.nodeName;
    tj.spec.deadline = 20;
    await apply(file.ns, tj);
    const running = await waitForPhase(file.ns, 'biolatency', 'Running', 90_000);
    const pod = await runningTracePod(file.ns, running.status?.id ?? '');
    const podName = pod.metadata?.name ?? '';
    t.is(pod.spec?.nodeName, file.node.nodeName);
    t.is(pod.spec?.containers[0]?.image, file.node.runnerImage);
    await waitForLog(file.ns, podName, 'Tracing block device I/O latency');

    const { dir, cleanup } = await tempDir('real-node-io-');
    t.teardown(cleanup);
    const io = generateDiskIo(dir);
    let done: TraceJob;
    try {
      done = await ended('biolatency', 120_000);
    } finally {
      await io.stop();
    }
    t.is(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.conditions));
    t.like(condition(done, 'Succeeded'), { status: 'True', reason: 'DeadlineReached' });
    const usecs = done.status?.result?.maps.find((m) => m.name === '@usecs');
    t.is(usecs?.kind, 'histogram');
    const histogram = usecs?.histograms?.[0];
    t.true((histogram?.total ?? 0) > 0, JSON.stringify(usecs));
    t.true((histogram?.buckets.length ?? 0) > 0);
    t.true(typeof histogram?.p50 === 'number' && typeof histogram.p99 === 'number', JSON.stringify(histogram));

    const output = await getConfigMap(file.ns, done.status?.output?.configMapName ?? '');
    t.regex(output?.data?.['output.txt'] ?? '', /@usecs:\s*\n\[\d+/, 'the full text is kept');
    const logs = await podLogs(file.ns, podName);
    t.true(logs.includes('Tracing block device I/O latency'), logs);
    t.regex(logs, /@usecs:\s*\n\[\d+/, 'kubectl logs shows the histogram');
  },
);

test.serial("a program bpftrace rejects ends Failed with bpftrace's message in the condition", async (t) => {
  // A missing parenthesis (a missing last semicolon, as in the kwok test, bpftrace accepts).
  await apply(
    file.ns,
    traceJob('compile-error', { deadline: 60, program: 'tracepoint:block:block_rq_issue { @c = count( }' }),
  );
  const done = await ended('compile-error', 120_000);
  t.is(done.status?.phase, 'Failed');
  const failed = condition(done, 'Failed');
  t.is(failed?.reason, 'CompileError', JSON.stringify(failed));
  t.true(failed?.message.includes('syntax error, unexpected }') === true, failed?.message);
});

test.serial(
  'deleting a running TraceJob stops its pod through the preStop hook, which flushes the maps to the log',
  async (t) => {
    await apply(file.ns, traceJob('deleted', { deadline: 600, program: 'interval:ms:100 { @ticks = count(); }' }));
    const { id, pod } = await attached('deleted');
    const follow = streamKubectl(['logs', '-f', pod], { namespace: file.ns });
    await follow.waitFor(/Attaching/, 30_000);
    const deleted = await kubectl(['delete', 'tracejob', 'deleted', '--wait=false'], { namespace: file.ns });
    t.is(deleted.exitCode, 0, deleted.stderr);
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      follow.done,
      new Promise<undefined>((resolve) => (timer = setTimeout(resolve, 90_000, undefined))),
    ]);
    clearTimeout(timer);
    if (result === undefined) await follow.stop();
    t.truthy(result, 'kubectl logs -f ended when the container did');
    t.regex(follow.text(), /@ticks: \d+/, follow.text());
    await eventually(
      'the trace pod is gone',
      async () =>
        (await listJson(file.ns, 'pods', `iovisor.org/kubectl-trace-id=${id}`)).length === 0 ? true : undefined,
      90_000,
      500,
    );
  },
);

test.serial(
  'kubectl attach -it (what kubectl trace attach runs) streams the live output of the trace pod',
  async (t) => {
    await apply(
      file.ns,
      traceJob('attach', { deadline: 60, program: 'interval:s:1 { printf("tick %d\\n", elapsed / 1000000000); }' }),
    );
    const { pod, container } = await attached('attach');
    const before = (await podLogs(file.ns, pod)).match(/tick (\d+)/g)?.length ?? 0;
    const attach = streamKubectl(['attach', '-it', pod, '-c', container], { namespace: file.ns, tty: true });
    try {
      await attach.waitFor(/tick \d+\n(?:.*\n)*?tick \d+\n/, 30_000);
    } finally {
      await attach.stop();
    }
    const streamed = [...attach.text().matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
    t.true(streamed.length >= 2, attach.text());
    t.true(Math.max(...streamed) >= before, `attach streamed ticks ${streamed.join(',')} after ${before} were logged`);
    const still = await kubectl(['get', 'pod', pod, '-o', 'jsonpath={.status.phase}'], { namespace: file.ns });
    t.is(still.stdout, 'Running', 'the trace kept running while attached');
    await kubectl(['patch', 'tracejob', 'attach', '--type=merge', '-p', '{"spec":{"stop":true}}'], {
      namespace: file.ns,
    });
  },
);
