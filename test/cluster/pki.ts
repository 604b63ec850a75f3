// Certificates for the local control plane, made with the openssl CLI: a CA,
// the API server's serving certificate for 127.0.0.1, one client certificate
// per component identity, and the service-account signing key.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { KUBERNETES_SERVICE_IP } from './components.ts';

export interface ClientIdentity {
  /** File stem, e.g. "admin". */
  name: string;
  /** Certificate CN: the user name the API server sees. */
  user: string;
  /** Certificate O: the groups the API server sees. */
  groups: string[];
}

export const IDENTITIES: readonly ClientIdentity[] = [
  { name: 'admin', user: 'trace-operator-admin', groups: ['system:masters'] },
  { name: 'kube-controller-manager', user: 'system:kube-controller-manager', groups: [] },
  { name: 'kube-scheduler', user: 'system:kube-scheduler', groups: [] },
  { name: 'kwok', user: 'kwok', groups: ['system:masters'] },
];

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  clientCert: (name: string) => string;
  clientKey: (name: string) => string;
}

export function pkiPaths(dir: string): Pki {
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    serverCert: path.join(dir, 'apiserver.crt'),
    serverKey: path.join(dir, 'apiserver.key'),
    serviceAccountKey: path.join(dir, 'sa.key'),
    serviceAccountPub: path.join(dir, 'sa.pub'),
    clientCert: (name) => path.join(dir, `${name}.crt`),
    clientKey: (name) => path.join(dir, `${name}.key`),
  };
}

async function openssl(args: string[]): Promise<void> {
  await execa('openssl', args, { stdin: 'ignore' });
}

/** A key and a certificate for `subject` with `extensions`, signed by the CA; the request files are removed after. */
export async function signedCertificate(
  pki: Pki,
  certFile: string,
  keyFile: string,
  subject: string,
  extensions: string,
): Promise<void> {
  const csr = `${certFile}.csr`;
  const ext = `${certFile}.ext`;
  await writeFile(ext, extensions);
  await openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-subj',
    subject,
    '-out',
    csr,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    pki.caCert,
    '-CAkey',
    pki.caKey,
    '-CAcreateserial',
    '-days',
    '3650',
    '-sha256',
    '-extfile',
    ext,
    '-out',
    certFile,
  ]);
  await rm(csr, { force: true });
  await rm(ext, { force: true });
}

function subjectFor(identity: ClientIdentity): string {
  return `${identity.groups.map((g) => `/O=${g}`).join('')}/CN=${identity.user}`;
}

/** True when the certificate's subjectAltName has the IP address `ip`. */
async function namesIp(cert: string, ip: string): Promise<boolean> {
  const text = await execa('openssl', ['x509', '-in', cert, '-noout', '-ext', 'subjectAltName'], {
    reject: false,
    stdin: 'ignore',
  });
  return String(text.stdout).includes(`IP Address:${ip}`);
}

/** Creates whatever certificates are missing; existing ones are kept so restarts reuse them. */
export async function ensurePki(dir: string): Promise<Pki> {
  const pki = pkiPaths(dir);
  await mkdir(dir, { recursive: true });
  if (!existsSync(pki.caCert)) {
    await openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pki.caKey,
      '-out',
      pki.caCert,
      '-days',
      '3650',
      '-subj',
      '/CN=trace-operator-local-ca',
    ]);
  }
  // The ClusterIP of the `kubernetes` Service is named too, so pods of the real node verify the API server through it.
  if (!existsSync(pki.serverCert) || !(await namesIp(pki.serverCert, KUBERNETES_SERVICE_IP))) {
    const sans =
      'subjectAltName=IP:127.0.0.1,IP:' +
      KUBERNETES_SERVICE_IP +
      ',DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local';
    await signedCertificate(
      pki,
      pki.serverCert,
      pki.serverKey,
      '/CN=kube-apiserver',
      `${sans}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n`,
    );
  }
  for (const identity of IDENTITIES) {
    if (!existsSync(pki.clientCert(identity.name))) {
      await signedCertificate(
        pki,
        pki.clientCert(identity.name),
        pki.clientKey(identity.name),
        subjectFor(identity),
        'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n',
      );
    }
  }
  if (!existsSync(pki.serviceAccountKey)) {
    await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', pki.serviceAccountKey]);
    await openssl(['pkey', '-in', pki.serviceAccountKey, '-pubout', '-out', pki.serviceAccountPub]);
  }
  return pki;
}
