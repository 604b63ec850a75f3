// The root file system of the local Debian base image: debootstrap of
// bookworm from the apt mirror this machine uses, set up so that apt-get and
// npm inside images reach the same package sources this machine reaches:
// the same mirror in its sources, this machine's apt Acquire:: settings for
// checking Release dates, and this machine's extra CA certificates
// (/usr/local/share/ca-certificates) in its CA bundle.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

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

export interface DebianRecipe {
  suite: string;
  mirror: string;
  variant: string;
  include: string[];
  /** apt settings copied from this machine (Acquire::Check-Valid-Until and the like). */
  aptConf: string;
  /** This machine's extra CA certificates: file name and contents. */
  extraCas: { name: string; pem: string }[];
  /** A hash of all of the above. */
  fingerprint: string;
}

const EXTRA_CA_DIR = '/usr/local/share/ca-certificates';
// Bump when the way the root file system is made changes.
const RECIPE_VERSION = 1;

/** The settings of `apt-config dump` that decide whether a mirror's Release files are accepted. */
async function hostAptConf(): Promise<string> {
  const dump = await execa('apt-config', ['dump'], { stdin: 'ignore', reject: false });
  if (dump.exitCode !== 0) return '';
  const keep = String(dump.stdout)
    .split('\n')
    .filter((l) => /^Acquire::(Check-Valid-Until|Check-Date|Max-FutureTime) /.test(l));
  return keep.length === 0
    ? ''
    : `// From the apt configuration of the machine that built this image.\n${keep.join('\n')}\n`;
}

export async function debianRecipe(suite = 'bookworm'): Promise<DebianRecipe> {
  const mirror = await debianMirror(suite);
  const extraCas: { name: string; pem: string }[] = [];
  if (existsSync(EXTRA_CA_DIR))
    for (const name of (await readdir(EXTRA_CA_DIR)).filter((f) => f.endsWith('.crt')).sort())
      extraCas.push({ name, pem: await readFile(path.join(EXTRA_CA_DIR, name), 'utf8') });
  const base = {
    suite,
    mirror,
    variant: 'minbase',
    include: ['ca-certificates'],
    aptConf: await hostAptConf(),
    extraCas,
  };
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ ...base, RECIPE_VERSION }))
    .digest('hex');
  return { ...base, fingerprint };
}

/** debootstrap + this machine's apt and CA settings, as one tar file at `out`. */
export async function buildDebianRootfs(recipe: DebianRecipe, out: string, work: string): Promise<void> {
  const rootfs = path.join(work, 'debian-rootfs');
  await rm(rootfs, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const result = await execa(
    'debootstrap',
    [`--variant=${recipe.variant}`, `--include=${recipe.include.join(',')}`, recipe.suite, rootfs, recipe.mirror],
    { stdin: 'ignore', all: true, reject: false },
  );
  if (result.exitCode !== 0)
    throw new Error(
      `debootstrap ${recipe.suite} from ${recipe.mirror} failed (exit ${result.exitCode}); is the mirror reachable (apt-get update works)? Last output:\n${String(result.all).split('\n').slice(-15).join('\n')}`,
    );
  await writeFile(path.join(rootfs, 'etc', 'apt', 'sources.list'), `deb ${recipe.mirror} ${recipe.suite} main\n`);
  if (recipe.aptConf !== '')
    await writeFile(path.join(rootfs, 'etc', 'apt', 'apt.conf.d', '99host-acquire'), recipe.aptConf);
  if (recipe.extraCas.length > 0) {
    await mkdir(path.join(rootfs, EXTRA_CA_DIR.slice(1)), { recursive: true });
    for (const ca of recipe.extraCas) await writeFile(path.join(rootfs, EXTRA_CA_DIR.slice(1), ca.name), ca.pem);
    const update = await execa('chroot', [rootfs, 'update-ca-certificates'], {
      stdin: 'ignore',
      all: true,
      reject: false,
    });
    if (update.exitCode !== 0)
      throw new Error(`update-ca-certificates in the Debian root failed:\n${String(update.all)}`);
  }
  // What debian:bookworm-slim leaves out too: package caches and lists, documentation.
  for (const dir of [
    'var/cache/apt/archives',
    'var/lib/apt/lists',
    'usr/share/doc',
    'usr/share/man',
    'usr/share/info',
  ]) {
    const full = path.join(rootfs, dir);
    if (existsSync(full))
      for (const child of await readdir(full))
        if (child !== 'partial' && child !== 'lock') await rm(path.join(full, child), { recursive: true, force: true });
  }
  const tar = await execa(
    'tar',
    [
      '--numeric-owner',
      '--xattrs',
      '--exclude=./dev/*',
      '--exclude=./proc/*',
      '--exclude=./sys/*',
      '-C',
      rootfs,
      '-cf',
      out,
      '.',
    ],
    { stdin: 'ignore', all: true, reject: false },
  );
  if (tar.exitCode !== 0) throw new Error(`tar of the Debian root failed:\n${String(tar.all)}`);
  await rm(rootfs, { recursive: true, force: true });
}
