/**
 * The device key and its CSR. The key is EC P-256, made on the box with node:crypto, written as PKCS#8 PEM
 * with mode 0600; it is never printed, logged or sent anywhere — only the CSR (its public half) leaves.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { stat } from 'node:fs/promises';
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ProvisionError } from './errors.js';
import { readIfExists } from './fs-util.js';

x509.cryptoProvider.set(webcrypto as never);

export { x509 };

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A fresh EC P-256 private key as PKCS#8 PEM. */
export function generateKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** SHA-256 (hex) of the DER SubjectPublicKeyInfo: how we compare a key, a CSR and a certificate. */
export function spkiSha256(spkiDer: Uint8Array): string {
  return createHash('sha256').update(spkiDer).digest('hex');
}

export function keyPublicSha256(keyPem: string): string {
  const der = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  return spkiSha256(der);
}

/**
 * Reads the device key, refusing one that group or others can read (DESIGN §6): such a key may already be
 * copied, and a certificate for it is not worth having.
 */
export async function readDeviceKey(path: string): Promise<string> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ProvisionError(
        'KEY_MISSING',
        `no device key at ${path}: create it first with "meterlink provision key --thing NAME"`,
        { path },
      );
    throw err;
  }
  if ((mode & 0o077) !== 0)
    throw new ProvisionError(
      'KEY_UNSAFE_PERMISSIONS',
      `the device key ${path} can be read by others (mode ${(mode & 0o777).toString(8)}): run ` +
        `"chmod 600 ${path}"; if it may have been copied, make a new one (meterlink provision rotate)`,
      { path, mode: mode & 0o777 },
    );
  const pem = (await readIfExists(path)) ?? '';
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new Error(`a ${key.asymmetricKeyType} key, not EC P-256`);
  } catch (err) {
    throw new ProvisionError(
      'KEY_INVALID',
      `${path} is not a usable EC P-256 private key (${(err as Error).message}): make a new one with ` +
        '"meterlink provision key --thing NAME --force"',
      { path },
      { cause: err },
    );
  }
  return pem;
}

async function cryptoKeys(keyPem: string): Promise<webcrypto.CryptoKeyPair> {
  const priv = createPrivateKey(keyPem);
  const pkcs8 = priv.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(priv).export({ type: 'spki', format: 'der' });
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  return {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, alg, true, ['verify']),
  };
}

/** A PKCS#10 CSR with CN = thing, signed with the device key (ECDSA P-256 / SHA-256). */
export async function createCsrPem(keyPem: string, thing: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [thing] }],
    keys: await cryptoKeys(keyPem),
    signingAlgorithm: ecdsa,
  });
  return csr.toString('pem') + '\n';
}

export interface CsrInfo {
  readonly cn: string | undefined;
  readonly publicKeySha256: string;
}

export function parseCsr(pem: string): CsrInfo {
  const csr = new x509.Pkcs10CertificateRequest(pem);
  return {
    cn: csr.subjectName.getField('CN')[0],
    publicKeySha256: spkiSha256(new Uint8Array(csr.publicKey.rawData)),
  };
}

export interface CertInfo {
  readonly cert: x509.X509Certificate;
  readonly cn: string | undefined;
  readonly publicKeySha256: string;
  /** SHA-256 of the DER, hex: AWS IoT's certificate id. */
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export function parseCert(pem: string): CertInfo {
  const cert = new x509.X509Certificate(pem);
  return {
    cert,
    cn: cert.subjectName.getField('CN')[0],
    publicKeySha256: spkiSha256(new Uint8Array(cert.publicKey.rawData)),
    fingerprint: createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex'),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
