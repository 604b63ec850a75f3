import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import {
  buildTraceObjects,
  defaultOperatorSettings,
  resolveProgram,
  validateTraceJob,
  type ResolvedTarget,
  type TraceJob,
} from '../../src/tracejob/index.ts';

const samplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'samples');
const ID = '0b7f8d52-3a43-4d7e-9a53-8b7f6a1d2c3e';

async function sampleFiles(): Promise<string[]> {
  return (await readdir(samplesDir))
    .filter((f) => f.startsWith('observe_v1alpha1_tracejob') && f.endsWith('.yaml'))
    .sort();
}

async function documents(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path.join(samplesDir, file), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
}

test("there are at least four samples, including the original operator's file name", async (t) => {
  const files = await sampleFiles();
  t.true(files.length >= 4, files.join(', '));
  t.true(files.includes('observe_v1alpha1_tracejob.yaml'));
});

test('the kustomization lists every sample and nothing else', async (t) => {
  const kustomization = parse(await readFile(path.join(samplesDir, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
  };
  const triggerSamples = (await readdir(samplesDir)).filter((f) => f.startsWith('observe_v1alpha1_tracetrigger'));
  t.deepEqual([...kustomization.resources].sort(), [...(await sampleFiles()), ...triggerSamples].sort());
});

test('each sample starts with a one-line comment saying what it shows', async (t) => {
  for (const file of await sampleFiles()) {
    const first = (await readFile(path.join(samplesDir, file), 'utf8')).split('\n')[0] ?? '';
    t.regex(first, /^# [a-z-]+: .{20,}$/, file);
  }
});

test('the biolatency sample uses block tracepoints (no kprobes) and a usecs histogram', async (t) => {
  const [doc] = await documents('observe_v1alpha1_tracejob.yaml');
  const spec = (doc?.['spec'] ?? {}) as { program?: string; hostname?: string };
  t.is(spec.hostname, 'kwok-node-0');
  t.regex(spec.program ?? '', /tracepoint:block:block_rq_issue/);
  t.regex(spec.program ?? '', /tracepoint:block:block_rq_complete/);
  t.regex(spec.program ?? '', /@usecs = hist\(/);
  t.notRegex(spec.program ?? '', /kprobe:/);
});

test('every sample validates with the default settings and maps to a ConfigMap and Job', async (t) => {
  let traceJobs = 0;
  for (const file of await sampleFiles()) {
    const docs = await documents(file);
    const configMaps = docs.filter((d) => d['kind'] === 'ConfigMap');
    for (const doc of docs.filter((d) => d['kind'] === 'TraceJob')) {
      traceJobs++;
      const metadata = { ...(doc['metadata'] as object), namespace: 'default', uid: 'uid-1' };
      const result = validateTraceJob({ ...doc, metadata, status: { id: ID } }, defaultOperatorSettings());
      if (!result.ok) {
        t.fail(`${file}: ${JSON.stringify(result.errors)}`);
        continue;
      }
      const tj: TraceJob = result.traceJob;
      t.notRegex(JSON.stringify(tj.spec), /kprobe:/, `${file} must attach without kprobes`);
      const ref = tj.spec.programFrom?.configMapKeyRef;
      const program = resolveProgram(
        tj,
        ref === undefined
          ? undefined
          : (configMaps.find((c) => (c['metadata'] as { name: string }).name === ref.name) as {
              data?: Record<string, string>;
            }),
      );
      t.true(program.ok, `${file}: ${JSON.stringify(program)}`);
      if (!program.ok) continue;
      const target: ResolvedTarget =
        tj.spec.targetPod === undefined
          ? { kind: 'node', nodeName: 'kwok-node-0', hostnameLabel: 'kwok-node-0' }
          : {
              kind: 'pod',
              nodeName: 'kwok-node-0',
              hostnameLabel: 'kwok-node-0',
              podUID: 'p',
              containerName: tj.spec.targetPod.container ?? 'app',
              containerID: 'containerd://c',
            };
      const { configMap, job } = buildTraceObjects(tj, target, defaultOperatorSettings(), program.program);
      t.is(configMap.data?.['program.bt'], program.program, file);
      t.is(job.spec?.template.spec?.containers.length, 1, file);
      t.is(job.spec?.activeDeadlineSeconds, (tj.spec.deadline ?? 0) + (tj.spec.deadlineGracePeriod ?? 0), file);
    }
  }
  t.true(traceJobs >= 4);
});
