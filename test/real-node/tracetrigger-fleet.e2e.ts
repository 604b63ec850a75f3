// A fleet run of a TraceTrigger that selects the real node: the trigger fans
// out to an ordinary TraceJob on real-node-0, whose trace pod runs the runner
// image with the real bpftrace while this test writes to disk, and the run's
// merged result in the trigger's status holds that real histogram.
import test from 'ava';
import type { TraceJob } from '../../src/tracejob/index.ts';
import type { TraceTrigger } from '../../src/tracetrigger/index.ts';
import { RUN_LABEL_KEY } from '../../src/tracetrigger/run.ts';
import { generateDiskIo, tempDir } from '../fixtures/runner/harness.ts';
import { kubectl } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { apply, getJson, listJson } from '../support/tracejobs.ts';
import { realNodeFile } from './support.ts';

const FIRE = 'observe.alexeldeib.xyz/fire';
const BIOLATENCY = `tracepoint:block:block_rq_issue { @start[args->dev, args->sector] = nsecs; }
tracepoint:block:block_rq_complete /@start[args->dev, args->sector]/ {
  @usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000);
  delete(@start[args->dev, args->sector]);
}`;

const file = realNodeFile('real-fleet');

test('a fleet run over the real node keeps a real merged histogram', async (t) => {
  t.timeout(240_000);
  await apply(file.ns, {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name: 'real-fleet', namespace: file.ns },
    spec: {
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': file.node.hostnameLabel } },
      template: { spec: { program: BIOLATENCY, deadline: 15 } },
    },
  });
  const { dir, cleanup } = await tempDir('real-fleet-io-');
  const io = generateDiskIo(dir);
  try {
    const annotated = await kubectl(['annotate', 'tracetrigger', 'real-fleet', `${FIRE}=real-1`, '--overwrite'], {
      namespace: file.ns,
    });
    t.is(annotated.exitCode, 0, annotated.stderr);
    const run = await eventually(
      'the run on the real node is complete with a merged result',
      async () => {
        const tr = await getJson<TraceTrigger>(file.ns, 'tracetrigger', 'real-fleet');
        const r = tr?.status?.runs?.[0];
        return r?.result?.complete === true ? r : undefined;
      },
      200_000,
      1000,
    );
    t.is(run.phase, 'Succeeded');
    t.deepEqual(
      run.traceJobs.map((x) => x.node),
      [file.node.nodeName],
      'the selector matched only the real node',
    );
    const tjs = await listJson<TraceJob>(file.ns, 'tracejobs', `${RUN_LABEL_KEY}=${run.id}`);
    t.is(tjs.length, 1);
    const own = tjs[0]?.status?.result?.maps.find((m) => m.name === '@usecs')?.histograms?.[0];
    const merged = run.result?.maps.find((m) => m.name === '@usecs')?.histograms?.[0];
    t.truthy(own, 'the real trace saw block I/O');
    t.true((merged?.total ?? 0) > 0);
    t.deepEqual(merged?.buckets, own?.buckets, "one node's run: the merged histogram is that node's");
    t.is(run.result?.nodes.contributed, 1);
  } finally {
    await io.stop();
    await cleanup();
  }
});
