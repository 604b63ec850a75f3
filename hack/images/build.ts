// The project's container images, built from the Dockerfile with buildah
// (Debian's package, daemonless: no Docker engine or registry needed), as
// `make docker-build` builds them:
//   1. trace-operator.local/debian:bookworm-<key>  Debian bookworm from debootstrap
//      (the Dockerfile's DEBIAN_IMAGE), from the apt mirror this machine uses;
//   2. trace-operator.local/node:24-<key>          that base plus Node 24 from the
//      "node" npm package and this machine's npm (the Dockerfile's NODE_IMAGE);
//   3. trace-operator.local/manager:<key> and trace-operator.local/runner:<key>,
//      the Dockerfile's two targets, by `make docker-build CONTAINER_TOOL=buildah`.
// Each <key> is a hash of that image's inputs, so an unchanged image is never
// rebuilt and a changed one gets a new reference. Everything (buildah's
// storage too) lives under ~/.cache/trace-operator/images; the manager and
// runner are also written as docker-archive files, which the real node's
// containerd imports (test/cluster/containerd.ts).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { cacheRoot } from '../../test/cluster/paths.ts';
import { buildDebianRootfs, debianRecipe } from './debian.ts';

export type Log = (line: string) => void;

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');
export const IMAGE_REPO = 'trace-operator.local';

export interface ImagePaths {
  root: string;
  /**
   * buildah's storage driver: overlay (the kernel's overlayfs; a layer costs
   * only what it changes), or vfs with TRACE_OPERATOR_STORAGE_DRIVER=vfs
   * where overlayfs cannot be mounted (every layer a full copy: much slower).
   */
  driver: 'overlay' | 'vfs';
  /** buildah's storage (--root) and run state (--runroot): never /var/lib/containers. */
  storage: string;
  runroot: string;
  archives: string;
  work: string;
}

export function imagePaths(env: Readonly<Record<string, string | undefined>> = process.env): ImagePaths {
  const root = path.join(cacheRoot(env), 'images');
  const driver = env['TRACE_OPERATOR_STORAGE_DRIVER'] === 'vfs' ? 'vfs' : 'overlay';
  return {
    root,
    driver,
    storage: path.join(root, 'buildah', `storage-${driver}`),
    runroot: path.join(root, 'buildah', `run-${driver}`),
    archives: path.join(root, 'archives'),
    work: path.join(root, 'work'),
  };
}

/** buildah's global options: its storage under the cache, never /var/lib/containers. */
export function buildahGlobal(p: ImagePaths): string[] {
  return ['--root', p.storage, '--runroot', p.runroot, '--storage-driver', p.driver];
}

/** Options for `buildah build` here: chroot isolation (no user namespaces needed), the host network for apt and npm, local bases only. */
export const BUILD_FLAGS = ['--isolation', 'chroot', '--network', 'host', '--pull=never', '--layers'];

export interface BuiltImage {
  ref: string;
  /** docker-archive file of the image, named `ref` inside (for `ctr images import`). */
  archive?: string;
}

export interface ProjectImages {
  debian: BuiltImage;
  node: BuiltImage;
  manager: Required<BuiltImage>;
  runner: Required<BuiltImage>;
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const key = (parts: readonly (string | Buffer)[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(sha256(p));
  return h.digest('hex').slice(0, 16);
};

async function buildah(p: ImagePaths, args: readonly string[], log?: Log): Promise<string> {
  const child = execa('buildah', [...buildahGlobal(p), ...args], { stdin: 'ignore', all: true, reject: false });
  const result = await child;
  if (result.exitCode !== 0) {
    const tail = String(result.all).split('\n').slice(-25).join('\n');
    throw new Error(`buildah ${args.slice(0, 2).join(' ')} failed (exit ${result.exitCode}):\n${tail}`);
  }
  if (log !== undefined && args[0] === 'build') log(`buildah build done`);
  return String(result.stdout);
}

async function imageExists(p: ImagePaths, ref: string): Promise<boolean> {
  const result = await execa('buildah', [...buildahGlobal(p), 'inspect', '--type', 'image', ref], {
    stdin: 'ignore',
    reject: false,
  });
  return result.exitCode === 0;
}

/** Runs `fn`, logging its start with the expected duration and its end with the time it took. */
async function timed<T>(log: Log, what: string, expected: string, fn: () => Promise<T>): Promise<T> {
  log(`${what} (expected: ${expected}) ...`);
  const started = Date.now();
  const ticker = setInterval(
    () => log(`  ... ${what}: ${Math.round((Date.now() - started) / 1000)}s so far`),
    30_000,
  ).unref();
  try {
    const result = await fn();
    log(`${what}: done in ${Math.round((Date.now() - started) / 1000)}s`);
    return result;
  } finally {
    clearInterval(ticker);
  }
}

// ---- 1. the Debian base ----

async function debianImage(p: ImagePaths, log: Log): Promise<BuiltImage> {
  const containerfile = path.join(here, 'debian.Containerfile');
  const recipe = await debianRecipe();
  const ref = `${IMAGE_REPO}/debian:bookworm-${key([recipe.fingerprint, await readFile(containerfile)])}`;
  if (await imageExists(p, ref)) return { ref };
  const context = path.join(p.work, 'debian');
  await rm(context, { recursive: true, force: true });
  await mkdir(context, { recursive: true });
  await timed(log, `debootstrap Debian ${recipe.suite} from ${recipe.mirror}`, '2-4 minutes, once', () =>
    buildDebianRootfs(recipe, path.join(context, 'rootfs.tar'), p.work),
  );
  await timed(log, `buildah: ${ref}`, 'under a minute', () =>
    buildah(p, ['build', ...BUILD_FLAGS, '-f', containerfile, '-t', ref, context]),
  );
  await rm(context, { recursive: true, force: true });
  return { ref };
}

// ---- 2. the Node base ----

/** The npm this machine runs (the one running this script, else the `npm` on PATH): the node image gets the same one. */
async function hostNpmDir(): Promise<string> {
  const candidates = [process.env['npm_execpath'] ?? ''];
  const onPath = await execa('sh', ['-c', 'command -v npm'], { stdin: 'ignore', reject: false });
  if (onPath.exitCode === 0) candidates.push(await realpath(String(onPath.stdout).trim()).catch(() => ''));
  for (const cli of candidates) {
    if (!cli.endsWith(path.join('bin', 'npm-cli.js'))) continue;
    const dir = path.dirname(path.dirname(cli));
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error('npm is not installed on this machine (the node image copies it): install Node.js and npm first');
}

/** The npm settings of this machine that decide where packages come from, for the image's global npmrc. */
async function hostNpmrc(): Promise<string> {
  const lines = ['# Written by hack/images/build.ts: the npm registry settings of the machine that built this image.'];
  for (const name of ['registry', 'proxy', 'https-proxy', 'noproxy', 'strict-ssl']) {
    const got = await execa('npm', ['config', 'get', name], { stdin: 'ignore', reject: false });
    const value = String(got.stdout).trim();
    if (got.exitCode === 0 && value !== '' && value !== 'null' && value !== 'undefined') lines.push(`${name}=${value}`);
  }
  // The image's CA bundle has this machine's extra CAs (hack/images/debian.ts), so npm and node trust what the host trusts.
  lines.push('cafile=/etc/ssl/certs/ca-certificates.crt', 'fund=false', 'audit=false', 'update-notifier=false');
  return `${lines.join('\n')}\n`;
}

async function nodeImage(p: ImagePaths, debian: BuiltImage, log: Log): Promise<BuiltImage> {
  const containerfile = path.join(here, 'node.Containerfile');
  const nodeBinary = path.join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(nodeBinary))
    throw new Error(`${nodeBinary} is missing: the node image takes Node from the "node" npm package; run 'npm ci'`);
  const npmDir = await hostNpmDir();
  const npmVersion = (JSON.parse(await readFile(path.join(npmDir, 'package.json'), 'utf8')) as { version: string })
    .version;
  const npmrc = await hostNpmrc();
  const nodeStat = await stat(nodeBinary);
  const nodeVersion = String((await execa(nodeBinary, ['--version'], { stdin: 'ignore' })).stdout).trim();
  const ref = `${IMAGE_REPO}/node:24-${key([debian.ref, nodeVersion, String(nodeStat.size), npmVersion, npmrc, await readFile(containerfile)])}`;
  if (await imageExists(p, ref)) return { ref };
  const context = path.join(p.work, 'node');
  await rm(context, { recursive: true, force: true });
  await mkdir(context, { recursive: true });
  await copyFile(nodeBinary, path.join(context, 'node'));
  await execa('cp', ['-a', npmDir, path.join(context, 'npm')], { stdin: 'ignore' });
  await writeFile(path.join(context, 'npmrc'), npmrc);
  await timed(log, `buildah: ${ref} (Node ${nodeVersion}, npm ${npmVersion})`, 'about a minute', () =>
    buildah(p, [
      'build',
      ...BUILD_FLAGS,
      '--build-arg',
      `DEBIAN_IMAGE=${debian.ref}`,
      '-f',
      containerfile,
      '-t',
      ref,
      context,
    ]),
  );
  await rm(context, { recursive: true, force: true });
  return { ref };
}

// ---- 3. the Dockerfile's targets, by `make docker-build` ----

/** Every file the Dockerfile's build context holds (see .dockerignore), sorted. */
async function contextFiles(): Promise<string[]> {
  const files = ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'hack/build.ts'];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(path.join(REPO_ROOT, dir), { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(rel);
      else if (!rel.endsWith('.test.ts')) files.push(rel);
    }
  };
  await walk('src');
  return files;
}

async function appKey(debian: BuiltImage, node: BuiltImage): Promise<string> {
  const parts: (string | Buffer)[] = [debian.ref, node.ref];
  for (const file of await contextFiles()) parts.push(file, await readFile(path.join(REPO_ROOT, file)));
  return key(parts);
}

/** The `make docker-build` command line that builds both targets with buildah and the local base images. */
export function dockerBuildCommand(
  p: ImagePaths,
  images: { manager: string; runner: string; debian: string; node: string },
): string[] {
  const tool = ['buildah', ...buildahGlobal(p)].join(' ');
  const flags = [
    ...BUILD_FLAGS,
    '--build-arg',
    `NODE_IMAGE=${images.node}`,
    '--build-arg',
    `DEBIAN_IMAGE=${images.debian}`,
  ].join(' ');
  return [
    'make',
    '--no-print-directory',
    'docker-build',
    `CONTAINER_TOOL=${tool}`,
    `BUILD_FLAGS=${flags}`,
    `IMG=${images.manager}`,
    `RUNNER_IMG=${images.runner}`,
  ];
}

async function exportArchive(p: ImagePaths, ref: string, name: string): Promise<string> {
  await mkdir(p.archives, { recursive: true });
  const file = path.join(p.archives, `${name}-${ref.slice(ref.lastIndexOf(':') + 1)}.tar`);
  if (existsSync(file)) return file;
  const partial = `${file}.partial`;
  await rm(partial, { force: true });
  await buildah(p, ['push', ref, `docker-archive:${partial}:${ref}`]);
  await rename(partial, file);
  return file;
}

/** Removes older trace-operator.local images and archives, keeping `current`. */
async function prune(p: ImagePaths, current: readonly string[]): Promise<void> {
  const listed = await buildah(p, ['images', '--format', '{{.Name}}:{{.Tag}}']).catch(() => '');
  for (const ref of listed.split('\n').map((l) => l.trim())) {
    if (ref.startsWith(`${IMAGE_REPO}/`) && !current.includes(ref))
      await buildah(p, ['rmi', ref]).catch(() => undefined);
  }
  await buildah(p, ['rmi', '--prune']).catch(() => undefined);
  const keep = new Set(current.map((ref) => ref.slice(ref.lastIndexOf(':') + 1)));
  for (const file of existsSync(p.archives) ? await readdir(p.archives) : []) {
    const tag =
      file
        .replace(/\.tar$/, '')
        .split('-')
        .at(-1) ?? '';
    if (!keep.has(tag)) await rm(path.join(p.archives, file), { force: true });
  }
}

/** Builds (or finds in the cache) every image; safe to run again and again. */
export async function buildProjectImages(log: Log, p: ImagePaths = imagePaths()): Promise<ProjectImages> {
  if (process.getuid?.() !== 0)
    throw new Error('building the images needs root (debootstrap and buildah chroot isolation): run as root');
  const missing: string[] = [];
  for (const cmd of ['buildah', 'debootstrap', 'make', 'tar'])
    if ((await execa('sh', ['-c', `command -v ${cmd}`], { reject: false, stdin: 'ignore' })).exitCode !== 0)
      missing.push(cmd);
  if (missing.length > 0)
    throw new Error(
      `building the images needs ${missing.join(', ')}: run 'npm run setup' (it installs them with apt-get)`,
    );
  await mkdir(p.work, { recursive: true });
  const debian = await debianImage(p, log);
  const node = await nodeImage(p, debian, log);
  const k = await appKey(debian, node);
  const manager = `${IMAGE_REPO}/manager:${k}`;
  const runner = `${IMAGE_REPO}/runner:${k}`;
  if (!(await imageExists(p, manager)) || !(await imageExists(p, runner))) {
    const command = dockerBuildCommand(p, { manager, runner, debian: debian.ref, node: node.ref });
    await timed(
      log,
      `make docker-build with buildah (${manager}, ${runner})`,
      '4-6 minutes the first time',
      async () => {
        const result = await execa(command[0] ?? 'make', command.slice(1), {
          cwd: REPO_ROOT,
          stdin: 'ignore',
          all: true,
          reject: false,
        });
        await writeFile(path.join(p.work, 'docker-build.log'), String(result.all));
        if (result.exitCode !== 0)
          throw new Error(
            `make docker-build failed (exit ${result.exitCode}); full log ${path.join(p.work, 'docker-build.log')}, last lines:\n${String(result.all).split('\n').slice(-25).join('\n')}`,
          );
      },
    );
  }
  const images: ProjectImages = {
    debian,
    node,
    manager: { ref: manager, archive: await exportArchive(p, manager, 'manager') },
    runner: { ref: runner, archive: await exportArchive(p, runner, 'runner') },
  };
  await prune(p, [debian.ref, node.ref, manager, runner]);
  await writeFile(path.join(p.root, 'images.json'), `${JSON.stringify(images, null, 2)}\n`);
  return images;
}

// node hack/images/build.ts: builds them and prints the references as JSON.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  try {
    const images = await buildProjectImages((line) => console.error(`images: ${line}`));
    console.error(`images: ready in ${Math.round((Date.now() - started) / 1000)}s`);
    console.log(JSON.stringify(images, null, 2));
  } catch (error) {
    console.error(`images: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
