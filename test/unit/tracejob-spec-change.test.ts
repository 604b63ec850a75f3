import test from 'ava';
import { canonicalJson, jsonEqual } from '../../src/tracejob/canonical-json.ts';
import type { V1Job } from '@kubernetes/client-node';
import {
  SPEC_HASH_ANNOTATION_KEY,
  specAppliedCondition,
  specChangedAfterStart,
  specHash,
} from '../../src/tracejob/spec-change.ts';
import type { TraceJobSpec } from '../../src/tracejob/schema.ts';

const spec: TraceJobSpec = {
  program: 'BEGIN { }',
  hostname: 'n1',
  deadline: 60,
  deadlineGracePeriod: 30,
  fetchHeaders: false,
  stop: false,
};
const jobFor = (s: TraceJobSpec): V1Job => ({ metadata: { annotations: { [SPEC_HASH_ANNOTATION_KEY]: specHash(s) } } });

test('specHash is short, stable and independent of key order and undefined fields', (t) => {
  t.regex(specHash(spec), /^[0-9a-f]{16}$/);
  t.is(
    specHash(spec),
    specHash({
      stop: false,
      fetchHeaders: false,
      deadlineGracePeriod: 30,
      deadline: 60,
      hostname: 'n1',
      program: 'BEGIN { }',
    }),
  );
  t.is(specHash(spec), specHash({ ...spec, targetPod: undefined }));
});

test('specHash changes with every field that defines the trace', (t) => {
  const changes: Partial<TraceJobSpec>[] = [
    { program: 'BEGIN { exit(); }' },
    { hostname: 'n2' },
    { deadline: 61 },
    { deadlineGracePeriod: 31 },
    { fetchHeaders: true },
    { programArgs: ['1'] },
    { serviceAccount: 'sa' },
    { imageNameTag: 'ghcr.io/x/y:1' },
    { initImageNameTag: 'ghcr.io/x/z:1' },
  ];
  for (const change of changes) t.not(specHash({ ...spec, ...change }), specHash(spec), JSON.stringify(change));
});

test('stop and ttlSecondsAfterFinished may change after the start', (t) => {
  t.is(specHash({ ...spec, stop: true }), specHash(spec));
  t.is(specHash({ ...spec, ttlSecondsAfterFinished: 60 }), specHash(spec));
  t.false(specChangedAfterStart({ ...spec, stop: true, ttlSecondsAfterFinished: 5 }, jobFor(spec)));
});

test('specChangedAfterStart and the SpecApplied condition', (t) => {
  t.false(specChangedAfterStart(spec, undefined));
  t.false(specChangedAfterStart(spec, { metadata: {} }), 'a Job without the annotation counts as unchanged');
  t.false(specChangedAfterStart(spec, jobFor(spec)));
  t.true(specChangedAfterStart({ ...spec, deadline: 120 }, jobFor(spec)));
  t.like(specAppliedCondition({ ...spec, deadline: 120 }, jobFor(spec)), {
    type: 'SpecApplied',
    status: 'False',
    reason: 'SpecChangedAfterStart',
  });
  t.regex(specAppliedCondition({ ...spec, deadline: 120 }, jobFor(spec)).message, /Create a new TraceJob/);
  t.like(specAppliedCondition(spec, jobFor(spec)), { type: 'SpecApplied', status: 'True', reason: 'SpecApplied' });
});

test('canonical JSON sorts keys by code point and leaves out undefined members', (t) => {
  t.is(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }], B: null }), '{"B":null,"a":[{"c":"x"}],"b":1}');
  t.is(canonicalJson({ x: 1, y: 2 }), canonicalJson({ y: 2, x: 1 }));
});

test('jsonEqual says equal exactly when the canonical JSON texts are equal', (t) => {
  const values: unknown[] = [
    {},
    { a: undefined },
    { a: 1 },
    { a: '1' },
    { a: null },
    { a: [1, 2] },
    { a: [2, 1] },
    { a: [1, 2], b: { c: 'x' } },
    { b: { c: 'x', d: undefined }, a: [1, 2] },
    { b: { c: 'y' }, a: [1, 2] },
    [{ x: 1 }],
    [{ x: 1, y: undefined }],
    [],
    'a',
    1,
    true,
    null,
  ];
  for (const a of values)
    for (const b of values)
      t.is(jsonEqual(a, b), canonicalJson(a) === canonicalJson(b), `${canonicalJson(a)} against ${canonicalJson(b)}`);
});
