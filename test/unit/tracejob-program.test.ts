import test from 'ava';
import { resolveProgram, PROGRAM_REASONS } from '../../src/tracejob/program.ts';
import { buildOutputConfigMap, keepTail, outputConfigMapName } from '../../src/tracejob/output-configmap.ts';
import { programTextErrors, type TraceJob } from '../../src/tracejob/validate.ts';

const ID = '16f11776-5b39-494a-8341-718850061edc';
const tj = (spec: TraceJob['spec']): TraceJob => ({
  apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
  kind: 'TraceJob',
  metadata: { name: 'opens', namespace: 'ns1', uid: 'uid-9' },
  spec,
  status: { id: ID },
});
const fromRef = tj({ hostname: 'n', programFrom: { configMapKeyRef: { name: 'progs', key: 'opens.bt' } } });

test('resolveProgram: inline program wins without a ConfigMap', (t) => {
  t.deepEqual(resolveProgram(tj({ hostname: 'n', program: 'BEGIN { exit(); }' }), undefined), {
    ok: true,
    program: 'BEGIN { exit(); }',
  });
});

test('resolveProgram: reads the referenced key', (t) => {
  t.deepEqual(resolveProgram(fromRef, { data: { 'opens.bt': 'tracepoint:syscalls:sys_enter_openat { }' } }), {
    ok: true,
    program: 'tracepoint:syscalls:sys_enter_openat { }',
  });
});

test('resolveProgram: missing ConfigMap, missing key, empty and oversized values', (t) => {
  const noCm = resolveProgram(fromRef, undefined);
  t.deepEqual(noCm.ok ? undefined : [noCm.error.field, noCm.error.reason], [
    'spec.programFrom.configMapKeyRef.name',
    PROGRAM_REASONS.ProgramConfigMapNotFound,
  ]);
  t.regex(
    noCm.ok ? '' : noCm.error.message,
    /ConfigMap progs .* does not exist in namespace ns1; create it or fix the name/,
  );

  const noKey = resolveProgram(fromRef, { data: { 'a.bt': 'x', 'b.bt': 'y' } });
  t.deepEqual(noKey.ok ? undefined : [noKey.error.field, noKey.error.reason], [
    'spec.programFrom.configMapKeyRef.key',
    PROGRAM_REASONS.ProgramKeyNotFound,
  ]);
  t.regex(noKey.ok ? '' : noKey.error.message, /no data key "opens\.bt"; its keys are: a\.bt, b\.bt/);
  const noData = resolveProgram(fromRef, {});
  t.regex(noData.ok ? '' : noData.error.message, /it has no data keys/);

  const empty = resolveProgram(fromRef, { data: { 'opens.bt': '   ' } });
  t.deepEqual(empty.ok ? undefined : [empty.error.field, empty.error.reason], [
    'spec.programFrom.configMapKeyRef.key',
    'EmptyProgram',
  ]);
  const big = resolveProgram(fromRef, { data: { 'opens.bt': 'x'.repeat(256 * 1024 + 1) } });
  t.deepEqual(big.ok ? undefined : [big.error.field, big.error.reason], [
    'spec.programFrom.configMapKeyRef.key',
    'ProgramTooLarge',
  ]);
  const neither = resolveProgram(tj({ hostname: 'n' }), undefined);
  t.is(neither.ok ? undefined : neither.error.reason, 'MissingProgram');
});

test('programTextErrors: exactly at the byte limit is fine', (t) => {
  t.deepEqual(programTextErrors('x'.repeat(256 * 1024), 'spec.program'), []);
  t.is(programTextErrors('x'.repeat(256 * 1024 + 1), 'spec.program')[0]?.reason, 'ProgramTooLarge');
});

test('keepTail keeps short output whole', (t) => {
  t.deepEqual(keepTail('hello\n', 100), { text: 'hello\n', truncated: false, bytes: 6 });
});

test('keepTail keeps the end, from a line start, with a note, within the budget', (t) => {
  const lines = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n') + '\n@usecs: 42\n';
  const kept = keepTail(lines, 500);
  t.true(kept.truncated);
  t.is(kept.bytes, new TextEncoder().encode(lines).byteLength);
  t.true(new TextEncoder().encode(kept.text).byteLength <= 500);
  t.true(kept.text.startsWith('[trace-operator: output truncated, the beginning was dropped]\nline '));
  t.true(kept.text.endsWith('line 999\n@usecs: 42\n'));
});

test('keepTail never splits a UTF-8 character', (t) => {
  const text = 'é'.repeat(1000);
  const kept = keepTail(text, 301);
  t.true(kept.truncated);
  t.false(kept.text.includes('\uFFFD'));
  t.true(new TextEncoder().encode(kept.text).byteLength <= 301);
});

test('buildOutputConfigMap: owned, named kubectl-trace-<id>-output, not labelled for kubectl trace delete', (t) => {
  const { configMap, reference } = buildOutputConfigMap(fromRef, 'out\n');
  t.is(outputConfigMapName(ID), `kubectl-trace-${ID}-output`);
  t.is(configMap.metadata?.name, `kubectl-trace-${ID}-output`);
  t.is(configMap.metadata?.namespace, 'ns1');
  t.deepEqual(configMap.metadata?.labels, {
    'observe.alexeldeib.xyz/trace-id': ID,
    'app.kubernetes.io/managed-by': 'trace-operator',
  });
  t.deepEqual(configMap.metadata?.annotations, { 'observe.alexeldeib.xyz/tracejob': 'opens' });
  t.deepEqual(configMap.metadata?.ownerReferences, [
    {
      apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
      kind: 'TraceJob',
      name: 'opens',
      uid: 'uid-9',
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  t.deepEqual(configMap.data, { 'output.txt': 'out\n' });
  t.deepEqual(reference, {
    configMapName: `kubectl-trace-${ID}-output`,
    key: 'output.txt',
    bytes: 4,
    truncated: false,
  });
  const big = buildOutputConfigMap(fromRef, 'y'.repeat(2000), 1000);
  t.true(big.reference.truncated);
  t.is(big.reference.bytes, 2000);
});

test('keepTail keeps a whole first line when the cut falls on a line start', (t) => {
  const note = '[trace-operator: output truncated, the beginning was dropped]\n';
  const budget = new TextEncoder().encode(note).byteLength + 8;
  const kept = keepTail(`${'a'.repeat(100)}\nbbb\nccc\n`, budget);
  t.is(kept.text, `${note}bbb\nccc\n`);
});
