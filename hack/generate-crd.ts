#!/usr/bin/env node
// `npm run manifests`: writes the TraceJob CRD and its kustomization from the
// schema source (src/tracejob/schema.ts). test/unit/tracejob-crd.test.ts
// fails when the committed files differ from what this writes.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_FILE, CRD_KUSTOMIZATION_FILE, renderCrdKustomization, renderCrdYaml } from '../src/tracejob/crd.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

for (const [file, content] of [
  [CRD_FILE, renderCrdYaml()],
  [CRD_KUSTOMIZATION_FILE, renderCrdKustomization()],
] as const) {
  const target = path.join(root, file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, content);
  process.stdout.write(`wrote ${file}\n`);
}
