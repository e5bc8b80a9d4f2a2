/**
 * The record kept next to a registered certificate: which AWS certificate it is and which key it was made
 * for. A second `register` run finds "the certificate for this key" by it, without listing every
 * certificate in the account.
 */
import { readIfExists, writeFileAtomic } from './fs-util.js';

export interface CertRecord {
  readonly certificateId: string;
  readonly certificateArn?: string;
  readonly thing: string;
  /** SHA-256 (hex) of the device key's public SubjectPublicKeyInfo. */
  readonly publicKeySha256: string;
  /** How it was obtained. */
  readonly via: 'register' | 'fleet';
  readonly createdAt: string;
}

export async function readRecord(path: string): Promise<CertRecord | undefined> {
  const text = await readIfExists(path);
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as Partial<CertRecord>;
    if (
      typeof r.certificateId === 'string' &&
      typeof r.publicKeySha256 === 'string' &&
      typeof r.thing === 'string'
    )
      return r as CertRecord;
  } catch {
    // A damaged record only costs a new certificate; the next run writes a good one.
  }
  return undefined;
}

export async function writeRecord(path: string, record: CertRecord): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + '\n', { mode: 0o644 });
}
