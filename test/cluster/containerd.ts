// The real node's container runtime: Debian's containerd (1.6) and runc,
// with its own socket, root and state so it shares nothing with any other
// containerd on the machine, the CRI plugin on, the pause image built here
// as its sandbox image, and a CNI bridge from Debian's
// containernetworking-plugins. Images come from local files through `ctr
// images import`, never a registry: the runner and manager as docker-archive
// files from the Dockerfile build (hack/images/build.ts), the pause image
// from its OCI layout (hack/real-node/images.ts).
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { OciLayout } from '../../hack/real-node/oci.ts';
import { SERVICE_CIDR } from './components.ts';

export interface ContainerdLayout {
  /** containerd's config.toml. */
  config: string;
  /** Persistent root (content store, snapshots): imported images survive a restart. */
  root: string;
  /** Runtime state (tmpfs-like, under /run). */
  state: string;
  socket: string;
  cniConfDir: string;
  cniDataDir: string;
}

/** The CRI namespace: images and containers the kubelet sees live here. */
export const K8S_NAMESPACE = 'k8s.io';
export const CNI_BIN_DIR = '/usr/lib/cni';
/**
 * The pods' bridge. The host has the subnet's first address on it (so the
 * kubelet's probes reach pods) and the `kubernetes` Service's ClusterIP
 * (real-node.ts relays it to the API server); pods get one route, to the
 * service range through the host, and none anywhere else.
 */
export const CNI_BRIDGE = 'trace-op0';
/** Link-local, so that no pod address is in a range anything else on the machine routes. */
export const POD_SUBNET = '169.254.240.0/20';

export function containerdConfig(l: ContainerdLayout, sandboxImage: string): string {
  const q = (s: string): string => JSON.stringify(s);
  return `# Written by test/cluster/containerd.ts for the real node; rewritten at every start.
version = 2
root = ${q(l.root)}
state = ${q(l.state)}
disabled_plugins = ["io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = ${q(l.socket)}

[ttrpc]
  address = ${q(`${l.socket}.ttrpc`)}

[debug]
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(sandboxImage)}
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE, so runc cannot lower a process's
  # oom_score_adj (the kubelet asks -998 for the pause container): clamp
  # requested scores to containerd's own, as rootless setups do.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # The kubelet's cgroupDriver is cgroupfs too (no systemd here).
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(CNI_BIN_DIR)}
    conf_dir = ${q(l.cniConfDir)}
    max_conf_num = 1
`;
}

export function cniConfig(l: ContainerdLayout): string {
  return `${JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'trace-operator-real-node',
      plugins: [
        {
          type: 'bridge',
          bridge: CNI_BRIDGE,
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: false,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_SUBNET }]],
            routes: [{ dst: SERVICE_CIDR }],
            dataDir: l.cniDataDir,
          },
        },
      ],
    },
    null,
    2,
  )}\n`;
}

export async function writeContainerdConfig(l: ContainerdLayout, sandboxImage: string): Promise<void> {
  await mkdir(path.dirname(l.config), { recursive: true });
  await mkdir(l.cniConfDir, { recursive: true });
  await mkdir(l.cniDataDir, { recursive: true });
  await mkdir(l.root, { recursive: true });
  await mkdir(l.state, { recursive: true });
  await writeFile(l.config, containerdConfig(l, sandboxImage));
  await writeFile(path.join(l.cniConfDir, '10-trace-operator.conflist'), cniConfig(l));
}

export interface Ctr {
  (args: readonly string[]): Promise<string>;
}

/** `ctr` against this containerd, in the CRI namespace; throws with ctr's message on failure. */
export function ctrFor(l: ContainerdLayout): Ctr {
  return async (args) => {
    const result = await execa('ctr', ['--address', l.socket, '--namespace', K8S_NAMESPACE, ...args], {
      reject: false,
      stdin: 'ignore',
    });
    if (result.exitCode !== 0) throw new Error(`ctr ${args.join(' ')} failed: ${String(result.stderr).trim()}`);
    return String(result.stdout);
  };
}

export async function containerdAnswers(l: ContainerdLayout): Promise<boolean> {
  if (!existsSync(l.socket)) return false;
  const result = await execa('ctr', ['--address', l.socket, '--timeout', '2s', 'version'], {
    reject: false,
    stdin: 'ignore',
  });
  return result.exitCode === 0;
}

/** True when containerd has `ref`; drops other tags of the same name (older builds). */
async function presentDroppingOlder(ctr: Ctr, ref: string): Promise<boolean> {
  const name = ref.slice(0, ref.lastIndexOf(':'));
  const present = (await ctr(['images', 'ls', '-q']))
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const old of present.filter((r) => r.startsWith(`${name}:`) && r !== ref))
    await ctr(['images', 'rm', old]).catch(() => undefined);
  return present.includes(ref);
}

/** Imports `ref` from a docker-archive file whose image is named `ref`, unless containerd has it. */
export async function importArchive(
  l: ContainerdLayout,
  archive: string,
  ref: string,
): Promise<'imported' | 'present'> {
  const ctr = ctrFor(l);
  if (await presentDroppingOlder(ctr, ref)) return 'present';
  await ctr(['images', 'import', '--snapshotter', 'overlayfs', archive]);
  if (!(await presentDroppingOlder(ctr, ref)))
    throw new Error(`importing ${archive} into containerd did not create the image ${ref}`);
  return 'imported';
}

/** Imports `ref` from the OCI layout unless containerd has it; drops other tags of the same name. */
export async function importImage(
  l: ContainerdLayout,
  layout: OciLayout,
  ref: string,
): Promise<'imported' | 'present'> {
  const ctr = ctrFor(l);
  if (await presentDroppingOlder(ctr, ref)) return 'present';
  // tar writes the image as an OCI archive straight into ctr: no archive file on disk.
  const script =
    'set -o pipefail; socket="$1"; shift; tar "$@" | ctr --address "$socket" --namespace k8s.io images import --snapshotter overlayfs -';
  const result = await execa('bash', ['-c', script, 'import-image', l.socket, ...(await layout.archiveArgs(ref))], {
    reject: false,
    stdin: 'ignore',
    stdout: 'ignore',
  });
  if (result.exitCode !== 0)
    throw new Error(`importing ${ref} into containerd failed: ${String(result.stderr).trim()}`);
  return 'imported';
}

/** Kills and removes every task (container process) containerd still runs in the CRI namespace. */
export async function killAllTasks(l: ContainerdLayout, log: (line: string) => void): Promise<void> {
  if (!(await containerdAnswers(l))) return;
  const ctr = ctrFor(l);
  const ids = (await ctr(['tasks', 'ls', '-q']).catch(() => ''))
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (ids.length === 0) return;
  log(`killing ${ids.length} container process(es) left in containerd`);
  for (const id of ids) await ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]).catch(() => undefined);
  const deadline = Date.now() + 10_000;
  for (const id of ids) {
    while (
      Date.now() < deadline &&
      (await ctr(['tasks', 'delete', id]).then(
        () => false,
        () => true,
      ))
    )
      await sleep(200);
  }
}

/**
 * Pids of the runc shims this containerd started (they outlive containerd
 * by design). Found by the socket address on their command line, so shims
 * of any other containerd are never touched.
 */
export async function shimPids(l: ContainerdLayout): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const args = cmdline.split('\0');
    if (args[0]?.endsWith('containerd-shim-runc-v2') === true && args.includes(l.socket)) pids.push(Number(entry));
  }
  return pids;
}
