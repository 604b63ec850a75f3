import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { defaultOperatorSettings } from '../../src/tracejob/index.ts';
import { validateTraceTrigger } from '../../src/tracetrigger/validate.ts';
import { parseSchedule } from '../../src/tracetrigger/schedule.ts';

const samplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'samples');
const FLEET_SAMPLES = [
  'observe_v1alpha1_tracetrigger_scheduled_biolatency.yaml',
  'observe_v1alpha1_tracetrigger_fleet_runqlat.yaml',
];

for (const file of FLEET_SAMPLES) {
  test(`${file} is a valid TraceTrigger with a node selector`, async (t) => {
    const obj = parse(await readFile(path.join(samplesDir, file), 'utf8')) as {
      metadata: Record<string, unknown>;
      spec: { schedule?: string; timeZone?: string; nodeSelector?: unknown };
    };
    const validation = validateTraceTrigger(
      { ...obj, metadata: { ...obj.metadata, namespace: 'default' } },
      defaultOperatorSettings(),
    );
    t.true(validation.ok, validation.ok ? '' : validation.problems.map((p) => p.message).join('; '));
    t.truthy(obj.spec.nodeSelector);
    if (obj.spec.schedule !== undefined) t.true(parseSchedule(obj.spec.schedule, obj.spec.timeZone).ok);
  });
}
