// A real node for the local control plane: containerd + runc (Debian's) and
// a kubelet built from the same k8s.io/kubernetes module, on this machine,
// so a trace pod really runs the runner image with bpftrace and `kubectl
// logs`/`kubectl attach` go API server -> kubelet -> containerd.
//
// Guarantees: the node is named REAL_NODE_NAME (its kubernetes.io/hostname
// label is the same), tainted with REAL_NODE_TAINT_KEY:NoSchedule so that
// only pods that tolerate it land there, and Ready when upRealNode returns;
// the runner image reference is in node.json (readRealNodeInfo).
// Assumptions: root, the control plane of the same ClusterPaths is running,
// Debian's containerd, runc, containernetworking-plugins and debootstrap
// are installed (npm run setup).
// Caveats: one real node per machine (fixed socket and kubelet root); the
// kubelet accepts anonymous requests on 127.0.0.1 (see kubelet.ts).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildProjectImages, type ProjectImages } from '../../hack/images/build.ts';
import { buildPauseImage } from '../../hack/real-node/images.ts';
import { KUBERNETES_SERVICE_IP } from './components.ts';
import {
  CNI_BRIDGE,
  containerdAnswers,
  ctrFor,
  importArchive,
  importImage,
  killAllTasks,
  shimPids,
  writeContainerdConfig,
  type ContainerdLayout,
} from './containerd.ts';
import {
  ensureNodeCertificate,
  kubeletArgs,
  nodeRbac,
  restoreSysctls,
  saveSysctls,
  writeKubeletFiles,
  type KubeletLayout,
} from './kubelet.ts';
import { cacheRoot, processDirs, type ClusterPaths } from './paths.ts';
import { ensurePki } from './pki.ts';
import { freePort, isAlive, logFile, runningPid, startDetached, stopProcess, waitFor } from './processes.ts';

export const REAL_NODE_NAME = 'real-node-0';
export const REAL_NODE_TAINT_KEY = 'trace-operator.dev/real-node';
/** Machine-wide places: one real node per machine. */
const RUN_DIR = '/run/trace-operator';
const KUBELET_ROOT = '/var/lib/trace-operator/kubelet';

const here = path.dirname(fileURLToPath(import.meta.url));

export type Log = (line: string) => void;

export interface RealNodeInfo {
  nodeName: string;
  hostnameLabel: string;
  taintKey: string;
  /** The Dockerfile's runner target, as built by `npm run setup` and imported into the node's containerd. */
  runnerImage: string;
  /** The Dockerfile's manager target, likewise. */
  managerImage: string;
  pauseImage: string;
  kubeletPort: number;
  containerdSocket: string;
}

export interface RealNodePaths {
  dir: string;
  info: string;
  owner: string;
  /** The kernel settings from before the kubelet's first start. */
  savedSysctls: string;
  containerd: ContainerdLayout;
  kubeletRoot: string;
}

export function realNodePaths(
  p: ClusterPaths,
  env: Readonly<Record<string, string | undefined>> = process.env,
): RealNodePaths {
  const dir = path.join(p.state, 'real-node');
  return {
    dir,
    info: path.join(dir, 'node.json'),
    owner: path.join(RUN_DIR, 'owner'),
    savedSysctls: path.join(RUN_DIR, 'sysctls-before-kubelet.json'),
    containerd: {
      config: path.join(dir, 'containerd.toml'),
      root: path.join(cacheRoot(env), 'containerd'),
      state: path.join(RUN_DIR, 'containerd'),
      socket: path.join(RUN_DIR, 'containerd.sock'),
      cniConfDir: path.join(dir, 'cni'),
      cniDataDir: path.join(RUN_DIR, 'cni-ipam'),
    },
    kubeletRoot: KUBELET_ROOT,
  };
}

const CONTAINERD = 'real-node-containerd';
const KUBELET = 'real-node-kubelet';
const RELAY = 'real-node-apiserver-relay';

async function kubectl(
  p: ClusterPaths,
  args: string[],
  input?: string,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const result = await execa(
    path.join(p.testbin, 'kubectl'),
    ['--kubeconfig', p.kubeconfig, '--request-timeout=10s', ...args],
    { input, reject: false, ...(input === undefined ? { stdin: 'ignore' as const } : {}) },
  );
  return { ok: result.exitCode === 0, stdout: String(result.stdout), stderr: String(result.stderr) };
}

async function commandExists(name: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${name}`], { reject: false, stdin: 'ignore' })).exitCode === 0;
}

/** Fails early, saying what to install, when the machine lacks something the real node needs. */
export async function checkPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error(
      'the real node needs root (containerd, runc and the kubelet manage namespaces, cgroups and mounts)',
    );
  const missing: string[] = [];
  for (const cmd of ['containerd', 'containerd-shim-runc-v2', 'ctr', 'runc', 'debootstrap', 'gcc', 'tar', 'openssl'])
    if (!(await commandExists(cmd))) missing.push(cmd);
  for (const plugin of ['bridge', 'host-local', 'loopback'])
    if (!existsSync(path.join('/usr/lib/cni', plugin))) missing.push(`/usr/lib/cni/${plugin}`);
  if (missing.length > 0) {
    throw new Error(
      `the real node needs ${missing.join(', ')}: run 'npm run setup' (it installs containerd, runc, containernetworking-plugins, debootstrap, gcc and libc6-dev from Debian)`,
    );
  }
}

async function ensureKubeletBinary(p: ClusterPaths, log: Log): Promise<void> {
  if (existsSync(path.join(p.testbin, 'kubelet'))) return;
  const child = execa('bash', [path.join(here, 'build-testbin.sh')], {
    env: { TESTBIN_DIR: p.testbin, BUILD_KUBELET: '1' },
    stdin: 'ignore',
    reject: false,
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') log(line);
  });
  const result = await child;
  if (result.exitCode !== 0)
    throw new Error(`building the kubelet failed (exit ${result.exitCode}); see the step log named above`);
}

export async function readRealNodeInfo(p: ClusterPaths): Promise<RealNodeInfo | undefined> {
  const file = realNodePaths(p).info;
  return existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as RealNodeInfo) : undefined;
}

interface NodeView {
  metadata?: { labels?: Record<string, string> };
  spec?: { taints?: { key: string }[] };
  status?: { conditions?: { type: string; status: string }[]; addresses?: { type: string; address: string }[] };
}

async function nodeReady(p: ClusterPaths): Promise<NodeView | undefined> {
  const got = await kubectl(p, ['get', 'node', REAL_NODE_NAME, '-o', 'json', '--ignore-not-found']);
  if (!got.ok || got.stdout.trim() === '') return undefined;
  const node = JSON.parse(got.stdout) as NodeView;
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
  // The node lifecycle controller lifts node.kubernetes.io/not-ready once the kubelet reports Ready.
  const notReadyTaint = node.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/')) === true;
  const reachable = node.status?.addresses?.some((a) => a.type === 'InternalIP' && a.address === '127.0.0.1') === true;
  return ready && !notReadyTaint && reachable ? node : undefined;
}

/** True when containerd and the kubelet run and the node is Ready. */
export async function isRealNodeUp(p: ClusterPaths): Promise<boolean> {
  const dirs = processDirs(p);
  if ((await runningPid(dirs, KUBELET)) === undefined || (await runningPid(dirs, CONTAINERD)) === undefined)
    return false;
  if (!existsSync(realNodePaths(p).info)) return false;
  return (await nodeReady(p).catch(() => undefined)) !== undefined;
}

/** The state directory of another local cluster whose real node runs on this machine now, if any. */
async function ownedByOtherCluster(rn: RealNodePaths, p: ClusterPaths): Promise<string | undefined> {
  if (!existsSync(rn.owner)) return undefined;
  const owner = (await readFile(rn.owner, 'utf8')).trim();
  if (owner === p.state) return undefined;
  return (await runningPid({ pids: path.join(owner, 'pids'), logs: path.join(owner, 'logs') }, CONTAINERD)) ===
    undefined
    ? undefined
    : owner;
}

/** Starts (or finds running) the real node for the control plane at `p`. */
export async function upRealNode(log: Log, p: ClusterPaths): Promise<RealNodeInfo> {
  await checkPrerequisites();
  const rn = realNodePaths(p);
  const portsFile = path.join(p.state, 'ports.json');
  if (!existsSync(portsFile) || !existsSync(p.kubeconfig))
    throw new Error('the local control plane is not running: start it with `npm run cluster:up` first');
  const info = await readRealNodeInfo(p);
  if (info !== undefined && (await isRealNodeUp(p))) {
    // Running already: only bring the images up to date with the source, so tests never run a stale runner.
    const { pause } = await buildPauseImage(log);
    if (pause.ref === info.pauseImage) {
      const images = await buildProjectImages(log);
      const how = await importProjectImages(rn, images, log);
      const current: RealNodeInfo = { ...info, runnerImage: images.runner.ref, managerImage: images.manager.ref };
      await writeFile(rn.info, `${JSON.stringify(current, null, 2)}\n`);
      log(
        `the real node ${info.nodeName} is already running; runner image ${current.runnerImage}${how ? ' (new, imported)' : ''}`,
      );
      return current;
    }
    log('the pause image changed: restarting the real node');
  }
  const other = await ownedByOtherCluster(rn, p);
  if (other !== undefined) {
    throw new Error(
      `a real node of another local cluster (${other}) is using this machine's containerd and kubelet; stop it first (TRACE_OPERATOR_CLUSTER_STATE=${other} npm run cluster:down)`,
    );
  }
  await downRealNode(() => undefined, p);
  const started = Date.now();
  const elapsed = (): string => `${Math.round((Date.now() - started) / 1000)}s`;

  await ensureKubeletBinary(p, log);
  log('building the images from the Dockerfile and the pause image (cached in ~/.cache/trace-operator)');
  const { pause, layout } = await buildPauseImage(log);
  const images = await buildProjectImages(log);
  log(`images ready after ${elapsed()}: ${images.runner.ref}, ${images.manager.ref}, ${pause.ref}`);

  // The trace pod mounts these host paths (hostPath without a type); a kernel built without modules has no /lib/modules.
  for (const dir of ['/lib/modules', '/usr/src']) {
    if (!existsSync(dir)) {
      log(`creating the empty host directory ${dir}, which trace pods mount`);
      await mkdir(dir, { recursive: true });
    }
  }

  const dirs = processDirs(p);
  await mkdir(RUN_DIR, { recursive: true });
  await writeFile(rn.owner, `${p.state}\n`);
  await writeContainerdConfig(rn.containerd, pause.ref);
  log(`starting containerd (log: ${logFile(dirs, CONTAINERD)})`);
  const containerdPid = await startDetached(dirs, CONTAINERD, 'containerd', ['--config', rn.containerd.config]);
  await waitFor('containerd', logFile(dirs, CONTAINERD), () => containerdAnswers(rn.containerd), 30_000, containerdPid);
  const pauseHow = await importImage(rn.containerd, layout, pause.ref);
  log(`${pause.ref}: ${pauseHow === 'present' ? 'already in containerd' : 'imported into containerd'}`);
  await importProjectImages(rn, images, log);

  const pki = await ensurePki(path.join(p.state, 'pki'));
  const ports = JSON.parse(await readFile(portsFile, 'utf8')) as { apiserver: number };
  const kubelet: KubeletLayout = {
    dir: rn.dir,
    rootDir: rn.kubeletRoot,
    nodeName: REAL_NODE_NAME,
    runtimeSocket: rn.containerd.socket,
    port: await freePort(),
    healthzPort: await freePort(),
    taintKey: REAL_NODE_TAINT_KEY,
  };
  await serveKubernetesService(p, ports.apiserver, log);
  await ensureNodeCertificate(kubelet, pki);
  const rbac = await kubectl(p, ['apply', '-f', '-'], JSON.stringify(nodeRbac(kubelet)));
  if (!rbac.ok) throw new Error(`could not grant the node its RBAC: ${rbac.stderr}`);
  await writeKubeletFiles(kubelet, `https://127.0.0.1:${ports.apiserver}`, pki);
  await saveSysctls(rn.savedSysctls);
  log(`starting the kubelet for node ${REAL_NODE_NAME} on 127.0.0.1:${kubelet.port} (log: ${logFile(dirs, KUBELET)})`);
  const kubeletPid = await startDetached(dirs, KUBELET, path.join(p.testbin, 'kubelet'), kubeletArgs(kubelet));
  await waitFor(
    `the kubelet to register ${REAL_NODE_NAME}`,
    logFile(dirs, KUBELET),
    async () => (await kubectl(p, ['get', 'node', REAL_NODE_NAME])).ok,
    60_000,
    kubeletPid,
  );
  await setLoopbackAddress(p);
  await waitFor(
    `the real node ${REAL_NODE_NAME} to become Ready`,
    logFile(dirs, KUBELET),
    async () => (await nodeReady(p)) !== undefined,
    120_000,
    kubeletPid,
  );

  const node = await nodeReady(p);
  const result: RealNodeInfo = {
    nodeName: REAL_NODE_NAME,
    hostnameLabel: node?.metadata?.labels?.['kubernetes.io/hostname'] ?? REAL_NODE_NAME,
    taintKey: REAL_NODE_TAINT_KEY,
    runnerImage: images.runner.ref,
    managerImage: images.manager.ref,
    pauseImage: pause.ref,
    kubeletPort: kubelet.port,
    containerdSocket: rn.containerd.socket,
  };
  await writeFile(rn.info, `${JSON.stringify(result, null, 2)}\n`);
  log(`the real node ${REAL_NODE_NAME} is ready (${elapsed()}); runner image ${result.runnerImage}`);
  return result;
}

async function ip(args: readonly string[]): Promise<string> {
  const result = await execa('ip', args, { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`ip ${args.join(' ')} failed: ${String(result.stderr).trim()}`);
  return String(result.stdout);
}

/**
 * The `kubernetes` Service for pods on this node, in place of kube-proxy: the
 * host gets the Service's ClusterIP (on lo: the CNI bridge plugin wants only
 * its own address on the bridge, and this kernel has no dummy links), pods
 * route the service range to the host, and apiserver-relay.ts forwards
 * KUBERNETES_SERVICE_IP:443 to the API server, so in-cluster clients (the
 * manager's Deployment) work as in any cluster.
 */
async function serveKubernetesService(p: ClusterPaths, apiserverPort: number, log: Log): Promise<void> {
  if (!(await ip(['-o', 'addr', 'show', 'dev', 'lo'])).includes(`${KUBERNETES_SERVICE_IP}/32`))
    await ip(['addr', 'add', `${KUBERNETES_SERVICE_IP}/32`, 'dev', 'lo']);
  const dirs = processDirs(p);
  await stopProcess(dirs, RELAY);
  const pid = await startDetached(dirs, RELAY, process.execPath, [
    path.join(here, 'apiserver-relay.ts'),
    KUBERNETES_SERVICE_IP,
    '443',
    String(apiserverPort),
  ]);
  await waitFor(
    `the kubernetes Service relay on ${KUBERNETES_SERVICE_IP}:443`,
    logFile(dirs, RELAY),
    async () => (await readFile(logFile(dirs, RELAY), 'utf8').catch(() => '')).includes('apiserver-relay: '),
    10_000,
    pid,
  );
  log(`the kubernetes Service (${KUBERNETES_SERVICE_IP}:443) relays to the API server for the node's pods`);
}

/** Imports the runner and manager images under their exact references; true when one was new. */
async function importProjectImages(rn: RealNodePaths, images: ProjectImages, log: Log): Promise<boolean> {
  let imported = false;
  for (const image of [images.runner, images.manager]) {
    const how = await importArchive(rn.containerd, image.archive, image.ref);
    if (how === 'imported') imported = true;
    log(`${image.ref}: ${how === 'present' ? 'already in containerd' : 'imported into containerd'}`);
  }
  return imported;
}

/**
 * Gives the node the InternalIP 127.0.0.1, the address the API server dials
 * for logs, attach and exec. The kubelet will not report a loopback address
 * itself ("nodeIP can't be loopback address", logged at every status update):
 * its address setter gives up before touching status.addresses, so an
 * address set here stays (kwok's simulated nodes have the same address).
 */
async function setLoopbackAddress(p: ClusterPaths): Promise<void> {
  const patch = {
    status: {
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: REAL_NODE_NAME },
      ],
    },
  };
  const result = await kubectl(p, [
    'patch',
    'node',
    REAL_NODE_NAME,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify(patch),
  ]);
  if (!result.ok) throw new Error(`could not set the real node's address: ${result.stderr}`);
}

/** Mount points under `prefix`, deepest first. */
async function mountsUnder(prefix: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === prefix || m.startsWith(`${prefix}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Stops the real node and leaves nothing behind: its pods (deleted through
 * the API while the kubelet can still tear them down), the kubelet, the
 * container processes, containerd and its shims, the mounts under the
 * kubelet's root, the Node object, and the kernel settings the kubelet changed.
 * Safe to call when nothing runs.
 */
export async function downRealNode(log: Log, p: ClusterPaths): Promise<void> {
  const rn = realNodePaths(p);
  const dirs = processDirs(p);
  const kubeletPid = await runningPid(dirs, KUBELET);
  const containerdPid = await runningPid(dirs, CONTAINERD);
  if (await ownedByOtherCluster(rn, p)) return;
  // With nothing recorded, only what an earlier run killed abruptly (another clone, a stopped session) may be left: shims, mounts, sysctls.
  const recorded = kubeletPid !== undefined || containerdPid !== undefined || existsSync(rn.info);
  const apiUp = recorded && existsSync(p.kubeconfig) && (await kubectl(p, ['get', '--raw', '/readyz'])).ok;

  if (kubeletPid !== undefined && apiUp) {
    log(`deleting the pods on ${REAL_NODE_NAME}`);
    await kubectl(p, [
      'delete',
      'pods',
      '--all-namespaces',
      `--field-selector=spec.nodeName=${REAL_NODE_NAME}`,
      '--force',
      '--grace-period=0',
      '--wait=false',
    ]);
    if (containerdPid !== undefined) {
      const ctr = ctrFor(rn.containerd);
      await waitFor(
        "the kubelet to stop the real node's pods",
        logFile(dirs, KUBELET),
        async () => (await ctr(['tasks', 'ls', '-q'])).trim() === '',
        30_000,
      ).catch((e: unknown) => log(String(e)));
    }
  }
  if (kubeletPid !== undefined) log('stopping the kubelet');
  await stopProcess(dirs, KUBELET);
  await killAllTasks(rn.containerd, log);
  if (containerdPid !== undefined) log('stopping containerd');
  await stopProcess(dirs, CONTAINERD);
  await stopProcess(dirs, RELAY);
  for (const pid of await shimPids(rn.containerd)) {
    log(`stopping the leftover containerd shim ${pid}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
  for (const prefix of [rn.kubeletRoot, rn.containerd.state, rn.containerd.root]) {
    for (const point of await mountsUnder(prefix))
      await execa('umount', ['-l', point], { reject: false, stdin: 'ignore' });
  }
  if (apiUp) await kubectl(p, ['delete', 'node', REAL_NODE_NAME, '--ignore-not-found', '--wait=false']);
  await restoreSysctls(rn.savedSysctls);
  if (recorded) {
    await ip(['addr', 'del', `${KUBERNETES_SERVICE_IP}/32`, 'dev', 'lo']).catch(() => '');
    if (existsSync(`/sys/class/net/${CNI_BRIDGE}`)) await ip(['link', 'del', CNI_BRIDGE]).catch(() => '');
  }
  await rm(rn.info, { force: true });
  if (existsSync(rn.owner) && (await readFile(rn.owner, 'utf8')).trim() === p.state)
    await rm(rn.owner, { force: true });
}
