/**
 * Throwaway PKI for `meterlink demo` and the tests: a CA, a server certificate for localhost/127.0.0.1, and
 * device certificates whose CN is a thing name (as AWS IoT issues them). EC P-256 throughout, made
 * in-process with WebCrypto and @peculiar/x509, so validity dates can be anything (an expired certificate
 * included). Never used for a real box: its key is made by `meterlink provision key`.
 */
import { createHash, webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface Issued {
  /** PKCS#8 PEM private key. */
  readonly keyPem: string;
  readonly certPem: string;
  readonly certDer: Buffer;
  /** SHA-256 of the certificate DER, hex: what AWS IoT uses as the certificate id. */
  readonly fingerprint: string;
}

export interface Ca extends Issued {
  readonly name: string;
  readonly keys: webcrypto.CryptoKeyPair;
  readonly cert: x509.X509Certificate;
}

export interface IssueOptions {
  /** Subject CN; for device certificates, the thing name. */
  cn: string;
  /** DNS names and IP addresses for a server certificate's subjectAltName. */
  dns?: string[];
  ips?: string[];
  server?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END ${label}-----\n`;
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function issued(cert: x509.X509Certificate, keyPem: string): Issued {
  const certDer = Buffer.from(cert.rawData);
  return {
    keyPem,
    certPem: cert.toString('pem') + '\n',
    certDer,
    fingerprint: createHash('sha256').update(certDer).digest('hex'),
  };
}

function serial(): string {
  // Positive 16-byte serial (top bit clear).
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] ?? 0) & 0x7f;
  return Buffer.from(b).toString('hex');
}

export async function makeCa(name = 'meterlink throwaway CA'): Promise<Ca> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { ...issued(cert, await exportKeyPem(keys.privateKey)), name, keys, cert };
}

export async function issueCert(ca: Ca, opts: IssueOptions): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([
      opts.server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ]),
    await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
  ];
  const names = [
    ...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${opts.cn}`,
    issuer: ca.cert.subject,
    notBefore: opts.notBefore ?? new Date(Date.now() - DAY),
    notAfter: opts.notAfter ?? new Date(Date.now() + 30 * DAY),
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions,
  });
  return issued(cert, await exportKeyPem(keys.privateKey));
}

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/** Writes `<base>.crt` and `<base>.key` (mode 0600) into `dir`. */
export async function writeIssued(dir: string, base: string, item: Issued): Promise<CertFiles> {
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  await writeFile(cert, item.certPem);
  await writeFile(key, item.keyPem, { mode: 0o600 });
  return { cert, key };
}
