// Kubeconfig files for the local control plane, one per client identity.
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { Pki } from './pki.ts';

export function kubeconfigYaml(server: string, pki: Pki, identity: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'trace-operator-local', cluster: { server, 'certificate-authority': pki.caCert } }],
    users: [
      {
        name: identity,
        user: { 'client-certificate': pki.clientCert(identity), 'client-key': pki.clientKey(identity) },
      },
    ],
    contexts: [
      {
        name: 'trace-operator-local',
        context: { cluster: 'trace-operator-local', user: identity, namespace: 'default' },
      },
    ],
    'current-context': 'trace-operator-local',
  });
}

export async function writeKubeconfig(file: string, server: string, pki: Pki, identity: string): Promise<void> {
  await writeFile(file, kubeconfigYaml(server, pki, identity), { mode: 0o600 });
}
