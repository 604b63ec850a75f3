// Brings the local control plane up and down: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok with simulated nodes.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { get as httpGet } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  etcd,
  kubeApiserver,
  kubeControllerManager,
  kubeScheduler,
  kwok,
  type ComponentSpec,
  type Layout,
  type Ports,
} from './components.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { clusterPaths, processDirs, type ClusterPaths } from './paths.ts';
import { ensurePki, IDENTITIES, type Pki } from './pki.ts';
import { downRealNode } from './real-node.ts';
import {
  freePort,
  logFile,
  recordedNames,
  runningPid,
  startDetached,
  stopProcess,
  waitFor,
  type ProcessDirs,
} from './processes.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;

export type Log = (line: string) => void;

function httpOk(url: string, pki?: Pki): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (res: { statusCode?: number; resume: () => void }): void => {
      res.resume();
      resolve(res.statusCode === 200);
    };
    const req = pki
      ? httpsGet(
          url,
          {
            ca: readFileSync(pki.caCert),
            cert: readFileSync(pki.clientCert('admin')),
            key: readFileSync(pki.clientKey('admin')),
            timeout: 2000,
          },
          done,
        )
      : httpGet(url, { timeout: 2000 }, done);
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

async function readPorts(p: ClusterPaths): Promise<Ports | undefined> {
  const file = path.join(p.state, 'ports.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, 'utf8')) as Ports;
}

/** True when every component is running and the API server answers /readyz. */
export async function isUp(p: ClusterPaths = clusterPaths()): Promise<boolean> {
  const dirs = processDirs(p);
  for (const name of COMPONENTS) if ((await runningPid(dirs, name)) === undefined) return false;
  const ports = await readPorts(p);
  if (ports === undefined || !existsSync(p.kubeconfig)) return false;
  return httpOk(`https://127.0.0.1:${ports.apiserver}/readyz`, await ensurePki(path.join(p.state, 'pki')));
}

export async function ensureBinaries(p: ClusterPaths, log: Log): Promise<void> {
  const script = path.join(here, 'build-testbin.sh');
  const child = execa('bash', [script], { env: { TESTBIN_DIR: p.testbin }, stdin: 'ignore', reject: false });
  child.stderr?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') log(line);
  });
  const result = await child;
  if (result.exitCode !== 0)
    throw new Error(
      `building the control-plane binaries failed (exit ${result.exitCode}); see the step log named above`,
    );
}

async function start(dirs: ProcessDirs, spec: ComponentSpec, log: Log): Promise<number> {
  log(`starting ${spec.name} (log: ${logFile(dirs, spec.name)})`);
  return startDetached(dirs, spec.name, spec.binary, spec.args);
}

async function kubectl(p: ClusterPaths, args: string[], input?: string): Promise<string> {
  const result = await execa(path.join(p.testbin, 'kubectl'), ['--kubeconfig', p.kubeconfig, ...args], {
    input,
    reject: false,
  });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${String(result.stderr)}`);
  return String(result.stdout);
}

async function succeeds(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch {
    return false;
  }
}

export async function up(log: Log, p: ClusterPaths = clusterPaths()): Promise<void> {
  await ensureBinaries(p, log);
  if (await isUp(p)) {
    log('the local control plane is already running');
    return;
  }
  // A half-running cluster (a crash, a reboot) is torn down and started anew.
  await down(() => undefined, p);
  const dirs = processDirs(p);
  await mkdir(p.state, { recursive: true });
  const pki = await ensurePki(path.join(p.state, 'pki'));
  const ports: Ports = {
    etcdClient: await freePort(),
    etcdPeer: await freePort(),
    apiserver: await freePort(),
    kwokServer: await freePort(),
  };
  await writeFile(path.join(p.state, 'ports.json'), JSON.stringify(ports));
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const kubeconfigFor = (identity: string): string => path.join(p.state, `${identity}.kubeconfig`);
  for (const identity of IDENTITIES) await writeKubeconfig(kubeconfigFor(identity.name), server, pki, identity.name);
  const layout: Layout = {
    testbin: p.testbin,
    state: p.state,
    pki,
    ports,
    kubeconfigFor,
    kwokStages: path.join(here, 'kwok-stages.yaml'),
  };

  const etcdPid = await start(dirs, etcd(layout), log);
  await waitFor(
    'etcd',
    logFile(dirs, 'etcd'),
    () => httpOk(`http://127.0.0.1:${ports.etcdClient}/health`),
    30_000,
    etcdPid,
  );
  const apiserverPid = await start(dirs, kubeApiserver(layout), log);
  await waitFor(
    'kube-apiserver',
    logFile(dirs, 'kube-apiserver'),
    () => httpOk(`${server}/readyz`, pki),
    90_000,
    apiserverPid,
  );
  await writeKubeconfig(p.kubeconfig, server, pki, 'admin');
  await kubectl(p, ['apply', '--server-side', '-f', path.join(p.testbin, 'kwok-crds')]);
  await kubectl(p, [
    'wait',
    '--for=condition=Established',
    'crd/logs.kwok.x-k8s.io',
    'crd/attaches.kwok.x-k8s.io',
    '--timeout=30s',
  ]);
  for (const spec of [kubeControllerManager(layout), kubeScheduler(layout), kwok(layout)]) await start(dirs, spec, log);

  await kubectl(p, ['apply', '-f', path.join(here, 'nodes.yaml')]);
  await waitFor(
    'kwok nodes',
    logFile(dirs, 'kwok'),
    () => succeeds(() => kubectl(p, ['wait', '--for=condition=Ready', 'node', '--all', '--timeout=2s'])),
    60_000,
  );
  // The API server taints new nodes not-ready; the node lifecycle controller lifts it once kwok reports them Ready.
  await waitFor(
    'the not-ready taints to be lifted',
    logFile(dirs, 'kube-controller-manager'),
    async () => (await kubectl(p, ['get', 'nodes', '-o', 'jsonpath={.items[*].spec.taints}'])).trim() === '',
    60_000,
  );
  await waitFor(
    'the default service account',
    logFile(dirs, 'kube-controller-manager'),
    () => succeeds(() => kubectl(p, ['get', 'serviceaccount', 'default', '-n', 'default'])),
    60_000,
  );
  log('the local control plane is ready');
}

export async function down(log: Log, p: ClusterPaths = clusterPaths()): Promise<void> {
  // The real node first (nothing when it never ran), while the API server can still see its pods go.
  await downRealNode(log, p);
  const dirs = processDirs(p);
  const names = await recordedNames(dirs);
  // Stop in reverse dependency order so nothing logs errors about a vanished API server for long.
  const order = [...COMPONENTS].reverse().filter((n) => names.includes(n));
  for (const name of [...order, ...names.filter((n) => !order.includes(n as (typeof COMPONENTS)[number]))]) {
    log(`stopping ${name}`);
    await stopProcess(dirs, name);
  }
  // State is thrown away (etcd data, kubeconfigs); certificates are kept so a new cluster starts faster.
  for (const entry of ['etcd', 'pids', 'ports.json', 'kubeconfig', ...IDENTITIES.map((i) => `${i.name}.kubeconfig`)]) {
    await rm(path.join(p.state, entry), { recursive: true, force: true });
  }
}
