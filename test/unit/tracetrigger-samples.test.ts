// The TraceTrigger samples: valid, and each alert they are written for
// becomes a TraceJob the TraceJob controller accepts.
import test from 'ava';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { defaultOperatorSettings, validateTraceJob } from '../../src/tracejob/index.ts';
import {
  NodeIndex,
  buildTriggeredTraceJob,
  planAlertNotification,
  traceJobName,
  validateTraceTrigger,
  type TraceTrigger,
} from '../../src/tracetrigger/index.ts';

const samplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'samples');
const load = async (file: string): Promise<TraceTrigger> => {
  const tt = parse(await readFile(path.join(samplesDir, file), 'utf8')) as TraceTrigger;
  tt.metadata = { ...tt.metadata, namespace: 'tracing', uid: '9d1c1f7e-1111-4222-8333-944455556666', generation: 1 };
  return tt;
};
const nodes = new NodeIndex([{ name: 'node-a', hostnameLabel: 'node-a.internal', internalIPs: ['10.1.2.3'] }]);

test('every TraceTrigger sample starts with a one-line comment and validates', async (t) => {
  const files = (await readdir(samplesDir)).filter((f) => f.startsWith('observe_v1alpha1_tracetrigger'));
  t.true(files.length >= 2);
  for (const file of files) {
    t.regex((await readFile(path.join(samplesDir, file), 'utf8')).split('\n')[0] ?? '', /^# [a-z-]+: .{20,}$/, file);
    const v = validateTraceTrigger(await load(file), defaultOperatorSettings());
    t.true(v.ok, `${file}: ${v.ok ? '' : v.problems.map((p) => p.message).join('; ')}`);
  }
});

async function firstTraceJob(file: string, labels: Record<string, string>) {
  const tt = await load(file);
  const v = validateTraceTrigger(tt, defaultOperatorSettings());
  if (!v.ok) throw new Error('invalid sample');
  const plan = planAlertNotification(
    tt,
    v.matchers,
    [{ status: 'firing', labels, startsAt: '2026-12-01T10:00:00Z', fingerprint: 'abc123' }],
    nodes,
  );
  const item = plan.firing.items[0];
  if (item === undefined || !item.resolution.ok) throw new Error(`unresolved: ${JSON.stringify(item)}`);
  const name = traceJobName(
    { name: tt.metadata.name, uid: tt.metadata.uid ?? '' },
    item.key,
    item.resolution.target.key,
  );
  return buildTriggeredTraceJob(tt, 'alert', name, { ...item, resolution: item.resolution });
}

test('the disk-latency sample traces the node an instance label names, with biolatency', async (t) => {
  const tj = await firstTraceJob('observe_v1alpha1_tracetrigger_disk_latency.yaml', {
    alertname: 'NodeDiskLatencyHigh',
    severity: 'critical',
    instance: '10.1.2.3:9100',
  });
  t.is(tj.spec.hostname, 'node-a');
  t.regex(tj.spec.program ?? '', /@usecs = hist\(/);
  t.true(validateTraceJob(tj, defaultOperatorSettings()).ok);
});

test('the pod sample traces the pod and container the alert names', async (t) => {
  const tj = await firstTraceJob('observe_v1alpha1_tracetrigger_pod_alert.yaml', {
    alertname: 'PodRequestLatencyHigh',
    namespace: 'tracing',
    pod: 'api-5d8f',
    container: 'app',
  });
  t.deepEqual(tj.spec.targetPod, { name: 'api-5d8f', container: 'app' });
  t.true(validateTraceJob(tj, defaultOperatorSettings()).ok);
});
