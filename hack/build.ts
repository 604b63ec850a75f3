#!/usr/bin/env node
// `npm run build [-- --outDir=DIR]`: the CLI for the images, bundled by
// esbuild into DIR (dist/ by default), one chunk per command's code.
//
// Bundled rather than compiled file by file (tsc), because loading is the
// manager's first cost on every restart: the manager's 511 files (247 of
// them @sinclair/typebox) took 400-500 ms to import here, its bundled chunks
// 120-150 ms (bench/README.md, 2026-12-03). Type checking is not done here;
// `npm run typecheck` (and npm test) does it.
//
// Left out of the bundle, loaded from node_modules as before:
// @resvg/resvg-js (a native addon) and @kubernetes/client-node (imported
// only for kubeconfigs the built-in reader cannot serve; bundled it is a
// 17 MB chunk).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outDir: { type: 'string' } } });
const outDir = path.resolve(values.outDir ?? path.join(root, 'dist'));

await rm(outDir, { recursive: true, force: true });
await build({
  entryPoints: [path.join(root, 'src', 'cli.ts')],
  outdir: outDir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  sourcemap: 'linked',
  external: ['@resvg/resvg-js', '@kubernetes/client-node'],
  // The CommonJS packages in the bundle (prom-client, ws) call require() for
  // Node's own modules; an ES module has no require of its own.
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  logLevel: 'warning',
});
process.stdout.write(`bundled src/cli.ts into ${path.relative(process.cwd(), outDir) || '.'}\n`);
