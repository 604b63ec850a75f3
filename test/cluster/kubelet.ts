// The real node's kubelet: its client certificate (the Node identity
// system:node:<name> in group system:nodes), the RBAC that lets that identity
// act as a node (the local API server authorizes with RBAC only, and RBAC
// has no default binding for nodes), and its configuration.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { signedCertificate, type Pki } from './pki.ts';

export interface KubeletLayout {
  /** Configuration, certificates and kubeconfig of the kubelet. */
  dir: string;
  /** --root-dir: pod volumes and plugin state. Kept outside the repository. */
  rootDir: string;
  nodeName: string;
  /** containerd's socket. */
  runtimeSocket: string;
  port: number;
  healthzPort: number;
  /** Taint registered with the node so that only pods that tolerate it (trace pods tolerate everything) land there. */
  taintKey: string;
}

export const kubeletFiles = (l: Pick<KubeletLayout, 'dir'>) => ({
  config: path.join(l.dir, 'kubelet-config.yaml'),
  kubeconfig: path.join(l.dir, 'kubelet.kubeconfig'),
  clientCert: path.join(l.dir, 'kubelet-client.crt'),
  clientKey: path.join(l.dir, 'kubelet-client.key'),
  certDir: path.join(l.dir, 'kubelet-pki'),
});

/** A client certificate for system:node:<name>, signed by the control plane's CA (made once, reused). */
export async function ensureNodeCertificate(l: KubeletLayout, pki: Pki): Promise<void> {
  const files = kubeletFiles(l);
  if (existsSync(files.clientCert) && existsSync(files.clientKey)) return;
  await mkdir(l.dir, { recursive: true });
  await signedCertificate(
    pki,
    files.clientCert,
    files.clientKey,
    `/O=system:nodes/CN=system:node:${l.nodeName}`,
    'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n',
  );
}

export function kubeletKubeconfig(server: string, pki: Pki, l: KubeletLayout): string {
  const files = kubeletFiles(l);
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'trace-operator-local', cluster: { server, 'certificate-authority': pki.caCert } }],
    users: [
      {
        name: `system:node:${l.nodeName}`,
        user: { 'client-certificate': files.clientCert, 'client-key': files.clientKey },
      },
    ],
    contexts: [
      { name: 'trace-operator-local', context: { cluster: 'trace-operator-local', user: `system:node:${l.nodeName}` } },
    ],
    'current-context': 'trace-operator-local',
  });
}

/**
 * Binds the built-in system:node ClusterRole to this node's user, the role the
 * Node authorizer would grant on a cluster that runs it (this one runs RBAC only).
 */
export function nodeRbac(l: Pick<KubeletLayout, 'nodeName'>): object {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      name: `trace-operator:real-node:${l.nodeName}`,
      labels: { 'app.kubernetes.io/part-of': 'trace-operator-local-cluster' },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:node' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `system:node:${l.nodeName}` }],
  };
}

/** The KubeletConfiguration, with the reasons for each departure from the defaults. */
export function kubeletConfig(l: KubeletLayout, pki: Pki): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // Loopback only: the API server reaches kubelets by InternalIP, 127.0.0.1.
    address: '127.0.0.1',
    port: l.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: l.healthzPort,
    // The local API server presents no client certificate to kubelets (it
    // runs without --kubelet-client-certificate), so logs, attach and exec
    // arrive anonymous; the kubelet listens on 127.0.0.1 only.
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false }, x509: { clientCAFile: pki.caCert } },
    authorization: { mode: 'AlwaysAllow' },
    // No systemd here, and this machine runs cgroup v1 (hybrid), which the kubelet refuses unless told.
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${l.runtimeSocket}`,
    registerNode: true,
    registerWithTaints: [{ key: l.taintKey, value: 'true', effect: 'NoSchedule' }],
    // A shared development machine: never evict for disk or memory others use, never garbage-collect the imported images.
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'nodefs.inodesFree': '1%',
      'imagefs.available': '1%',
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // syncFrequency stays the stock 1m, as on a real cluster: a stop must not
    // wait for the pod sync that copies ConfigMap changes into the volume
    // (test/real-node/stop.e2e.ts shows both the fast path and that fallback).
    fileCheckFrequency: '20s',
    nodeStatusUpdateFrequency: '10s',
    staticPodPath: '',
    volumePluginDir: path.join(l.dir, 'volume-plugins'),
    resolvConf: existsSync('/etc/resolv.conf') ? '/etc/resolv.conf' : '',
    serializeImagePulls: false,
    maxPods: 50,
    logging: { format: 'text' },
  };
}

export async function writeKubeletFiles(l: KubeletLayout, server: string, pki: Pki): Promise<void> {
  const files = kubeletFiles(l);
  await mkdir(files.certDir, { recursive: true });
  await mkdir(l.rootDir, { recursive: true });
  await writeFile(files.kubeconfig, kubeletKubeconfig(server, pki, l), { mode: 0o600 });
  await writeFile(files.config, stringify(kubeletConfig(l, pki)));
}

export function kubeletArgs(l: KubeletLayout): string[] {
  const files = kubeletFiles(l);
  return [
    `--config=${files.config}`,
    `--kubeconfig=${files.kubeconfig}`,
    `--hostname-override=${l.nodeName}`,
    '--node-ip=127.0.0.1',
    `--root-dir=${l.rootDir}`,
    `--cert-dir=${files.certDir}`,
    '--v=1',
  ];
}

/**
 * The kernel settings a kubelet changes at start (vm.overcommit_memory,
 * kernel.panic, kernel.panic_on_oops, ...). They are saved (in a file under
 * /run, so a new clone of the repository finds it too) before its first start
 * and put back when the real node stops, so the machine is left as found.
 */
const KUBELET_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];

export async function saveSysctls(file: string): Promise<void> {
  if (existsSync(file)) return;
  const values: Record<string, string> = {};
  for (const key of KUBELET_SYSCTLS) values[key] = (await readFile(`/proc/sys/${key}`, 'utf8')).trim();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(values)}\n`);
}

export async function restoreSysctls(file: string): Promise<void> {
  if (!existsSync(file)) return;
  const values = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
  for (const [key, value] of Object.entries(values)) await writeFile(`/proc/sys/${key}`, value).catch(() => undefined);
  await rm(file, { force: true });
}
