import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { TRIGGER_CRD_FILE, renderTriggerCrdYaml, traceTriggerCrd } from '../../src/tracetrigger/crd.ts';
import type { JsonValue } from '../../src/tracejob/crd.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
type Obj = { [key: string]: JsonValue };
const obj = (v: JsonValue | undefined): Obj => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`not an object: ${JSON.stringify(v)}`);
  return v;
};
const version = () => obj((obj(traceTriggerCrd()['spec'])['versions'] as JsonValue[])[0]);
const openApi = () => obj(obj(version()['schema'])['openAPIV3Schema']);
const prop = (schema: Obj, name: string) => obj(obj(schema['properties'])[name]);

test('the committed TraceTrigger CRD is what `npm run manifests` generates', async (t) => {
  const committed = await readFile(path.join(root, TRIGGER_CRD_FILE), 'utf8');
  t.is(committed, renderTriggerCrdYaml(), 'config/crd is stale: run `npm run manifests` and commit the result');
  t.is(parseAllDocuments(committed).length, 1);
});

test('names, short name, status subresource, printer columns', (t) => {
  const spec = obj(traceTriggerCrd()['spec']);
  t.is(spec['scope'], 'Namespaced');
  t.deepEqual(obj(spec['names'])['shortNames'], ['ttr']);
  t.is(obj(spec['names'])['plural'], 'tracetriggers');
  t.deepEqual(version()['subresources'], { status: {} });
  const columns = (version()['additionalPrinterColumns'] as Obj[]).map((c) => c['name']);
  t.true(columns.includes('Ready') && columns.includes('Last Fired') && columns.includes('Fired'));
});

test('the template has no target and keeps the TraceJob program rule; every spec field is described', (t) => {
  const spec = prop(openApi(), 'spec');
  const templateSpec = prop(prop(spec, 'template'), 'spec');
  const fields = Object.keys(obj(templateSpec['properties']));
  t.false(fields.includes('hostname'));
  t.false(fields.includes('targetPod'));
  t.true(fields.includes('program') && fields.includes('deadline'));
  t.regex(JSON.stringify(templateSpec['x-kubernetes-validations']), /has\(self.program\) != has\(self.programFrom\)/);
  for (const name of [
    'alert',
    'schedule',
    'timeZone',
    'concurrencyPolicy',
    'startingDeadlineSeconds',
    'nodeSelector',
    'maxNodes',
    'cooldownSeconds',
    'maxActive',
    'successfulRunsHistoryLimit',
    'failedRunsHistoryLimit',
    'suspend',
    'template',
  ]) {
    t.is(typeof prop(spec, name)['description'], 'string', `spec.${name} has a description`);
  }
  const status = prop(openApi(), 'status');
  for (const name of ['conditions', 'lastFired', 'active', 'runs', 'counts', 'lastHandledFire', 'lastScheduleTime'])
    t.truthy(prop(status, name), `status.${name}`);
});
