// A trace pod whose image cannot be pulled, on the real kubelet: the image is
// on a registry address where nothing listens (127.0.0.1:1), so containerd's
// pull fails at once and the kubelet reports ErrImagePull / ImagePullBackOff.
// The TraceJob says so while it waits, and fails at spec.startTimeoutSeconds
// with its Job suspended, so the trace never starts late.
import test from 'ava';
import type { V1Job } from '@kubernetes/client-node';
import type { TraceJob } from '../../src/tracejob/index.ts';
import { eventually } from '../support/eventually.ts';
import { startManager } from '../support/manager.ts';
import { apply, condition, getJson, waitForPhase } from '../support/tracejobs.ts';
import { realNodeFile } from './support.ts';

const MISSING_IMAGE = '127.0.0.1:1/trace-operator/runner:missing';

// Any tag under 127.0.0.1:1/ is allowed, and pulled when missing (never, here: nothing listens there).
const file = realNodeFile('real-start', (namespace, node) =>
  startManager({
    namespaces: [namespace],
    args: [
      `--default-image=${file.node.runnerImage}`,
      `--allowed-images=${file.node.runnerImage},127.0.0.1:1/`,
      '--image-pull-policy=IfNotPresent',
    ],
  }),
);

test('an image that cannot be pulled: Running=False names the pull error, then StartTimeout fails the trace', async (t) => {
  t.timeout(180_000);
  await apply(file.ns, {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name: 'no-image', namespace: file.ns },
    spec: {
      hostname: file.node.nodeName,
      imageNameTag: MISSING_IMAGE,
      startTimeoutSeconds: 45,
      program: 'BEGIN { printf("never\\n"); exit(); }',
    },
  });
  const waiting = await eventually(
    'the TraceJob says the image cannot be pulled',
    async () => {
      const tj = await getJson<TraceJob>(file.ns, 'tracejob', 'no-image');
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

  const failed = await waitForPhase(file.ns, 'no-image', 'Failed', 120_000);
  const reason = condition(failed, 'Failed');
  t.is(reason?.reason, 'StartTimeout');
  t.regex(reason?.message ?? '', /ErrImagePull|ImagePullBackOff/);
  const job = await getJson<V1Job>(file.ns, 'job', failed.status?.jobName ?? '');
  t.is(job?.spec?.suspend, true, 'the Job is suspended: the trace never starts late');
});
