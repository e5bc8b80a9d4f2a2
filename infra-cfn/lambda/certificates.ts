/**
 * Device certificates from AWS IoT (DescribeCertificate by certificate id = kid hex), cached per Lambda
 * container. Not-found answers are cached briefly too, so a flood of garbage kids cannot hammer the IoT API.
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { DescribeCertificateCommand, type IoTClient } from '@aws-sdk/client-iot';
import { IngestError } from './errors.js';

export interface DeviceCertificate {
  readonly id: string;
  readonly pem: string;
  /** IoT status: only ACTIVE certificates may sign. */
  readonly status: string;
  /**
   * The certificate's public key, parsed once when fetched (not per record). Only set when the certificate's
   * SHA-256 fingerprint is its id, which is how AWS IoT names certificates and what the batch kid is.
   */
  readonly publicKey: KeyObject | undefined;
}

function publicKeyIfNamedByFingerprint(id: string, pem: string): KeyObject | undefined {
  try {
    const cert = new X509Certificate(pem);
    return createHash('sha256').update(cert.raw).digest('hex') === id ? cert.publicKey : undefined;
  } catch {
    return undefined;
  }
}

export interface CertificateSource {
  /** The certificate with this id, or undefined when IoT does not know it. Throws CERT_LOOKUP_FAILED. */
  get(id: string): Promise<DeviceCertificate | undefined>;
  readonly stats: { hits: number; misses: number };
  clear(): void;
}

export interface IotCertificateSourceOptions {
  readonly iot: Pick<IoTClient, 'send'>;
  /** How long a found certificate is trusted without asking again (status changes: revocation). */
  readonly ttlMs?: number;
  /** How long "no such certificate" is remembered. */
  readonly negativeTtlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly value: Promise<DeviceCertificate | undefined>;
  expires: number;
}

export function createIotCertificateSource(opts: IotCertificateSourceOptions): CertificateSource {
  const ttl = opts.ttlMs ?? 15 * 60_000;
  const negativeTtl = opts.negativeTtlMs ?? 60_000;
  const max = opts.maxEntries ?? 20_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, Entry>();
  const stats = { hits: 0, misses: 0 };

  async function fetchOne(id: string): Promise<DeviceCertificate | undefined> {
    try {
      const out = await opts.iot.send(new DescribeCertificateCommand({ certificateId: id }));
      const d = out.certificateDescription;
      if (!d?.certificatePem) return undefined;
      return {
        id,
        pem: d.certificatePem,
        status: d.status ?? 'UNKNOWN',
        publicKey: publicKeyIfNamedByFingerprint(id, d.certificatePem),
      };
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'ResourceNotFoundException' || name === 'InvalidRequestException') return undefined;
      throw new IngestError(
        'CERT_LOOKUP_FAILED',
        `IoT DescribeCertificate(${id}) failed: ${name ?? 'error'}`,
        { id },
        { cause: err },
      );
    }
  }

  return {
    stats,
    clear: () => cache.clear(),
    async get(id) {
      const t = now();
      const hit = cache.get(id);
      if (hit && hit.expires > t) {
        stats.hits++;
        return hit.value;
      }
      stats.misses++;
      const entry: Entry = { value: fetchOne(id), expires: t + ttl };
      cache.delete(id);
      cache.set(id, entry);
      // Map iteration order is insertion order: the first key is the oldest entry.
      if (cache.size > max) cache.delete(cache.keys().next().value as string);
      try {
        const v = await entry.value;
        if (v === undefined) entry.expires = t + negativeTtl;
        return v;
      } catch (err) {
        // Failures are not cached: the next record asks again.
        if (cache.get(id) === entry) cache.delete(id);
        throw err;
      }
    },
  };
}
