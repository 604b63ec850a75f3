import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { Type } from '@sinclair/typebox';
import {
  CRD_FILE,
  CRD_KUSTOMIZATION_FILE,
  renderCrdYaml,
  toStructural,
  traceJobCrd,
  type JsonSchemaProps,
  type JsonValue,
} from '../../src/tracejob/crd.ts';
import { TraceJobSpec } from '../../src/tracejob/schema.ts';
import { renderAllCrdsKustomization } from '../../src/tracetrigger/crd.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

type Obj = { [key: string]: JsonValue };
const obj = (v: JsonValue | undefined): Obj => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`not an object: ${JSON.stringify(v)}`);
  return v;
};
const version = () => obj((obj(traceJobCrd()['spec'])['versions'] as JsonValue[])[0]);
const openApi = () => obj(obj(version()['schema'])['openAPIV3Schema']);
const specSchema = () => obj(obj(openApi()['properties'])['spec']);
const statusSchema = () => obj(obj(openApi()['properties'])['status']);
const prop = (schema: Obj, name: string) => obj(obj(schema['properties'])[name]);

test('the committed CRD is what `npm run manifests` generates from the schema source', async (t) => {
  const committed = await readFile(path.join(root, CRD_FILE), 'utf8');
  t.is(committed, renderCrdYaml(), 'config/crd is stale: run `npm run manifests` and commit the result');
  const kustomization = await readFile(path.join(root, CRD_KUSTOMIZATION_FILE), 'utf8');
  t.is(kustomization, renderAllCrdsKustomization(), 'config/crd/kustomization.yaml is stale: run `npm run manifests`');
  t.regex(kustomization, /- bases\/observe\.alexeldeib\.xyz_tracejobs\.yaml/);
});

test('the YAML round-trips to the CRD object (one document)', (t) => {
  const docs = parseAllDocuments(renderCrdYaml());
  t.is(docs.length, 1);
  t.deepEqual(docs[0]?.toJS(), traceJobCrd());
});

test('names, scope, short name, status subresource', (t) => {
  const crd = traceJobCrd();
  t.is(crd['apiVersion'], 'apiextensions.k8s.io/v1');
  t.is(obj(crd['metadata'])['name'], 'tracejobs.observe.alexeldeib.xyz');
  const spec = obj(crd['spec']);
  t.is(spec['group'], 'observe.alexeldeib.xyz');
  t.is(spec['scope'], 'Namespaced');
  t.deepEqual(spec['names'], {
    kind: 'TraceJob',
    listKind: 'TraceJobList',
    plural: 'tracejobs',
    singular: 'tracejob',
    shortNames: ['tj'],
    categories: ['tracing'],
  });
  t.is((spec['versions'] as JsonValue[]).length, 1);
  const v = version();
  t.is(v['name'], 'v1alpha1');
  t.true(v['served']);
  t.true(v['storage']);
  t.deepEqual(v['subresources'], { status: {} });
});

test('printer columns: ID, NODE, PHASE, RESULT, AGE by default', (t) => {
  const columns = version()['additionalPrinterColumns'] as Obj[];
  const byDefault = columns
    .filter((c) => c['priority'] === undefined)
    .map((c) => [String(c['name']).toUpperCase(), c['jsonPath']]);
  t.deepEqual(byDefault, [
    ['ID', '.status.id'],
    ['NODE', '.status.node'],
    ['PHASE', '.status.phase'],
    ['RESULT', '.status.result.outcome'],
    ['AGE', '.metadata.creationTimestamp'],
  ]);
  t.is(columns.find((c) => c['name'] === 'Age')?.['type'], 'date');
});

test("the original operator's spec fields are all present with their types; program and hostname no longer required", (t) => {
  const spec = specSchema();
  const types = Object.fromEntries(Object.entries(obj(spec['properties'])).map(([k, v]) => [k, obj(v)['type']]));
  t.like(types, {
    program: 'string',
    hostname: 'string',
    serviceAccount: 'string',
    imageNameTag: 'string',
    initImageNameTag: 'string',
    fetchHeaders: 'boolean',
    deadline: 'integer',
    deadlineGracePeriod: 'integer',
  });
  t.is(spec['required'], undefined);
  t.deepEqual(openApi()['required'], ['spec']);
  t.is(prop(statusSchema(), 'id')['type'], 'string');
});

test('defaults and bounds of the durations and the program', (t) => {
  const spec = specSchema();
  t.like(prop(spec, 'deadline'), { default: 3600, minimum: 1, maximum: 604800, format: 'int64' });
  t.like(prop(spec, 'deadlineGracePeriod'), { default: 30, minimum: 1, maximum: 3600 });
  t.like(prop(spec, 'ttlSecondsAfterFinished'), { minimum: 0, maximum: 31536000 });
  t.is(prop(spec, 'ttlSecondsAfterFinished')['default'], undefined);
  t.like(prop(spec, 'program'), { minLength: 1, maxLength: 262144 });
  t.true((prop(spec, 'program')['maxLength'] as number) < 1024 * 1024);
  t.like(prop(spec, 'stop'), { type: 'boolean', default: false });
  t.like(prop(spec, 'fetchHeaders'), { default: false });
});

test('CEL rules: exactly one program source, exactly one target, stop cannot be undone', (t) => {
  const rules = specSchema()['x-kubernetes-validations'] as Obj[];
  t.deepEqual(
    rules.map((r) => r['rule']),
    ['has(self.program) != has(self.programFrom)', 'has(self.hostname) != has(self.targetPod)'],
  );
  for (const r of rules) t.regex(String(r['message']), /set exactly one of/);
  const stopRules = prop(specSchema(), 'stop')['x-kubernetes-validations'] as Obj[];
  t.deepEqual(
    stopRules.map((r) => r['rule']),
    ['self || !oldSelf'],
  );
});

test('status: phase enum, conditions as a map list keyed by type, the result and output', (t) => {
  const status = statusSchema();
  t.deepEqual(prop(status, 'phase')['enum'], ['Pending', 'Running', 'Succeeded', 'Failed']);
  const conditions = prop(status, 'conditions');
  t.is(conditions['x-kubernetes-list-type'], 'map');
  t.deepEqual(conditions['x-kubernetes-list-map-keys'], ['type']);
  const condition = obj(conditions['items']);
  t.deepEqual(condition['required'], ['type', 'status', 'lastTransitionTime', 'reason', 'message']);
  t.deepEqual(prop(condition, 'status')['enum'], ['True', 'False', 'Unknown']);
  t.is(prop(condition, 'lastTransitionTime')['format'], 'date-time');
  t.deepEqual(Object.keys(obj(status['properties'])), [
    'id',
    'phase',
    'conditions',
    'observedGeneration',
    'node',
    'jobName',
    'startTime',
    'completionTime',
    'result',
    'output',
  ]);
  t.deepEqual(prop(prop(status, 'result'), 'outcome')['enum'], [
    'Completed',
    'DeadlineReached',
    'Stopped',
    'CompileError',
    'AttachError',
    'Error',
  ]);
  t.deepEqual(obj(prop(status, 'output')['properties']) && Object.keys(obj(prop(status, 'output')['properties'])), [
    'configMapName',
    'key',
    'bytes',
    'truncated',
  ]);
});

/** Walks every schema node with its path. */
function walk(node: Obj, at: string, visit: (node: Obj, at: string) => void): void {
  visit(node, at);
  for (const [name, child] of Object.entries(obj(node['properties'] ?? {}))) walk(obj(child), `${at}.${name}`, visit);
  if (node['items'] !== undefined) walk(obj(node['items']), `${at}[]`, visit);
  if (typeof node['additionalProperties'] === 'object') walk(obj(node['additionalProperties']), `${at}{}`, visit);
}

test('structural schema: every node has a type, no $ref/$id/const/anyOf/patternProperties, no additionalProperties beside properties', (t) => {
  const forbidden = [
    '$ref',
    '$id',
    '$schema',
    'const',
    'anyOf',
    'oneOf',
    'allOf',
    'patternProperties',
    'exclusiveMinimum',
    'x-kubernetes-preserve-unknown-fields',
  ];
  let nodes = 0;
  walk(openApi(), 'root', (node, at) => {
    nodes++;
    t.true(typeof node['type'] === 'string', `${at} has no type`);
    for (const key of forbidden) t.false(key in node, `${at} has ${key}`);
    if (node['properties'] !== undefined)
      t.false('additionalProperties' in node, `${at} mixes properties and additionalProperties`);
  });
  t.true(nodes > 50);
});

test('every field below spec and status has a description (kubectl explain teaches the API)', (t) => {
  const missing: string[] = [];
  for (const [name, schema] of [
    ['spec', specSchema()],
    ['status', statusSchema()],
  ] as const) {
    walk(schema, name, (node, at) => {
      if (typeof node['description'] !== 'string' || String(node['description']).length < 10) missing.push(at);
    });
  }
  t.deepEqual(missing, []);
});

test('the generated defaults are the ones runtime validation applies (one source)', (t) => {
  const spec = specSchema();
  for (const [name, schema] of Object.entries(TraceJobSpec.properties)) {
    t.is(prop(spec, name)['default'], (schema as { default?: JsonValue }).default, name);
  }
});

test('toStructural rejects what a structural schema cannot hold, naming the path', (t) => {
  t.throws(() => toStructural(Type.Object({ a: Type.Union([Type.String(), Type.Integer()]) }), 'x'), {
    message: /x\.a: only unions of literals/,
  });
  t.throws(() => toStructural(Type.Object({ a: Type.Any() }), 'x'), {
    message: /x\.a: TypeBox kind 'Any' has no structural-schema form/,
  });
  t.throws(() => toStructural(Type.String({ $id: 'S' }), 'x'), { message: /keyword '\$id' is not allowed/ });
  t.throws(() => toStructural(Type.Integer({ exclusiveMinimum: 0 }), 'x'), { message: /keyword 'exclusiveMinimum'/ });
  t.throws(() => toStructural(Type.Union([Type.Literal('a'), Type.Literal(1)]), 'x'), { message: /one type/ });
});

test('toStructural maps literals, unions of literals, records and arrays', (t) => {
  const out: JsonSchemaProps = toStructural(
    Type.Object(
      {
        l: Type.Literal('only'),
        u: Type.Union([Type.Literal(1), Type.Literal(2)], { description: 'd' }),
        r: Type.Optional(Type.Record(Type.String(), Type.Integer())),
        a: Type.Array(Type.Boolean(), { maxItems: 2 }),
      },
      { additionalProperties: false },
    ),
  );
  t.deepEqual(out, {
    type: 'object',
    properties: {
      l: { type: 'string', enum: ['only'] },
      u: { type: 'integer', description: 'd', enum: [1, 2] },
      r: { type: 'object', additionalProperties: { type: 'integer' } },
      a: { type: 'array', items: { type: 'boolean' }, maxItems: 2 },
    },
    required: ['l', 'u', 'a'],
  });
});

test('the YAML file starts with a do-not-edit header naming the generator', async (t) => {
  const committed = await readFile(path.join(root, CRD_FILE), 'utf8');
  t.regex(committed.split('\n')[0] ?? '', /^# Generated by `npm run manifests`.*Do not edit\.$/);
  t.is(obj(parse(committed.split('---\n').slice(1).join('---\n')) as JsonValue)['kind'], 'CustomResourceDefinition');
});
