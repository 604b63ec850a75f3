#!/usr/bin/env node
// `npm run manifests`: writes the TraceJob and TraceTrigger CRDs and their
// kustomization from the schema sources (src/tracejob/schema.ts,
// src/tracetrigger/schema.ts). test/unit/tracejob-crd.test.ts and
// tracetrigger-crd.test.ts fail when the committed files differ from what this writes.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_FILE, CRD_KUSTOMIZATION_FILE, renderCrdYaml } from '../src/tracejob/crd.ts';
import { TRIGGER_CRD_FILE, renderAllCrdsKustomization, renderTriggerCrdYaml } from '../src/tracetrigger/crd.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

for (const [file, content] of [
  [CRD_FILE, renderCrdYaml()],
  [TRIGGER_CRD_FILE, renderTriggerCrdYaml()],
  [CRD_KUSTOMIZATION_FILE, renderAllCrdsKustomization()],
] as const) {
  const target = path.join(root, file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, content);
  process.stdout.write(`wrote ${file}\n`);
}
