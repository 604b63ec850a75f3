// What the page loads, all from this machine: its HTML and CSS, its modules
// and the chart modules it shares with `trace-operator plot` (TypeScript
// sources with the types stripped, as Node itself runs them, so there is no
// front-end build step), and the UMD bundles of d3 and Observable Plot from
// node_modules. Only the files listed here are served.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as nodeModule from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The source tree the page is served from: this module's own when Node runs
 * src/ (the `trace-operator` bin), or the checkout's src/ beside a bundled
 * dist/ (`node dist/cli.js`). The images carry dist/ alone, so there is none.
 */
export function pageSourceDir(moduleDir: string): string {
  const candidates = [path.resolve(moduleDir, '..'), path.resolve(moduleDir, '..', 'src')];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'dashboard', 'page', 'index.html')));
  if (found !== undefined) return found;
  throw new Error(
    `the dashboard's page is not here (no dashboard/page/index.html in ${candidates.join(' or ')}): ` +
      'run `trace-operator dashboard` from a checkout or an npm install of trace-operator, not from an image',
  );
}

export interface Asset {
  contentType: string;
  body: Buffer;
}

type Source = { file: string; kind: 'ts' | 'raw'; contentType: string };

/** The browser (UMD) bundle a package declares in its exports' "umd" condition (d3 and Plot both do). */
function umdBundle(pkg: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve(pkg)));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const json = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; exports?: { umd?: string } };
      if (json.name === pkg) {
        if (json.exports?.umd === undefined) throw new Error(`package ${pkg} declares no "umd" export to serve`);
        return path.join(dir, json.exports.umd);
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the package.json of ${pkg}`);
    dir = up;
  }
}

const JS = 'text/javascript; charset=utf-8';

/** URL path -> file. Modules keep their source paths so their relative imports resolve in the browser. */
function sources(): Map<string, Source> {
  const srcDir = pageSourceDir(path.dirname(fileURLToPath(import.meta.url)));
  const ts = (rel: string): [string, Source] => [
    `/src/${rel}`,
    { file: path.join(srcDir, rel), kind: 'ts', contentType: JS },
  ];
  return new Map<string, Source>([
    [
      '/',
      { file: path.join(srcDir, 'dashboard/page/index.html'), kind: 'raw', contentType: 'text/html; charset=utf-8' },
    ],
    [
      '/style.css',
      { file: path.join(srcDir, 'dashboard/page/style.css'), kind: 'raw', contentType: 'text/css; charset=utf-8' },
    ],
    ts('dashboard/page/app.ts'),
    ts('dashboard/page/dom.ts'),
    ts('plot/charts.ts'),
    ts('plot/buckets.ts'),
    ts('plot/from-objects.ts'),
    ts('plot/trigger-runs.ts'),
    ['/vendor/d3.min.js', { file: umdBundle('d3'), kind: 'raw', contentType: JS }],
    ['/vendor/plot.umd.min.js', { file: umdBundle('@observablehq/plot'), kind: 'raw', contentType: JS }],
  ]);
}

// node:module's stripTypeScriptTypes is what Node uses to run .ts files; it
// warns once that it is experimental, which says nothing to a dashboard user.
type Strip = (code: string, options?: { mode?: 'strip' | 'transform' }) => string;
const strip = (nodeModule as unknown as { stripTypeScriptTypes: Strip }).stripTypeScriptTypes;

/** Serves the page's files, read once and kept. */
export class Assets {
  readonly #sources = sources();
  readonly #cache = new Map<string, Asset>();

  has(urlPath: string): boolean {
    return this.#sources.has(urlPath);
  }

  async get(urlPath: string): Promise<Asset | undefined> {
    const cached = this.#cache.get(urlPath);
    if (cached !== undefined) return cached;
    const source = this.#sources.get(urlPath);
    if (source === undefined) return undefined;
    const text = await readFile(source.file);
    const body = source.kind === 'ts' ? Buffer.from(quietly(() => strip(text.toString('utf8')))) : text;
    const asset = { contentType: source.contentType, body };
    this.#cache.set(urlPath, asset);
    return asset;
  }
}

function quietly<T>(work: () => T): T {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (text.includes('stripTypeScriptTypes')) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return work();
  } finally {
    process.emitWarning = emit;
  }
}
