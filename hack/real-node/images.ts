// The real node's two images, built here from Debian's packages and this
// repository, as the Dockerfile's runner target would build them:
//   - the runner: a debootstrap root file system with bpftrace (one cached
//     layer), plus node, the compiled CLI, its production node_modules and
//     the trace-operator wrapper (one layer, rebuilt when they change);
//   - the pause image: a static pause binary (pause.c).
// Both live in one OCI image layout under ~/.cache/trace-operator/images,
// named trace-operator.local/<name>:<digest prefix>, so a changed runner
// gets a new reference and an unchanged one is not imported again.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cacheRoot } from '../../test/cluster/paths.ts';
import { OciLayout, tarLayer, type Blob, type BuiltImage } from './oci.ts';

export const RUNNER_IMAGE_NAME = 'trace-operator.local/runner';
export const PAUSE_IMAGE_NAME = 'trace-operator.local/pause';

export type Log = (line: string) => void;

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');

/** What the runner image's base layer is made of; a change here makes a new base layer. */
const RUNNER_BASE = {
  suite: 'bookworm',
  variant: 'minbase',
  packages: ['bpftrace', 'ca-certificates'],
  // Package caches, documentation and device nodes have no place in a layer (the runtime mounts /dev).
  remove: ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info'],
  exclude: ['./dev/*', './proc/*', './sys/*'],
  recipe: 1,
} as const;

export interface ImageCache {
  root: string;
  layout: OciLayout;
  /** Scratch space for root file systems and staging directories. */
  work: string;
  /** Small JSON files naming the layer blob each recipe produced. */
  layers: string;
}

export function imageCache(env: Readonly<Record<string, string | undefined>> = process.env): ImageCache {
  const root = path.join(cacheRoot(env), 'images');
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

/**
 * The Debian mirror apt uses on this machine for `suite` (from
 * /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list), so debootstrap
 * fetches from the same place apt-get does. DEBIAN_MIRROR overrides it.
 */
export async function debianMirror(
  suite: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<string> {
  const override = env['DEBIAN_MIRROR'];
  if (override !== undefined && override !== '') return override;
  const candidates: string[] = [];
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir)
    ? (await readdir(dir)).filter((f) => f.endsWith('.sources')).map((f) => path.join(dir, f))
    : [];
  for (const file of files) {
    for (const stanza of (await readFile(file, 'utf8')).split(/\n\s*\n/)) {
      const field = (name: string): string[] =>
        stanza
          .match(new RegExp(`^${name}:\\s*(.*)$`, 'mi'))?.[1]
          ?.trim()
          .split(/\s+/) ?? [];
      if (field('Types').includes('deb') && field('Suites').includes(suite) && field('Components').includes('main'))
        candidates.push(...field('URIs'));
    }
  }
  if (existsSync('/etc/apt/sources.list')) {
    for (const line of (await readFile('/etc/apt/sources.list', 'utf8')).split('\n')) {
      const m = line.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/);
      if (m?.[2] === suite && (m[3] ?? '').split(/\s+/).includes('main') && m[1] !== undefined) candidates.push(m[1]);
    }
  }
  const mirror = candidates.find((uri) => /^https?:/.test(uri));
  if (mirror === undefined)
    throw new Error(
      `no apt source for Debian ${suite} main found in /etc/apt; set DEBIAN_MIRROR to a Debian mirror URL`,
    );
  return mirror;
}

/** The runner's base layer: Debian minbase with bpftrace, from debootstrap. Minutes the first time, then cached. */
export async function runnerBaseLayer(cache: ImageCache, log: Log): Promise<Blob> {
  const key = `runner-base-${sha256(JSON.stringify(RUNNER_BASE)).slice(0, 16)}`;
  return cachedLayer(cache, key, async (out) => {
    const rootfs = path.join(cache.work, `${key}-rootfs`);
    await rm(rootfs, { recursive: true, force: true });
    const mirror = await debianMirror(RUNNER_BASE.suite);
    log(
      `debootstrap ${RUNNER_BASE.suite} (${RUNNER_BASE.variant}, with ${RUNNER_BASE.packages.join(', ')}) for the runner image; this takes a few minutes once`,
    );
    const started = Date.now();
    const result = await execa(
      'debootstrap',
      [
        `--variant=${RUNNER_BASE.variant}`,
        `--include=${RUNNER_BASE.packages.join(',')}`,
        RUNNER_BASE.suite,
        rootfs,
        mirror,
      ],
      { stdin: 'ignore', all: true, reject: false },
    );
    if (result.exitCode !== 0) {
      throw new Error(
        `debootstrap failed (exit ${result.exitCode}); install it with 'apt-get install debootstrap' if it is missing. Last output:\n${String(result.all).split('\n').slice(-15).join('\n')}`,
      );
    }
    for (const entry of RUNNER_BASE.remove) {
      const dir = path.join(rootfs, entry);
      if (existsSync(dir))
        for (const child of await readdir(dir)) await rm(path.join(dir, child), { recursive: true, force: true });
    }
    await tarLayer(rootfs, out, { reproducible: false, exclude: [...RUNNER_BASE.exclude] });
    await rm(rootfs, { recursive: true, force: true });
    log(`runner base layer built in ${Math.round((Date.now() - started) / 1000)}s`);
  });
}

/** Top-level directories of the production dependencies in node_modules (what `npm prune --omit=dev` keeps). */
async function productionPackages(repoRoot: string): Promise<string[]> {
  const result = await execa('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
  });
  const modules = path.join(repoRoot, 'node_modules');
  const dirs = String(result.stdout)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${modules}${path.sep}`));
  const top = dirs
    .map((d) => path.relative(modules, d))
    .filter((rel) => !rel.includes(`${path.sep}node_modules${path.sep}`));
  if (top.length === 0) throw new Error(`npm ls found no production dependencies in ${modules}; run 'npm ci' first`);
  return [...new Set(top)].sort();
}

/**
 * The runner's application layer: node, dist/ compiled from src/ (as
 * `npm run build` does), package.json, the production node_modules and the
 * trace-operator wrapper, laid out as the Dockerfile's runner stage does.
 */
export async function runnerAppLayer(cache: ImageCache, repoRoot: string, log: Log): Promise<Blob> {
  const stage = path.join(cache.work, 'runner-app');
  await rm(stage, { recursive: true, force: true });
  const app = path.join(stage, 'app');
  const bin = path.join(stage, 'usr', 'local', 'bin');
  await mkdir(bin, { recursive: true });
  await mkdir(path.join(app, 'node_modules'), { recursive: true });

  const node = path.join(repoRoot, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node))
    throw new Error(`${node} is missing: the runner image takes node from the 'node' devDependency; run 'npm ci'`);
  await copyFile(await realpath(node), path.join(bin, 'node'));
  await chmod(path.join(bin, 'node'), 0o755);
  await copyFile(path.join(repoRoot, 'src', 'runner', 'bin', 'trace-operator'), path.join(bin, 'trace-operator'));
  await chmod(path.join(bin, 'trace-operator'), 0o755);
  await copyFile(path.join(repoRoot, 'package.json'), path.join(app, 'package.json'));

  const tsc = await execa(
    path.join(repoRoot, 'node_modules', '.bin', 'tsc'),
    ['-p', 'tsconfig.build.json', '--outDir', path.join(app, 'dist')],
    { cwd: repoRoot, reject: false, all: true, stdin: 'ignore' },
  );
  if (!existsSync(path.join(app, 'dist', 'cli.js')))
    throw new Error(`compiling src/ for the runner image failed:\n${String(tsc.all).slice(0, 4000)}`);
  if (tsc.exitCode !== 0)
    log(
      `tsc reported type errors but emitted dist/ (the runner image uses it):\n${String(tsc.all).split('\n').slice(0, 10).join('\n')}`,
    );

  for (const pkg of await productionPackages(repoRoot)) {
    await mkdir(path.dirname(path.join(app, 'node_modules', pkg)), { recursive: true });
    await execa('cp', ['-a', path.join(repoRoot, 'node_modules', pkg), path.join(app, 'node_modules', pkg)], {
      stdin: 'ignore',
    });
  }
  await mkdir(cache.work, { recursive: true });
  const out = path.join(cache.work, 'runner-app.tar');
  await tarLayer(stage, out, { reproducible: true });
  await rm(stage, { recursive: true, force: true });
  return cache.layout.putFile(out);
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

export interface RealNodeImages {
  runner: BuiltImage;
  pause: BuiltImage;
  layout: OciLayout;
}

/** Builds (or finds in the cache) both images and drops older versions from the cache. */
export async function buildImages(log: Log, repoRoot = REPO_ROOT, cache = imageCache()): Promise<RealNodeImages> {
  await cache.layout.init();
  const pause = await cache.layout.writeImage(PAUSE_IMAGE_NAME, [await pauseLayer(cache, log)], {
    Entrypoint: ['/pause'],
  });
  const base = await runnerBaseLayer(cache, log);
  const appLayer = await runnerAppLayer(cache, repoRoot, log);
  const runner = await cache.layout.writeImage(RUNNER_IMAGE_NAME, [base, appLayer], {
    Entrypoint: ['trace-operator'],
    Cmd: ['runner', '--help'],
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'],
    WorkingDir: '/app',
  });
  await cache.layout.prune([pause.ref, runner.ref]);
  return { runner, pause, layout: cache.layout };
}
