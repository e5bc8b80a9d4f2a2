/**
 * The hostile-input decoder for batch messages. Every payload is untrusted, so the order is fixed:
 *   1. size limit, before any parsing;
 *   2. strict CBOR read of the envelope (depth and item limits), COSE_Sign1 shape, protected header;
 *   3. key lookup by `kid` (a certificate must hash to the kid), ES256 verification over the Sig_structure;
 *   4. only then: inflate with a hard output cap (no zip bombs), strict read of the document, schema checks.
 * It never throws: every outcome is `{ok: true, ...}` or a `Rejection` with a stable `RejectReason`.
 */
import { createPublicKey, verify, KeyObject, X509Certificate, createHash } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { CborError, CborTagged, decodeCbor, type CborValue } from './cbor.js';
import { batchFromCbor, type BatchV1 } from './batch.js';
import {
  ALG_ES256,
  BATCH_AAD,
  CONTENT_TYPE_BATCH_V1,
  COSE_SIGN1_TAG,
  HEADER_ALG,
  HEADER_CONTENT_TYPE,
  HEADER_KID,
  HEADER_ZIP,
  KID_LENGTH,
  SIGNATURE_LENGTH,
  ZIP_DEFLATE,
  certificateDer,
  kidToHex,
  sigStructure,
} from './cose.js';
import { RejectError, reject, type RejectReason, type Rejection } from './reject.js';

export interface DecodeLimits {
  /** Largest message accepted, checked before parsing. Default 128 KiB (IoT Core's message limit). */
  readonly maxMessageBytes: number;
  /** Largest inflated document. Default 2 MiB (BatchBuilder's default is smaller; see DEFAULT_MAX_DOCUMENT_BYTES). */
  readonly maxDocumentBytes: number;
  /** Deepest CBOR nesting. Default 8 (the document needs 6). */
  readonly maxDepth: number;
  /** Most CBOR data items in the document. Default 1,000,000. */
  readonly maxItems: number;
  /** Most samples in one batch. Default 100,000. */
  readonly maxSamples: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxMessageBytes: 128 * 1024,
  maxDocumentBytes: 2 * 1024 * 1024,
  maxDepth: 8,
  maxItems: 1_000_000,
  maxSamples: 100_000,
});

/**
 * What `resolveKey` may return for a kid: a certificate (DER bytes, PEM text, or X509Certificate — it must
 * hash to the kid), a public key (KeyObject or PEM — trusted as given), or undefined when the kid is unknown.
 */
export type ResolvedKey = Uint8Array | string | KeyObject | X509Certificate | undefined;

export interface DecodeOptions {
  /** Looks up the device certificate or key for a `kid` (e.g. AWS IoT DescribeCertificate by its hex id). */
  readonly resolveKey: (kid: Uint8Array, kidHex: string) => ResolvedKey | Promise<ResolvedKey>;
  readonly limits?: Partial<DecodeLimits>;
  /** If set, the document's device must be this thing name (e.g. the topic's thing). */
  readonly expectedDevice?: string;
}

export interface DecodedBatch {
  readonly ok: true;
  /** The kid (32 bytes) and its hex spelling (the AWS IoT certificate id). */
  readonly kid: Uint8Array;
  readonly kidHex: string;
  readonly signature: 'valid' | 'unchecked';
  /** Whether the payload was deflated on the wire, and the sizes. */
  readonly compressed: boolean;
  readonly messageBytes: number;
  readonly documentBytes: number;
  readonly batch: BatchV1;
}

export type DecodeResult = DecodedBatch | Rejection;

interface Envelope {
  protectedBytes: Uint8Array;
  kid: Uint8Array;
  zip: boolean;
  payload: Uint8Array;
  signature: Uint8Array;
}

function cborOrReject(
  bytes: Uint8Array,
  limits: { maxDepth: number; maxItems: number },
  tags: number[] = [],
): CborValue {
  try {
    return decodeCbor(bytes, { ...limits, tags });
  } catch (err) {
    if (err instanceof CborError) reject(err.code, err.message);
    throw err;
  }
}

function parseEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length === 0) reject('TRUNCATED', 'empty message');
  const top = cborOrReject(bytes, { maxDepth: 3, maxItems: 64 }, [COSE_SIGN1_TAG]);
  let arr: CborValue = top;
  if (top instanceof CborTagged) arr = top.value; // tag 18 is optional (RFC 9052 §2: the application knows)
  if (!Array.isArray(arr) || arr.length !== 4) reject('NOT_COSE_SIGN1', 'not a 4-element COSE_Sign1 array');
  const [ph, unprotected, payload, signature] = arr;
  if (!(ph instanceof Uint8Array)) return reject('NOT_COSE_SIGN1', 'protected header is not a byte string');
  if (!(unprotected instanceof Map)) return reject('NOT_COSE_SIGN1', 'unprotected header is not a map');
  if (!(payload instanceof Uint8Array))
    return reject('NOT_COSE_SIGN1', 'payload is not a byte string (detached?)');
  if (!(signature instanceof Uint8Array)) return reject('NOT_COSE_SIGN1', 'signature is not a byte string');
  // Everything that matters is protected; an unprotected header could be altered in transit, so we refuse any.
  if (unprotected.size !== 0) reject('BAD_HEADER', 'unprotected header must be empty');
  const h = cborOrReject(ph, { maxDepth: 2, maxItems: 32 });
  if (!(h instanceof Map)) return reject('BAD_HEADER', 'protected header is not a map');
  for (const k of h.keys())
    if (k !== HEADER_ALG && k !== HEADER_CONTENT_TYPE && k !== HEADER_KID && k !== HEADER_ZIP)
      reject('BAD_HEADER', `unexpected header parameter ${JSON.stringify(k)}`);
  if (h.get(HEADER_ALG) !== ALG_ES256)
    reject('BAD_ALG', `alg ${String(h.get(HEADER_ALG))} is not ES256 (-7)`);
  if (h.get(HEADER_CONTENT_TYPE) !== CONTENT_TYPE_BATCH_V1)
    reject('BAD_HEADER', `content type is not ${CONTENT_TYPE_BATCH_V1}`);
  const kid = h.get(HEADER_KID);
  if (!(kid instanceof Uint8Array) || kid.length !== KID_LENGTH)
    return reject('BAD_HEADER', 'kid must be a 32-byte SHA-256 certificate fingerprint');
  let zip = false;
  if (h.has(HEADER_ZIP)) {
    if (h.get(HEADER_ZIP) !== ZIP_DEFLATE)
      reject('BAD_COMPRESSION', `unknown zip ${String(h.get(HEADER_ZIP))}`);
    zip = true;
  }
  if (signature.length !== SIGNATURE_LENGTH)
    reject('BAD_SIGNATURE', 'ES256 signature must be 64 bytes (r||s)');
  return { protectedBytes: ph, kid, zip, payload, signature };
}

function publicKeyFor(resolved: Exclude<ResolvedKey, undefined>, kid: Uint8Array): KeyObject {
  let key: KeyObject;
  let certDer: Uint8Array | undefined;
  try {
    if (resolved instanceof X509Certificate) certDer = new Uint8Array(resolved.raw);
    else if (resolved instanceof Uint8Array) certDer = resolved;
    else if (typeof resolved === 'string' && resolved.includes('BEGIN CERTIFICATE'))
      certDer = certificateDer(resolved);
    if (certDer !== undefined) {
      const fp = createHash('sha256').update(certDer).digest();
      if (!fp.equals(kid)) reject('KID_MISMATCH', 'the certificate for this kid does not hash to the kid');
      key = new X509Certificate(certDer).publicKey;
    } else if (resolved instanceof KeyObject) {
      key = resolved.type === 'private' ? createPublicKey(resolved) : resolved;
    } else {
      key = createPublicKey(resolved as string);
    }
  } catch (err) {
    if (err instanceof RejectError) throw err;
    return reject('BAD_KEY', `resolveKey gave no usable certificate or key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    reject('BAD_KEY', 'the key for this kid is not an EC P-256 key');
  return key;
}

function inflate(payload: Uint8Array, limits: DecodeLimits): Uint8Array {
  try {
    return new Uint8Array(inflateRawSync(payload, { maxOutputLength: limits.maxDocumentBytes }));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || /Cannot create a Buffer larger/.test((err as Error).message))
      reject('DECOMPRESSED_TOO_LARGE', `payload inflates beyond ${limits.maxDocumentBytes} bytes`);
    return reject('BAD_COMPRESSION', `payload does not inflate: ${(err as Error).message}`);
  }
}

function documentOf(env: Envelope, limits: DecodeLimits): { batch: BatchV1; documentBytes: number } {
  const doc = env.zip ? inflate(env.payload, limits) : env.payload;
  if (doc.length > limits.maxDocumentBytes) reject('DECOMPRESSED_TOO_LARGE', 'document exceeds the cap');
  const x = cborOrReject(doc, limits);
  return { batch: batchFromCbor(x, limits), documentBytes: doc.length };
}

function limitsOf(partial: Partial<DecodeLimits> | undefined): DecodeLimits {
  return { ...DEFAULT_DECODE_LIMITS, ...partial };
}

function rejection(err: unknown): Rejection {
  if (err instanceof RejectError) return { ok: false, reason: err.reason, detail: err.detail };
  // Anything else is a decoder bug; it still must not escape as a throw (the Lambda must not crash).
  return { ok: false, reason: 'INTERNAL', detail: `decoder error: ${(err as Error)?.message}` };
}

/** Decodes and verifies a COSE_Sign1 batch message. Never throws. */
export async function decodeBatchMessage(bytes: Uint8Array, opts: DecodeOptions): Promise<DecodeResult> {
  const limits = limitsOf(opts.limits);
  try {
    if (!(bytes instanceof Uint8Array)) reject('NOT_CBOR', 'message is not bytes');
    if (bytes.length > limits.maxMessageBytes)
      reject('TOO_LARGE', `message is ${bytes.length} bytes, the limit is ${limits.maxMessageBytes}`);
    const env = parseEnvelope(bytes);
    const kidHex = kidToHex(env.kid);
    let resolved: ResolvedKey;
    try {
      resolved = await opts.resolveKey(env.kid, kidHex);
    } catch (err) {
      return {
        ok: false,
        reason: 'KEY_LOOKUP_FAILED',
        detail: `resolveKey(${kidHex}) failed: ${(err as Error)?.message}`,
      };
    }
    if (resolved === undefined || resolved === null)
      reject('UNKNOWN_KID', `no certificate known for kid ${kidHex}`);
    const key = publicKeyFor(resolved, env.kid);
    const ok = verify(
      'sha256',
      sigStructure(env.protectedBytes, env.payload, BATCH_AAD),
      { key, dsaEncoding: 'ieee-p1363' },
      env.signature,
    );
    if (!ok) reject('BAD_SIGNATURE', `signature does not verify with the key for kid ${kidHex}`);
    const { batch, documentBytes } = documentOf(env, limits);
    if (opts.expectedDevice !== undefined && batch.device !== opts.expectedDevice)
      reject('DEVICE_MISMATCH', `batch is from ${batch.device}, expected ${opts.expectedDevice}`);
    return {
      ok: true,
      kid: env.kid,
      kidHex,
      signature: 'valid',
      compressed: env.zip,
      messageBytes: bytes.length,
      documentBytes,
      batch,
    };
  } catch (err) {
    return rejection(err);
  }
}

/** Decodes a batch message for display without checking its signature (`signature: 'unchecked'`). Never throws. */
export function inspectBatchMessage(bytes: Uint8Array, limits?: Partial<DecodeLimits>): DecodeResult {
  const l = limitsOf(limits);
  try {
    if (!(bytes instanceof Uint8Array)) reject('NOT_CBOR', 'message is not bytes');
    if (bytes.length > l.maxMessageBytes)
      reject('TOO_LARGE', `message is ${bytes.length} bytes, the limit is ${l.maxMessageBytes}`);
    const env = parseEnvelope(bytes);
    const { batch, documentBytes } = documentOf(env, l);
    return {
      ok: true,
      kid: env.kid,
      kidHex: kidToHex(env.kid),
      signature: 'unchecked',
      compressed: env.zip,
      messageBytes: bytes.length,
      documentBytes,
      batch,
    };
  } catch (err) {
    return rejection(err);
  }
}

/** Decodes an unsigned batch document (no envelope), e.g. for tests and tools. Never throws. */
export function decodeBatchDocument(
  doc: Uint8Array,
  limits?: Partial<DecodeLimits>,
): { ok: true; batch: BatchV1 } | Rejection {
  const l = limitsOf(limits);
  try {
    if (doc.length > l.maxDocumentBytes) reject('TOO_LARGE', 'document exceeds the cap');
    return { ok: true, batch: batchFromCbor(cborOrReject(doc, l), l) };
  } catch (err) {
    return rejection(err);
  }
}

export type { RejectReason };
