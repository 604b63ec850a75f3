import test from 'ava';
import {
  defaultOperatorSettings,
  formatValidationErrors,
  pointerToField,
  validateTraceJob,
  VALIDATION_REASONS as R,
  type OperatorSettings,
  type ValidationError,
  type ValidationResult,
} from '../../src/tracejob/validate.ts';

const ID = '16f11776-5b39-494a-8341-718850061edc';

type Json = Record<string, unknown>;

function base(spec: Json = {}, extra: Json = {}): Json {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name: 'trace', namespace: 'default', uid: 'uid-1', generation: 1 },
    spec: { program: 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }', hostname: 'kwok-node-0', ...spec },
    ...extra,
  };
}

function errorsOf(result: ValidationResult): ValidationError[] {
  if (result.ok) throw new Error('expected validation to fail');
  return result.errors;
}

function expectError(
  t: import('ava').ExecutionContext,
  obj: unknown,
  field: string,
  reason: string,
  mentions: RegExp,
  settings: OperatorSettings = defaultOperatorSettings(),
) {
  const errors = errorsOf(validateTraceJob(obj, settings));
  const match = errors.find((e) => e.field === field && e.reason === reason);
  t.truthy(match, `expected ${field}/${reason}, got ${JSON.stringify(errors)}`);
  t.regex(match?.message ?? '', mentions);
}

test('a manifest of the original operator with only program and hostname is valid and gets the defaults', (t) => {
  const obj = base();
  const result = validateTraceJob(obj, defaultOperatorSettings());
  if (!result.ok) return t.fail(JSON.stringify(result.errors));
  const spec = result.traceJob.spec;
  t.is(spec.deadline, 3600);
  t.is(spec.deadlineGracePeriod, 30);
  t.is(spec.fetchHeaders, false);
  t.is(spec.stop, false);
  t.is(spec.program, 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }');
  t.is(spec.hostname, 'kwok-node-0');
  t.is(spec.ttlSecondsAfterFinished, undefined);
  t.is(spec.imageNameTag, undefined);
  // The input is not modified.
  t.is((obj['spec'] as Json)['deadline'], undefined);
  t.not(result.traceJob as unknown, obj);
});

test('the full field set of the original operator is valid and keeps its values', (t) => {
  const result = validateTraceJob(
    base(
      {
        serviceAccount: 'tracer',
        imageNameTag: 'ghcr.io/alexeldeib/trace-operator:v0.1.0',
        initImageNameTag: 'quay.io/iovisor/kubectl-trace-init:latest',
        fetchHeaders: true,
        deadline: 120,
        deadlineGracePeriod: 10,
      },
      { status: { id: ID } },
    ),
    defaultOperatorSettings(),
  );
  if (!result.ok) return t.fail(JSON.stringify(result.errors));
  const spec = result.traceJob.spec;
  t.is(spec.serviceAccount, 'tracer');
  t.is(spec.imageNameTag, 'ghcr.io/alexeldeib/trace-operator:v0.1.0');
  t.is(spec.initImageNameTag, 'quay.io/iovisor/kubectl-trace-init:latest');
  t.is(spec.fetchHeaders, true);
  t.is(spec.deadline, 120);
  t.is(spec.deadlineGracePeriod, 10);
  t.is(result.traceJob.status?.id, ID);
});

test('the new fields are valid together: pod target, programFrom, programArgs, stop, ttl', (t) => {
  const obj = base({
    hostname: undefined,
    program: undefined,
    targetPod: { name: 'web-0', container: 'nginx' },
    programFrom: { configMapKeyRef: { name: 'progs', key: 'a.bt' } },
    programArgs: ['1', 'nginx'],
    stop: true,
    ttlSecondsAfterFinished: 600,
  });
  const spec = obj['spec'] as Json;
  delete spec['hostname'];
  delete spec['program'];
  const result = validateTraceJob(obj, defaultOperatorSettings());
  if (!result.ok) return t.fail(JSON.stringify(result.errors));
  t.deepEqual(result.traceJob.spec.targetPod, { name: 'web-0', container: 'nginx' });
  t.deepEqual(result.traceJob.spec.programFrom, { configMapKeyRef: { name: 'progs', key: 'a.bt' } });
  t.deepEqual(result.traceJob.spec.programArgs, ['1', 'nginx']);
  t.is(result.traceJob.spec.stop, true);
  t.is(result.traceJob.spec.ttlSecondsAfterFinished, 600);
});

test('a status written by the operator is valid', (t) => {
  const status = {
    id: ID,
    phase: 'Succeeded',
    observedGeneration: 1,
    node: 'kwok-node-0',
    jobName: `kubectl-trace-${ID}`,
    startTime: '2024-01-02T03:04:05Z',
    completionTime: '2024-01-02T03:05:05.123Z',
    conditions: [
      {
        type: 'Succeeded',
        status: 'True',
        reason: 'DeadlineReached',
        message: 'ok',
        lastTransitionTime: '2024-01-02T03:05:05Z',
        observedGeneration: 1,
      },
    ],
    result: { outcome: 'DeadlineReached', exitCode: 0, maps: [], truncated: false },
    output: { configMapName: `kubectl-trace-${ID}-output`, key: 'output.txt', bytes: 10, truncated: false },
  };
  const result = validateTraceJob(base({}, { status }), defaultOperatorSettings());
  if (!result.ok) return t.fail(JSON.stringify(result.errors));
  t.deepEqual(result.traceJob.status, status);
});

test('not an object', (t) => {
  for (const value of [null, undefined, 'TraceJob', 3, []]) {
    const errors = errorsOf(validateTraceJob(value, defaultOperatorSettings()));
    t.is(errors.length, 1);
    t.is(errors[0]?.reason, R.InvalidObject);
    t.regex(errors[0]?.message ?? '', /expected a TraceJob object/);
  }
});

test('wrong apiVersion and kind', (t) => {
  expectError(
    t,
    { ...base(), apiVersion: 'observe.alexeldeib.xyz/v1' },
    'apiVersion',
    R.WrongAPIVersion,
    /must be "observe\.alexeldeib\.xyz\/v1alpha1"/,
  );
  expectError(t, { ...base(), kind: 'Job' }, 'kind', R.WrongKind, /must be "TraceJob"/);
  expectError(t, { ...base(), kind: undefined }, 'kind', R.WrongKind, /required/);
});

test('metadata: missing, name missing, invalid name and namespace', (t) => {
  expectError(t, { ...base(), metadata: undefined }, 'metadata', R.InvalidMetadata, /required/);
  expectError(t, { ...base(), metadata: { namespace: 'default' } }, 'metadata.name', R.InvalidName, /required/);
  expectError(
    t,
    { ...base(), metadata: { name: 'Bad_Name' } },
    'metadata.name',
    R.InvalidName,
    /valid Kubernetes name/,
  );
  expectError(t, { ...base(), metadata: { name: 'x'.repeat(254) } }, 'metadata.name', R.InvalidName, /at most 253/);
  expectError(
    t,
    { ...base(), metadata: { name: 'ok', namespace: 'Not.A.Label' } },
    'metadata.namespace',
    R.InvalidNamespace,
    /DNS label/,
  );
  expectError(
    t,
    { ...base(), metadata: { name: 'ok', labels: { a: 1 } } },
    'metadata.labels.a',
    R.InvalidMetadata,
    /must be a string/,
  );
});

test('spec: missing or not an object', (t) => {
  const { spec: _spec, ...noSpec } = base();
  expectError(t, noSpec, 'spec', R.MissingSpec, /spec is required/);
  expectError(t, { ...base(), spec: 'program' }, 'spec', R.InvalidSpec, /must be an object/);
});

test('unknown spec fields are rejected with the known fields listed', (t) => {
  expectError(
    t,
    base({ deadlin: 5 }),
    'spec.deadlin',
    R.UnknownField,
    /not a known field.*known fields: program, programFrom/,
  );
  expectError(
    t,
    base({ targetPod: { name: 'p', containr: 'c' }, hostname: undefined }),
    'spec.targetPod.containr',
    R.UnknownField,
    /known fields: name, container/,
  );
});

test('program: empty, blank, oversized, wrong type', (t) => {
  expectError(t, base({ program: '' }), 'spec.program', R.EmptyProgram, /must not be empty/);
  expectError(t, base({ program: ' \n\t ' }), 'spec.program', R.EmptyProgram, /is empty; write a bpftrace program/);
  expectError(
    t,
    base({ program: 'x'.repeat(256 * 1024 + 1) }),
    'spec.program',
    R.ProgramTooLarge,
    /at most 262144 characters/,
  );
  // Within the character limit but over the byte limit: 'é' is two bytes in UTF-8.
  expectError(
    t,
    base({ program: 'é'.repeat(200 * 1024) }),
    'spec.program',
    R.ProgramTooLarge,
    /409600 bytes; the limit is 262144 bytes/,
  );
  expectError(t, base({ program: 42 }), 'spec.program', R.InvalidProgram, /must be a string \(got 42\)/);
});

test('program: both or neither of program and programFrom', (t) => {
  expectError(
    t,
    base({ programFrom: { configMapKeyRef: { name: 'p', key: 'k' } } }),
    'spec.program',
    R.ProgramSourceConflict,
    /both set; keep exactly one/,
  );
  const neither = base();
  delete (neither['spec'] as Json)['program'];
  expectError(t, neither, 'spec.program', R.MissingProgram, /set spec.program .* or spec.programFrom/);
});

test('programFrom: malformed reference', (t) => {
  const spec = (programFrom: unknown) => {
    const obj = base({ programFrom });
    delete (obj['spec'] as Json)['program'];
    return obj;
  };
  expectError(
    t,
    spec({ configMapKeyRef: { name: 'p' } }),
    'spec.programFrom.configMapKeyRef.key',
    R.InvalidProgramFrom,
    /is required/,
  );
  expectError(
    t,
    spec({ configMapKeyRef: { name: 'P!', key: 'k' } }),
    'spec.programFrom.configMapKeyRef.name',
    R.InvalidProgramFrom,
    /valid Kubernetes name/,
  );
  expectError(
    t,
    spec({ configMapKeyRef: { name: 'p', key: 'a/b' } }),
    'spec.programFrom.configMapKeyRef.key',
    R.InvalidProgramFrom,
    /valid ConfigMap key/,
  );
  expectError(t, spec('configmap'), 'spec.programFrom', R.InvalidProgramFrom, /must be an object/);
});

test('programArgs: wrong types, too many, too long, NUL', (t) => {
  expectError(t, base({ programArgs: 'a b' }), 'spec.programArgs', R.InvalidProgramArgs, /must be a list/);
  expectError(t, base({ programArgs: [1] }), 'spec.programArgs[0]', R.InvalidProgramArgs, /must be a string/);
  expectError(
    t,
    base({ programArgs: Array.from({ length: 33 }, () => 'a') }),
    'spec.programArgs',
    R.InvalidProgramArgs,
    /at most 32 items/,
  );
  expectError(
    t,
    base({ programArgs: ['ok', 'x'.repeat(4097)] }),
    'spec.programArgs[1]',
    R.InvalidProgramArgs,
    /at most 4096 characters/,
  );
  expectError(t, base({ programArgs: ['a\0b'] }), 'spec.programArgs[0]', R.InvalidProgramArgs, /NUL character/);
});

test('target: both or neither of hostname and targetPod', (t) => {
  expectError(
    t,
    base({ targetPod: { name: 'web-0' } }),
    'spec.hostname',
    R.TargetConflict,
    /both set; keep exactly one/,
  );
  const neither = base();
  delete (neither['spec'] as Json)['hostname'];
  expectError(t, neither, 'spec.hostname', R.MissingTarget, /set spec.hostname .* or spec.targetPod.name/);
});

test('target: names that would make invalid object references', (t) => {
  expectError(t, base({ hostname: '' }), 'spec.hostname', R.InvalidHostname, /must not be empty/);
  expectError(t, base({ hostname: 'Node_1' }), 'spec.hostname', R.InvalidHostname, /valid Kubernetes name/);
  expectError(t, base({ hostname: 7 }), 'spec.hostname', R.InvalidHostname, /must be a string/);
  const pod = (targetPod: unknown) => {
    const obj = base({ targetPod });
    delete (obj['spec'] as Json)['hostname'];
    return obj;
  };
  expectError(t, pod({ name: 'Web' }), 'spec.targetPod.name', R.InvalidTargetPod, /valid Kubernetes name/);
  expectError(t, pod({ name: 'web', container: 'a.b' }), 'spec.targetPod.container', R.InvalidTargetPod, /DNS label/);
  expectError(t, pod({ container: 'a' }), 'spec.targetPod.name', R.InvalidTargetPod, /is required/);
  expectError(
    t,
    base({ serviceAccount: 'Tracer Account' }),
    'spec.serviceAccount',
    R.InvalidServiceAccount,
    /valid Kubernetes name/,
  );
});

test('durations: zero, negative, fractional, huge, wrong type', (t) => {
  expectError(t, base({ deadline: 0 }), 'spec.deadline', R.InvalidDeadline, /at least 1 \(got 0\)/);
  expectError(t, base({ deadline: -30 }), 'spec.deadline', R.InvalidDeadline, /at least 1 \(got -30\)/);
  expectError(t, base({ deadline: 1.5 }), 'spec.deadline', R.InvalidDeadline, /must be an integer/);
  expectError(t, base({ deadline: 604801 }), 'spec.deadline', R.InvalidDeadline, /at most 604800/);
  expectError(t, base({ deadline: '60' }), 'spec.deadline', R.InvalidDeadline, /must be an integer \(got "60"\)/);
  expectError(
    t,
    base({ deadlineGracePeriod: 0 }),
    'spec.deadlineGracePeriod',
    R.InvalidDeadlineGracePeriod,
    /at least 1/,
  );
  expectError(
    t,
    base({ deadlineGracePeriod: 3601 }),
    'spec.deadlineGracePeriod',
    R.InvalidDeadlineGracePeriod,
    /at most 3600/,
  );
  expectError(t, base({ ttlSecondsAfterFinished: -1 }), 'spec.ttlSecondsAfterFinished', R.InvalidTTL, /at least 0/);
  expectError(
    t,
    base({ ttlSecondsAfterFinished: 365 * 24 * 3600 + 1 }),
    'spec.ttlSecondsAfterFinished',
    R.InvalidTTL,
    /at most 31536000/,
  );
});

test('booleans of the wrong type', (t) => {
  expectError(t, base({ fetchHeaders: 'yes' }), 'spec.fetchHeaders', R.InvalidFetchHeaders, /must be true or false/);
  expectError(t, base({ stop: 1 }), 'spec.stop', R.InvalidStop, /must be true or false/);
});

test('images: not on the allow-list, malformed, and the allow-list rules', (t) => {
  expectError(
    t,
    base({ imageNameTag: 'docker.io/evil/bpftrace:1' }),
    'spec.imageNameTag',
    R.ImageNotAllowed,
    /not on the operator's image allow-list/,
  );
  expectError(
    t,
    base({ imageNameTag: 'ghcr.io/alexeldeib/trace-operator-evil:v1' }),
    'spec.imageNameTag',
    R.ImageNotAllowed,
    /allow-list/,
  );
  expectError(
    t,
    base({ imageNameTag: 'ghcr.io/alexeldeib/trace-operator:../x' }),
    'spec.imageNameTag',
    R.InvalidImage,
    /not a valid image reference/,
  );
  expectError(
    t,
    base({ imageNameTag: 'ghcr.io/a b' }),
    'spec.imageNameTag',
    R.InvalidImage,
    /must not contain whitespace/,
  );
  expectError(
    t,
    base({ fetchHeaders: true, initImageNameTag: 'quay.io/other/init:1' }),
    'spec.initImageNameTag',
    R.ImageNotAllowed,
    /allow-list/,
  );
  // An explicit init image is checked even when fetchHeaders is false.
  expectError(
    t,
    base({ initImageNameTag: 'quay.io/other/init:1' }),
    'spec.initImageNameTag',
    R.ImageNotAllowed,
    /allow-list/,
  );
  // Digests and tags of allowed repositories pass.
  for (const image of [
    'ghcr.io/alexeldeib/trace-operator:v9',
    `ghcr.io/alexeldeib/trace-operator@sha256:${'a'.repeat(64)}`,
  ]) {
    t.true(validateTraceJob(base({ imageNameTag: image }), defaultOperatorSettings()).ok, image);
  }
});

test('images: the defaults themselves must be allowed (a misconfigured operator is reported)', (t) => {
  const settings: OperatorSettings = { ...defaultOperatorSettings(), allowedImages: [] };
  expectError(
    t,
    base(),
    'spec.imageNameTag',
    R.ImageNotAllowed,
    /default image .* not on its own allow-list \(the allow-list is empty\)/,
    settings,
  );
  const exact: OperatorSettings = {
    ...defaultOperatorSettings(),
    allowedImages: ['registry.local/runner:1'],
    defaultImage: 'registry.local/runner:1',
  };
  t.true(validateTraceJob(base(), exact).ok);
  expectError(
    t,
    base({ imageNameTag: 'registry.local/runner:2' }),
    'spec.imageNameTag',
    R.ImageNotAllowed,
    /allowed: registry\.local\/runner:1/,
    exact,
  );
  // fetchHeaders uses the default init image, which is then checked.
  expectError(
    t,
    base({ fetchHeaders: true }),
    'spec.initImageNameTag',
    R.ImageNotAllowed,
    /default image "quay\.io\/iovisor\/kubectl-trace-init:latest"/,
    exact,
  );
});

test('status: malformed id and fields written around the schema', (t) => {
  expectError(t, base({}, { status: { id: 'not-a-uuid' } }), 'status.id', R.InvalidID, /lower-case UUID/);
  expectError(t, base({}, { status: { id: ID.toUpperCase() } }), 'status.id', R.InvalidID, /lower-case UUID/);
  expectError(
    t,
    base({}, { status: { phase: 'Done' } }),
    'status.phase',
    R.InvalidStatus,
    /one of "Pending", "Running", "Succeeded", "Failed"/,
  );
  expectError(t, base({}, { status: { startTime: 'yesterday' } }), 'status.startTime', R.InvalidStatus, /RFC 3339/);
  expectError(
    t,
    base(
      {},
      {
        status: {
          conditions: [
            { type: 'Ready', status: 'Yes', reason: 'x', message: '', lastTransitionTime: '2024-01-02T03:04:05Z' },
          ],
        },
      },
    ),
    'status.conditions[0].status',
    R.InvalidStatus,
    /"True", "False", "Unknown"/,
  );
  expectError(t, base({}, { status: 'done' }), 'status', R.InvalidStatus, /must be an object/);
});

test('every problem is reported at once, each field once', (t) => {
  const errors = errorsOf(
    validateTraceJob(
      base({ deadline: -1, deadlineGracePeriod: 0, imageNameTag: 'docker.io/x:1', extra: true }),
      defaultOperatorSettings(),
    ),
  );
  t.deepEqual(errors.map((e) => `${e.field}:${e.reason}`).sort(), [
    'spec.deadline:InvalidDeadline',
    'spec.deadlineGracePeriod:InvalidDeadlineGracePeriod',
    'spec.extra:UnknownField',
    'spec.imageNameTag:ImageNotAllowed',
  ]);
  t.is(formatValidationErrors(errors).split('\n').length, 4);
  t.regex(formatValidationErrors(errors), /^UnknownField: spec\.extra|InvalidDeadline: spec\.deadline/m);
});

test('reasons are CamelCase, usable as condition reasons', (t) => {
  for (const reason of Object.values(R)) t.regex(reason, /^[A-Z][A-Za-z0-9]*$/);
});

test('pointerToField turns JSON pointers into field paths', (t) => {
  t.is(pointerToField('/spec/programArgs/2'), 'spec.programArgs[2]');
  t.is(pointerToField('/metadata/labels/a~1b'), 'metadata.labels.a/b');
  t.is(pointerToField('/status/conditions/0/type'), 'status.conditions[0].type');
  t.is(pointerToField(''), '');
});

test('metadata the controller reads (timestamps, finalizers) is typed and kept', (t) => {
  const metadata = {
    name: 'trace',
    namespace: 'default',
    uid: 'u',
    creationTimestamp: '2024-01-01T00:00:00Z',
    deletionTimestamp: '2024-01-01T00:05:00Z',
    finalizers: ['x/y'],
    managedFields: [{ manager: 'kubectl' }],
  };
  const result = validateTraceJob({ ...base(), metadata }, defaultOperatorSettings());
  if (!result.ok) return t.fail(JSON.stringify(result.errors));
  t.is(result.traceJob.metadata.deletionTimestamp, '2024-01-01T00:05:00Z');
  t.is(result.traceJob.metadata.creationTimestamp, '2024-01-01T00:00:00Z');
  t.deepEqual(result.traceJob.metadata.finalizers, ['x/y']);
  t.deepEqual((result.traceJob.metadata as Record<string, unknown>)['managedFields'], [{ manager: 'kubectl' }]);
  expectError(
    t,
    { ...base(), metadata: { name: 'trace', finalizers: 'x' } },
    'metadata.finalizers',
    R.InvalidMetadata,
    /must be a list/,
  );
});
