// The real node's pause image (the sandbox image containerd starts for every
// pod): a static pause binary compiled from pause.c, written by hand into an
// OCI image layout under ~/.cache/trace-operator/pause-image as
// trace-operator.local/pause:<digest prefix>. It stays outside the Dockerfile
// because it is part of the local node, not of what the project ships; the
// runner and manager images come from the Dockerfile (hack/images/build.ts).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cacheRoot } from '../../test/cluster/paths.ts';
import { OciLayout, tarLayer, type Blob, type BuiltImage } from './oci.ts';

export const PAUSE_IMAGE_NAME = 'trace-operator.local/pause';

export type Log = (line: string) => void;

const here = path.dirname(fileURLToPath(import.meta.url));

export interface ImageCache {
  root: string;
  layout: OciLayout;
  /** Scratch space for root file systems and staging directories. */
  work: string;
  /** Small JSON files naming the layer blob each recipe produced. */
  layers: string;
}

export function imageCache(env: Readonly<Record<string, string | undefined>> = process.env): ImageCache {
  const root = path.join(cacheRoot(env), 'pause-image');
  return {
    root,
    layout: new OciLayout(path.join(root, 'oci')),
    work: path.join(root, 'work'),
    layers: path.join(root, 'layers'),
  };
}

const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

/** A layer built once per key: reused while its blob is still in the layout. */
async function cachedLayer(cache: ImageCache, key: string, build: (outFile: string) => Promise<void>): Promise<Blob> {
  const record = path.join(cache.layers, `${key}.json`);
  if (existsSync(record)) {
    const blob = JSON.parse(await readFile(record, 'utf8')) as Blob;
    if (cache.layout.has(blob.digest)) return blob;
  }
  await mkdir(cache.layers, { recursive: true });
  await mkdir(cache.work, { recursive: true });
  const out = path.join(cache.work, `${key}.tar`);
  await build(out);
  const blob = await cache.layout.putFile(out);
  await writeFile(record, `${JSON.stringify(blob)}\n`);
  return blob;
}

/** The pause image's one layer: pause.c compiled static. */
export async function pauseLayer(cache: ImageCache, log: Log): Promise<Blob> {
  const source = path.join(here, 'pause.c');
  const key = `pause-${sha256(await readFile(source)).slice(0, 16)}`;
  return cachedLayer(cache, key, async (out) => {
    const stage = path.join(cache.work, `${key}-root`);
    await rm(stage, { recursive: true, force: true });
    await mkdir(stage, { recursive: true });
    log('compiling the pause image (gcc -static)');
    const built = await execa('gcc', ['-static', '-Os', '-s', '-o', path.join(stage, 'pause'), source], {
      reject: false,
      all: true,
      stdin: 'ignore',
    });
    if (built.exitCode !== 0)
      throw new Error(`gcc -static pause.c failed (is libc6-dev installed?):\n${String(built.all)}`);
    await tarLayer(stage, out, { reproducible: true });
    await rm(stage, { recursive: true, force: true });
  });
}

/** Builds (or finds in the cache) the pause image and drops older versions from the cache. */
export async function buildPauseImage(
  log: Log,
  cache = imageCache(),
): Promise<{ pause: BuiltImage; layout: OciLayout }> {
  await cache.layout.init();
  const pause = await cache.layout.writeImage(PAUSE_IMAGE_NAME, [await pauseLayer(cache, log)], {
    Entrypoint: ['/pause'],
  });
  await cache.layout.prune([pause.ref]);
  return { pause, layout: cache.layout };
}
