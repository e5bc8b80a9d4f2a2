/**
 * Device certificates from AWS IoT (DescribeCertificate by certificate id = kid hex) and the certificates
 * attached to each thing (ListThingPrincipals), cached per Lambda container. Not-found answers are cached
 * briefly too, so a flood of garbage kids cannot hammer the IoT API.
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { DescribeCertificateCommand, ListThingPrincipalsCommand, type IoTClient } from '@aws-sdk/client-iot';
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
  /**
   * Ids of the certificates attached to this thing (empty when IoT knows no such thing). A certificate that is
   * ACTIVE but attached to another thing must not sign for this one. When a cached answer lacks `expected`,
   * IoT is asked again (at most once per not-found time for the same thing and certificate): a certificate
   * attached since (a box that rotated its key) is never rejected from a stale answer. Throws
   * CERT_LOOKUP_FAILED.
   */
  attachedTo(thing: string, expected?: string): Promise<ReadonlySet<string>>;
  /** Lookups of both kinds answered from the cache (hits) or asked of IoT (misses). */
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

interface Entry<T> {
  readonly value: Promise<T>;
  readonly fetched: number;
  expires: number;
}

/** A bounded per-container cache: found values for `ttl`, "nothing" for `negativeTtl`, failures never. */
function ttlCache<T>(
  opts: { ttl: number; negativeTtl: number; max: number; now: () => number },
  stats: { hits: number; misses: number },
  isNothing: (v: T) => boolean,
) {
  const cache = new Map<string, Entry<T>>();
  return {
    clear: () => cache.clear(),
    /** How long ago the cached value was asked for, if there is one. */
    age: (key: string) => {
      const hit = cache.get(key);
      return hit ? opts.now() - hit.fetched : undefined;
    },
    forget: (key: string) => cache.delete(key),
    async get(key: string, load: () => Promise<T>): Promise<T> {
      const t = opts.now();
      const hit = cache.get(key);
      if (hit && hit.expires > t) {
        stats.hits++;
        return hit.value;
      }
      stats.misses++;
      const entry: Entry<T> = { value: load(), fetched: t, expires: t + opts.ttl };
      cache.delete(key);
      cache.set(key, entry);
      // Map iteration order is insertion order: the first key is the oldest entry.
      if (cache.size > opts.max) cache.delete(cache.keys().next().value as string);
      try {
        const v = await entry.value;
        if (isNothing(v)) entry.expires = t + opts.negativeTtl;
        return v;
      } catch (err) {
        // Failures are not cached: the next record asks again.
        if (cache.get(key) === entry) cache.delete(key);
        throw err;
      }
    },
  };
}

const CERT_ARN = /:cert\/([0-9a-f]{64})$/;

export function createIotCertificateSource(opts: IotCertificateSourceOptions): CertificateSource {
  const limits = {
    ttl: opts.ttlMs ?? 15 * 60_000,
    negativeTtl: opts.negativeTtlMs ?? 60_000,
    max: opts.maxEntries ?? 20_000,
    now: opts.now ?? Date.now,
  };
  const stats = { hits: 0, misses: 0 };
  const certs = ttlCache<DeviceCertificate | undefined>(limits, stats, (v) => v === undefined);
  const things = ttlCache<ReadonlySet<string>>(limits, stats, (v) => v.size === 0);
  // When IoT was last asked again because a cached answer lacked a certificate ("thing cert" → time).
  const rechecked = new Map<string, number>();

  const lookupFailed = (call: string, context: Record<string, unknown>, err: unknown) =>
    new IngestError(
      'CERT_LOOKUP_FAILED',
      `IoT ${call} failed: ${(err as { name?: string }).name ?? 'error'}`,
      context,
      { cause: err },
    );
  const notFound = (err: unknown) => {
    const name = (err as { name?: string }).name;
    return name === 'ResourceNotFoundException' || name === 'InvalidRequestException';
  };

  async function fetchCert(id: string): Promise<DeviceCertificate | undefined> {
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
      if (notFound(err)) return undefined;
      throw lookupFailed(`DescribeCertificate(${id})`, { id }, err);
    }
  }

  async function fetchAttached(thing: string): Promise<ReadonlySet<string>> {
    const ids = new Set<string>();
    try {
      let nextToken: string | undefined;
      do {
        const out = await opts.iot.send(new ListThingPrincipalsCommand({ thingName: thing, nextToken }));
        for (const arn of out.principals ?? []) {
          const id = CERT_ARN.exec(arn)?.[1];
          if (id) ids.add(id);
        }
        nextToken = out.nextToken || undefined;
      } while (nextToken);
    } catch (err) {
      if (notFound(err)) return ids;
      throw lookupFailed(`ListThingPrincipals(${thing})`, { thing }, err);
    }
    return ids;
  }

  return {
    stats,
    clear: () => {
      certs.clear();
      things.clear();
    },
    get: (id) => certs.get(id, () => fetchCert(id)),
    async attachedTo(thing, expected) {
      const asked = limits.now();
      const ids = await things.get(thing, () => fetchAttached(thing));
      if (expected === undefined || ids.has(expected)) return ids;
      const key = `${thing} ${expected}`;
      const t = limits.now();
      const last = rechecked.get(key);
      rechecked.delete(key);
      rechecked.set(key, last !== undefined && t - last < limits.negativeTtl ? last : t);
      if (rechecked.size > limits.max) rechecked.delete(rechecked.keys().next().value as string);
      // Asked just now, or asked again for this certificate within the not-found time: the answer stands.
      const justAsked = (things.age(thing) ?? Infinity) <= t - asked;
      if (justAsked || (last !== undefined && t - last < limits.negativeTtl)) return ids;
      things.forget(thing);
      return things.get(thing, () => fetchAttached(thing));
    },
  };
}
