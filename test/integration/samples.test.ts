// The samples and the generated CRD against the real API server (server-side
// dry runs and a few real creates), the original operator's manifests, the
// schema's rejections, and each sample program against Debian's real
// bpftrace: it must compile and attach on this kernel (tracepoints, no kprobes).
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const samplesDir = path.join(root, 'config', 'samples');
// Both generated CRDs: the samples kustomization holds TraceTriggers as well as TraceJobs.
const crdDir = path.join(root, 'config', 'crd', 'bases');
// Read synchronously: ava needs every test declared synchronously.
const sampleFiles = readdirSync(samplesDir)
  .filter((f) => f.startsWith('observe_v1alpha1_tracejob') && f.endsWith('.yaml'))
  .sort();

let crdInstalled: Promise<void> | undefined;

/** Fails the test unless the local control plane runs; installs the CRDs once. */
async function needCluster(): Promise<void> {
  if (!clusterAvailable())
    throw new Error(
      'the local control plane is not running: start it with `npm run cluster:up`, then run these tests again',
    );
  crdInstalled ??= (async () => {
    const applied = await kubectl([
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=trace-operator-tests',
      '-f',
      crdDir,
    ]);
    if (applied.exitCode !== 0)
      throw new Error(`the API server rejected the generated CRDs in ${crdDir}: ${applied.stderr}`);
    const established = await kubectl([
      'wait',
      '--for',
      'condition=established',
      '--timeout=60s',
      'crd/tracejobs.observe.alexeldeib.xyz',
      'crd/tracetriggers.observe.alexeldeib.xyz',
    ]);
    if (established.exitCode !== 0) throw new Error(`the CRDs did not become Established: ${established.stderr}`);
  })();
  await crdInstalled;
}

async function namespace(t: ExecutionContext): Promise<string> {
  await needCluster();
  const ns = await createTestNamespace('samples');
  t.teardown(ns.cleanup);
  return ns.name;
}

const traceJob = (spec: Record<string, unknown>, name = 'tj') =>
  stringify({ apiVersion: 'observe.alexeldeib.xyz/v1alpha1', kind: 'TraceJob', metadata: { name }, spec });

for (const file of sampleFiles) {
  test(`sample ${file} passes a server-side dry run`, async (t) => {
    const ns = await namespace(t);
    const result = await kubectl(['apply', '--dry-run=server', '-f', path.join(samplesDir, file)], { namespace: ns });
    t.is(result.exitCode, 0, result.stderr);
    t.regex(result.stdout, /tracejob\.observe\.alexeldeib\.xyz\/[a-z0-9-]+ created \(server dry run\)/);
  });
}

test('the whole samples kustomization applies (server dry run)', async (t) => {
  const ns = await namespace(t);
  const result = await kubectl(['apply', '--dry-run=server', '-k', samplesDir], { namespace: ns });
  t.is(result.exitCode, 0, result.stderr);
  t.is(
    result.stdout.match(/tracejob\.observe\.alexeldeib\.xyz\/\S+ created \(server dry run\)/g)?.length,
    samplePrograms().length,
  );
  t.regex(result.stdout, /configmap\/bpftrace-programs created \(server dry run\)/);
});

test('a created sample gets the schema defaults, the short name and the printer columns', async (t) => {
  const ns = await namespace(t);
  const created = await kubectl(['create', '-f', path.join(samplesDir, 'observe_v1alpha1_tracejob.yaml')], {
    namespace: ns,
  });
  t.is(created.exitCode, 0, created.stderr);
  const got = await kubectl(['get', 'tj', 'biolatency', '-o', 'json'], { namespace: ns });
  t.is(got.exitCode, 0, got.stderr);
  const spec = (JSON.parse(got.stdout) as { spec: Record<string, unknown> }).spec;
  t.is(spec['deadline'], 60);
  t.is(spec['deadlineGracePeriod'], 30);
  t.is(spec['fetchHeaders'], false);
  t.is(spec['stop'], false);
  t.is(spec['hostname'], 'kwok-node-0');
  const table = await kubectl(['get', 'tracejobs'], { namespace: ns });
  t.regex(table.stdout.split('\n')[0] ?? '', /^NAME\s+ID\s+NODE\s+PHASE\s+RESULT\s+AGE$/);
  const selected = await kubectl(['get', 'tj', '--field-selector', 'spec.hostname=kwok-node-0', '-o', 'name'], {
    namespace: ns,
  });
  t.is(selected.stdout.trim(), 'tracejob.observe.alexeldeib.xyz/biolatency', selected.stderr);
  const explained = await kubectl(['explain', 'tracejob.spec.deadline']);
  t.regex(explained.stdout, /Seconds the trace runs/);
});

test('a manifest of the original operator (program and hostname only) is accepted', async (t) => {
  const ns = await namespace(t);
  const original = `apiVersion: observe.alexeldeib.xyz/v1alpha1
kind: TraceJob
metadata:
  name: tracejob-sample
spec:
  hostname: aks-main-67151622-vmss000004
  program: |
    kprobe:blk_account_io_start
    {
      @start[arg0] = nsecs;
    }

    kprobe:blk_account_io_done
    /@start[arg0]/
    {
      @usecs = hist((nsecs - @start[arg0]) / 1000);
      delete(@start[arg0]);
    }
`;
  const result = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], {
    namespace: ns,
    input: original,
  });
  t.is(result.exitCode, 0, result.stderr);
  const spec = (JSON.parse(result.stdout) as { spec: Record<string, unknown> }).spec;
  t.is(spec['hostname'], 'aks-main-67151622-vmss000004');
  t.is(spec['deadline'], 3600);
  t.is(spec['deadlineGracePeriod'], 30);
});

test('a manifest with every field of the original operator is accepted unchanged', async (t) => {
  const ns = await namespace(t);
  const spec = {
    program: 'tracepoint:block:block_rq_issue { @[comm] = count(); }',
    hostname: 'kwok-node-0',
    serviceAccount: 'default',
    imageNameTag: 'quay.io/iovisor/kubectl-trace-bpftrace:latest',
    initImageNameTag: 'quay.io/iovisor/kubectl-trace-init:latest',
    fetchHeaders: true,
    deadline: 600,
    deadlineGracePeriod: 20,
  };
  const result = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], {
    namespace: ns,
    input: traceJob(spec),
  });
  t.is(result.exitCode, 0, result.stderr);
  t.like((JSON.parse(result.stdout) as { spec: Record<string, unknown> }).spec, spec);
});

const rejections: [string, Record<string, unknown>, RegExp][] = [
  [
    'a negative deadline',
    { program: 'BEGIN {}', hostname: 'n1', deadline: -5 },
    /spec\.deadline: Invalid value: -5: spec\.deadline in body should be greater than or equal to 1/,
  ],
  [
    'a zero grace period',
    { program: 'BEGIN {}', hostname: 'n1', deadlineGracePeriod: 0 },
    /spec\.deadlineGracePeriod in body should be greater than or equal to 1/,
  ],
  [
    'a deadline over seven days',
    { program: 'BEGIN {}', hostname: 'n1', deadline: 604801 },
    /spec\.deadline in body should be less than or equal to 604800/,
  ],
  [
    'a deadline that is a string',
    { program: 'BEGIN {}', hostname: 'n1', deadline: '60' },
    /spec\.deadline in body must be of type integer/,
  ],
  ['an empty program', { program: '', hostname: 'n1' }, /spec\.program in body should be at least 1 chars long/],
  [
    'no program at all',
    { hostname: 'n1' },
    /set exactly one of spec\.program \(the program text\) or spec\.programFrom/,
  ],
  [
    'both program and programFrom',
    { program: 'BEGIN {}', programFrom: { configMapKeyRef: { name: 'p', key: 'k' } }, hostname: 'n1' },
    /set exactly one of spec\.program/,
  ],
  ['no target', { program: 'BEGIN {}' }, /set exactly one of spec\.hostname \(trace a node\) or spec\.targetPod/],
  [
    'both hostname and targetPod',
    { program: 'BEGIN {}', hostname: 'n1', targetPod: { name: 'web' } },
    /set exactly one of spec\.hostname/,
  ],
  [
    'a hostname that is not a node name',
    { program: 'BEGIN {}', hostname: 'Node_1' },
    /spec\.hostname in body should match/,
  ],
  ['an unknown field', { program: 'BEGIN {}', hostname: 'n1', deadlin: 5 }, /unknown field "spec\.deadlin"/],
  [
    'too many program arguments',
    { program: 'BEGIN {}', hostname: 'n1', programArgs: Array.from({ length: 33 }, () => 'a') },
    /spec\.programArgs: Too many: 33: must have at most 32 items/,
  ],
];

for (const [what, spec, message] of rejections) {
  test(`the API server rejects ${what}`, async (t) => {
    const ns = await namespace(t);
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], { namespace: ns, input: traceJob(spec) });
    t.not(result.exitCode, 0, result.stdout);
    t.regex(result.stderr, message);
  });
}

test('the API server rejects a program over 256 KiB', async (t) => {
  const ns = await namespace(t);
  const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], {
    namespace: ns,
    input: traceJob({ program: `BEGIN { }\n${'/'.repeat(256 * 1024)}`, hostname: 'n1' }),
  });
  t.not(result.exitCode, 0);
  t.regex(result.stderr, /spec\.program: Too long: may not be (longer|more) than 262144/);
});

test('spec.stop cannot be set back to false once true', async (t) => {
  const ns = await namespace(t);
  const created = await kubectl(['create', '-f', '-'], {
    namespace: ns,
    input: traceJob({ program: 'BEGIN {}', hostname: 'n1', stop: true }, 'stopped'),
  });
  t.is(created.exitCode, 0, created.stderr);
  const undo = await kubectl(['patch', 'tj', 'stopped', '--type=merge', '-p', '{"spec":{"stop":false}}'], {
    namespace: ns,
  });
  t.not(undo.exitCode, 0);
  t.regex(undo.stderr, /spec\.stop cannot be set back to false/);
  const stop = await kubectl(['patch', 'tj', 'stopped', '--type=merge', '-p', '{"spec":{"deadline":30}}'], {
    namespace: ns,
  });
  t.is(stop.exitCode, 0, stop.stderr);
});

// --- each sample program against the real bpftrace ---------------------------------

interface SampleProgram {
  file: string;
  name: string;
  program: string;
  args: string[];
}

function samplePrograms(): SampleProgram[] {
  const out: SampleProgram[] = [];
  for (const file of sampleFiles) {
    const docs = parseAllDocuments(readFileSync(path.join(samplesDir, file), 'utf8')).map(
      (d) =>
        d.toJS() as {
          kind: string;
          metadata: { name: string };
          data?: Record<string, string>;
          spec?: Record<string, unknown>;
        },
    );
    for (const doc of docs.filter((d) => d.kind === 'TraceJob')) {
      const spec = doc.spec ?? {};
      const ref = (spec['programFrom'] as { configMapKeyRef: { name: string; key: string } } | undefined)
        ?.configMapKeyRef;
      const program =
        ref === undefined
          ? String(spec['program'])
          : docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === ref.name)?.data?.[ref.key];
      if (program === undefined) throw new Error(`${file}: programFrom names a ConfigMap key the file does not hold`);
      out.push({ file, name: doc.metadata.name, program, args: (spec['programArgs'] as string[] | undefined) ?? [] });
    }
  }
  return out;
}

/** How long bpftrace may take to compile, attach, print its maps and detach (slow on 2 busy cores). */
const BPFTRACE_RUN_LIMIT_MS = 120_000;

/** Runs bpftrace until it has attached, then SIGINTs it; resolves with its output and exit code. */
function attachAndStop(
  programFile: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bpftrace', [programFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    let nudger: NodeJS.Timeout | undefined;
    const killer = setTimeout(() => {
      stderr += `\n[test: bpftrace had not ended ${BPFTRACE_RUN_LIMIT_MS / 1000} s after it started; killed]`;
      child.kill('SIGKILL');
    }, BPFTRACE_RUN_LIMIT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!interrupted && /Attaching \d+ probes?\.\.\./.test(stdout)) {
        interrupted = true;
        // Let the probes fire a little before asking for the maps.
        setTimeout(() => {
          child.kill('SIGINT');
          // As the runner does: bpftrace v0.17 misses a SIGINT that lands while it
          // is still attaching, so nudge it with SIGTERM (same handler) until it ends.
          nudger = setInterval(() => child.kill('SIGTERM'), 1000);
        }, 500);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => {
      clearTimeout(killer);
      reject(
        new Error(`could not run bpftrace (install it: apt-get install bpftrace): ${error.message}`, { cause: error }),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      clearInterval(nudger);
      if (signal !== null) stderr += `\n[test: bpftrace was ended by ${signal}]`;
      resolve({ code, stdout, stderr });
    });
  });
}

for (const sample of samplePrograms()) {
  test.serial(`sample ${sample.name} (${sample.file}) compiles and attaches with the real bpftrace`, async (t) => {
    if (process.getuid?.() !== 0) return t.fail('bpftrace needs root to load BPF programs: run the tests as root');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'samples-bt-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    // As the runner does for pod targets: $container_pid becomes a real PID (ours, here).
    const programFile = path.join(dir, 'program.bt');
    await writeFile(programFile, sample.program.replaceAll('$container_pid', String(process.pid)));
    const run = await attachAndStop(programFile, sample.args);
    t.regex(run.stdout, /Attaching \d+ probes?\.\.\./, `bpftrace did not attach:\n${run.stderr}`);
    t.is(run.code, 0, run.stderr);
    t.notRegex(run.stderr, /ERROR: (?!.*RLIMIT_MEMLOCK)/, run.stderr);
  });
}
