// The command lines of the control plane's components. Everything listens on
// 127.0.0.1 only; the API server serves TLS and authorizes with RBAC.
import path from 'node:path';
import type { Pki } from './pki.ts';

export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  /** kwok's kubelet-like server (pod logs and attach for simulated pods). */
  kwokServer: number;
}

export interface ComponentSpec {
  name: string;
  binary: string;
  args: string[];
}

export interface Layout {
  testbin: string;
  state: string;
  pki: Pki;
  ports: Ports;
  kubeconfigFor: (identity: string) => string;
  kwokStages: string;
}

export const SERVICE_CIDR = '10.96.0.0/16';
/** The ClusterIP of the `kubernetes` Service: the first address of SERVICE_CIDR (the real node relays it to the API server). */
export const KUBERNETES_SERVICE_IP = '10.96.0.1';

export function etcd(l: Layout): ComponentSpec {
  const client = `http://127.0.0.1:${l.ports.etcdClient}`;
  const peer = `http://127.0.0.1:${l.ports.etcdPeer}`;
  return {
    name: 'etcd',
    binary: path.join(l.testbin, 'etcd'),
    args: [
      '--name=local',
      `--data-dir=${path.join(l.state, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=local=${peer}`,
      '--listen-metrics-urls=',
      // A throwaway test store: skipping fsync makes it several times faster.
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=8589934592',
    ],
  };
}

export function kubeApiserver(l: Layout): ComponentSpec {
  return {
    name: 'kube-apiserver',
    binary: path.join(l.testbin, 'kube-apiserver'),
    args: [
      `--etcd-servers=http://127.0.0.1:${l.ports.etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // The endpoint reconciler refuses loopback addresses, and nothing here needs the kubernetes Service's endpoints.
      '--endpoint-reconciler-type=none',
      // Reach kubelets (here kwok's server) by their InternalIP, 127.0.0.1, never by a DNS lookup of a node name.
      '--kubelet-preferred-address-types=InternalIP',
      `--secure-port=${l.ports.apiserver}`,
      `--tls-cert-file=${l.pki.serverCert}`,
      `--tls-private-key-file=${l.pki.serverKey}`,
      `--client-ca-file=${l.pki.caCert}`,
      `--service-account-key-file=${l.pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${l.pki.serviceAccountKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      // Benchmarks create tens of thousands of objects quickly.
      '--max-requests-inflight=3000',
      '--max-mutating-requests-inflight=1000',
      '--event-ttl=1h',
    ],
  };
}

export function kubeControllerManager(l: Layout): ComponentSpec {
  return {
    name: 'kube-controller-manager',
    binary: path.join(l.testbin, 'kube-controller-manager'),
    args: [
      `--kubeconfig=${l.kubeconfigFor('kube-controller-manager')}`,
      '--controllers=garbage-collector-controller,deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller,job-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,ttl-after-finished-controller,node-lifecycle-controller,pod-garbage-collector-controller,clusterrole-aggregation-controller',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${l.pki.serviceAccountKey}`,
      `--root-ca-file=${l.pki.caCert}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--concurrent-job-syncs=20',
      '--concurrent-gc-syncs=40',
      '--kube-api-qps=500',
      '--kube-api-burst=1000',
    ],
  };
}

export function kubeScheduler(l: Layout): ComponentSpec {
  return {
    name: 'kube-scheduler',
    binary: path.join(l.testbin, 'kube-scheduler'),
    args: [
      `--kubeconfig=${l.kubeconfigFor('kube-scheduler')}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--kube-api-qps=500',
      '--kube-api-burst=1000',
    ],
  };
}

export function kwok(l: Layout): ComponentSpec {
  return {
    name: 'kwok',
    binary: path.join(l.testbin, 'kwok'),
    args: [
      `--kubeconfig=${l.kubeconfigFor('kwok')}`,
      `--config=${l.kwokStages}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-ip=127.0.0.1',
      '--cidr=10.244.0.0/16',
      '--node-lease-duration-seconds=40',
      '--enable-crds=Logs,Attach',
      `--server-address=127.0.0.1:${l.ports.kwokServer}`,
      `--node-port=${l.ports.kwokServer}`,
    ],
  };
}
