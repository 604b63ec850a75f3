// npm run setup: everything the demo and the tests need on this machine, and
// nothing twice. `npm run demo`, `npm test` and .ci/run all start with it.
//   1. checks: root, disk space, BPF and BTF in this kernel;
//   2. Debian packages a fresh machine lacks (one apt-get update, then only
//      what is not installed): bpftrace, the real node's runtime, the image
//      tools, Prometheus, Alertmanager and Chromium;
//   3. the control plane's binaries and the kubelet, built from Go modules
//      (test/cluster/build-testbin.sh; ~15 minutes on 2 cores, once);
//   4. the images: the Dockerfile's manager and runner targets, built with
//      buildah from local Debian and Node base images, and the real node's
//      pause image (hack/images/build.ts, hack/real-node/images.ts).
// Every step is cached under ~/.cache/trace-operator (TRACE_OPERATOR_CACHE);
// a second run takes seconds. Each failure says what is missing and what to do.
import { existsSync } from 'node:fs';
import { mkdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildProjectImages, type ProjectImages } from './images/build.ts';
import { buildPauseImage } from './real-node/images.ts';
import { cacheRoot, clusterPaths } from '../test/cluster/paths.ts';

export type Log = (line: string) => void;

const here = path.dirname(fileURLToPath(import.meta.url));

export class SetupError extends Error {}

/** Debian packages and how to tell each is installed. */
export const DEBIAN_PACKAGES = [
  'bpftrace', // the tracer the runner supervises
  'openssl', // the local control plane's certificates
  'containerd', // the real node's container runtime
  'runc',
  'containernetworking-plugins', // the real node's pod bridge
  'debootstrap', // the local Debian base image
  'buildah', // builds the Dockerfile without a daemon
  'gcc', // the static pause binary
  'libc6-dev',
  'make', // `make docker-build`, `make deploy`
  'tar',
  'bsdutils', // `script`: a terminal for `kubectl attach -it` in the tests
  'iproute2',
  'ca-certificates',
  'prometheus', // the alert-trigger tests
  'prometheus-alertmanager',
  'chromium', // the UI tests' screenshots
  'fonts-dejavu-core', // so that screenshots have text
] as const;

async function run(cmd: string, args: readonly string[]): Promise<{ ok: boolean; out: string }> {
  const r = await execa(cmd, args, { stdin: 'ignore', all: true, reject: false });
  return { ok: r.exitCode === 0, out: String(r.all ?? '') };
}

async function installed(pkg: string): Promise<boolean> {
  const r = await run('dpkg-query', ['-W', '-f=${Status}', pkg]);
  return r.ok && r.out.includes('install ok installed');
}

function checkRoot(): void {
  if (process.getuid?.() !== 0)
    throw new SetupError(
      'not root: setup installs Debian packages, and the real node (containerd, runc, the kubelet) and bpftrace need root. Run it as root (sudo -E npm run setup).',
    );
}

async function checkDisk(root: string, log: Log): Promise<void> {
  await mkdir(root, { recursive: true });
  const fs = await statfs(root);
  const freeGiB = (fs.bavail * fs.bsize) / 1024 ** 3;
  const testbinBuilt = existsSync(path.join(clusterPaths().testbin, 'kubelet'));
  // The Go build cache of the control plane is the biggest part; the images take ~3 GiB (vfs keeps full layers).
  const needGiB = testbinBuilt ? 4 : 12;
  if (freeGiB < needGiB)
    throw new SetupError(
      `no disk space: ${freeGiB.toFixed(1)} GiB free under ${root}, setup needs about ${needGiB} GiB. Free some space, or point TRACE_OPERATOR_CACHE at a larger disk.`,
    );
  log(`disk: ${freeGiB.toFixed(0)} GiB free under ${root}`);
}

async function installPackages(log: Log): Promise<void> {
  const missing: string[] = [];
  for (const pkg of DEBIAN_PACKAGES) if (!(await installed(pkg))) missing.push(pkg);
  if (missing.length === 0) {
    log(`Debian packages: all ${DEBIAN_PACKAGES.length} installed`);
    return;
  }
  if (!existsSync('/usr/bin/apt-get'))
    throw new SetupError(
      `apt-get not found: this setup needs Debian (bookworm); missing packages: ${missing.join(' ')}`,
    );
  log(`Debian packages: installing ${missing.join(' ')} (expected: 1-4 minutes)`);
  const started = Date.now();
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const update = await execa('apt-get', ['update', '-qq'], { env, stdin: 'ignore', all: true, reject: false });
  if (update.exitCode !== 0)
    throw new SetupError(`apt-get update failed; is a Debian mirror reachable?\n${String(update.all).slice(-2000)}`);
  const install = await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    env,
    stdin: 'ignore',
    all: true,
    reject: false,
  });
  if (install.exitCode !== 0)
    throw new SetupError(`apt-get install ${missing.join(' ')} failed:\n${String(install.all).slice(-3000)}`);
  log(`Debian packages: installed in ${Math.round((Date.now() - started) / 1000)}s`);
}

async function checkKernel(log: Log): Promise<void> {
  if (!existsSync('/sys/kernel/btf/vmlinux'))
    throw new SetupError(
      'no BTF in this kernel (/sys/kernel/btf/vmlinux is missing): bpftrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y; run on a distribution kernel (Debian 12 and later have it).',
    );
  const probe = await execa('bpftrace', ['-e', 'BEGIN { exit(); }'], {
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: 60_000,
  });
  if (probe.exitCode !== 0)
    throw new SetupError(
      `no BPF: bpftrace could not load a program in this kernel (exit ${probe.exitCode}). It needs root, CONFIG_BPF_SYSCALL=y and unprivileged containers cannot load BPF (run on a VM or host, or a privileged container). bpftrace said:\n${String(probe.all).slice(-1500)}`,
    );
  log('kernel: BPF programs load, BTF present');
}

async function buildTestbin(log: Log): Promise<void> {
  const testbin = clusterPaths().testbin;
  const all = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'kwok', 'kubelet'];
  if (all.every((b) => existsSync(path.join(testbin, b)))) {
    log(`control plane and kubelet: built (${testbin})`);
    return;
  }
  const go = await run('sh', ['-c', 'command -v go || ls /usr/local/go/bin/go']);
  if (!go.ok)
    throw new SetupError(
      'no Go: the control plane (kube-apiserver, kubelet, ...) is built from Go modules here; install Go 1.26 or newer (https://go.dev/dl, into /usr/local/go) and run setup again.',
    );
  log('control plane and kubelet: building from Go modules (expected: ~15 minutes on 2 cores, once) ...');
  const started = Date.now();
  const child = execa('bash', [path.resolve(here, '..', 'test', 'cluster', 'build-testbin.sh')], {
    env: { BUILD_KUBELET: '1', PATH: `${process.env['PATH'] ?? ''}:/usr/local/go/bin` },
    stdin: 'ignore',
    stdout: 'ignore',
    reject: false,
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') log(`  ${line}`);
  });
  const ticker = setInterval(
    () => log(`  ... still building (${Math.round((Date.now() - started) / 60_000)} min so far)`),
    60_000,
  ).unref();
  const result = await child.finally(() => clearInterval(ticker));
  if (result.exitCode !== 0)
    throw new SetupError(`building the control plane failed (exit ${result.exitCode}); see the step log named above`);
  log(`control plane and kubelet: built in ${Math.round((Date.now() - started) / 60_000)} min`);
}

export interface SetupResult {
  images: ProjectImages;
  pauseImage: string;
}

/** Runs every step; cheap when everything is in place. */
export async function setup(log: Log): Promise<SetupResult> {
  const started = Date.now();
  const root = cacheRoot();
  log('[1/4] checks: root, disk space');
  checkRoot();
  await checkDisk(root, log);
  log('[2/4] Debian packages');
  await installPackages(log);
  await checkKernel(log);
  log('[3/4] the control plane and the kubelet');
  await buildTestbin(log);
  log('[4/4] images: the Dockerfile (manager, runner) with buildah, and the pause image');
  const { pause } = await buildPauseImage(log);
  const images = await buildProjectImages(log);
  log(`images: ${images.manager.ref}, ${images.runner.ref}, ${pause.ref}`);
  log(`setup done in ${Math.round((Date.now() - started) / 1000)}s`);
  return { images, pauseImage: pause.ref };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await setup((line) => process.stderr.write(`setup: ${line}\n`));
  } catch (error) {
    process.stderr.write(`setup failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
