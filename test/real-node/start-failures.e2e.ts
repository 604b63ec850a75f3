// A trace pod whose image cannot be pulled, on the real kubelet: the image is
// on a registry address where nothing listens (127.0.0.1:1), so containerd's
// pull fails at once and the kubelet reports ErrImagePull / ImagePullBackOff.
// The TraceJob says so while it waits, and fails at spec.startTimeoutSeconds
// with its Job suspended, so the trace never starts late.
import test from 'ava';
import type { V1Job } from '@kubernetes/client-node';
import type { TraceJob } from '../../src/tracejob/index.ts';
import type { RealNodeInfo } from '../cluster/real-node.ts';
import { createTestNamespace } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import { apply, condition, getJson, waitForPhase } from '../support/tracejobs.ts';
import { realNode } from './support.ts';

const MISSING_IMAGE = '127.0.0.1:1/trace-operator/runner:missing';

let ns = '';
let node: RealNodeInfo;
let manager: RunningManager;
let cleanupNamespace: () => Promise<void> = async () => undefined;

test.before(async () => {
  node = await realNode();
  await installCrd();
  const namespace = await createTestNamespace('real-start');
  ns = namespace.name;
  cleanupNamespace = namespace.cleanup;
  manager = await startManager({
    namespaces: [ns],
    args: [
      `--default-image=${node.runnerImage}`,
      `--allowed-images=${node.runnerImage},127.0.0.1:1/`,
      '--image-pull-policy=IfNotPresent',
    ],
  });
});

test.after.always(async () => {
  await manager?.stop();
  await cleanupNamespace();
});

test.afterEach.always((t) => {
  if (!t.passed && manager !== undefined)
    t.log(`manager log (last 40 lines):\n${manager.logs().split('\n').slice(-40).join('\n')}`);
});

test('an image that cannot be pulled: Running=False names the pull error, then StartTimeout fails the trace', async (t) => {
  t.timeout(180_000);
  await apply(ns, {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name: 'no-image', namespace: ns },
    spec: {
      hostname: node.nodeName,
      imageNameTag: MISSING_IMAGE,
      startTimeoutSeconds: 45,
      program: 'BEGIN { printf("never\\n"); exit(); }',
    },
  });
  const waiting = await eventually(
    'the TraceJob says the image cannot be pulled',
    async () => {
      const tj = await getJson<TraceJob>(ns, 'tracejob', 'no-image');
      const running = tj === undefined ? undefined : condition(tj, 'Running');
      return tj !== undefined && running?.status === 'False' && /ErrImagePull|ImagePullBackOff/.test(running.reason)
        ? { tj, running }
        : undefined;
    },
    90_000,
    1000,
  );
  t.is(waiting.tj.status?.phase, 'Pending');
  t.regex(waiting.running.message ?? '', /127\.0\.0\.1:1/, 'the message names the image');

  const failed = await waitForPhase(ns, 'no-image', 'Failed', 120_000);
  const reason = condition(failed, 'Failed');
  t.is(reason?.reason, 'StartTimeout');
  t.regex(reason?.message ?? '', /ErrImagePull|ImagePullBackOff/);
  const job = await getJson<V1Job>(ns, 'job', failed.status?.jobName ?? '');
  t.is(job?.spec?.suspend, true, 'the Job is suspended: the trace never starts late');
});
