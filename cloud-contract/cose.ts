/**
 * COSE_Sign1 (RFC 9052 §4.2) with ES256 around the batch document.
 *
 *   COSE_Sign1 = #6.18([ protected: bstr .cbor header, unprotected: {}, payload: bstr, signature: bstr ])
 *   header     = { 1 (alg): -7, 3 (content type): CONTENT_TYPE, 4 (kid): SHA-256(cert DER), ? "zip": "DEF" }
 *
 * `kid` sits in the protected header so the signature also binds which certificate it claims. Compression is
 * declared by the `zip` parameter (value "DEF", raw DEFLATE RFC 1951, as JWE's "zip" in RFC 7516 §4.1.3);
 * COSE has no registered label for it, so it is a text label, and it is protected so nobody can strip it.
 * The signature covers the payload bytes exactly as carried (compressed), so the cloud verifies before it
 * inflates anything.
 */
import { createHash, createPrivateKey, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { CborWriter } from './cbor.js';
import { encodeBatch, type BatchInput } from './batch.js';
import { ContractError } from './errors.js';

export const COSE_SIGN1_TAG = 18;
export const ALG_ES256 = -7;
export const HEADER_ALG = 1;
export const HEADER_CONTENT_TYPE = 3;
export const HEADER_KID = 4;
export const HEADER_ZIP = 'zip';
export const ZIP_DEFLATE = 'DEF';
export const CONTENT_TYPE_BATCH_V1 = 'application/vnd.meterlink.batch.v1+cbor';
/** external_aad of the Sig_structure: domain separation, so a batch signature means nothing elsewhere. */
export const BATCH_AAD = 'meterlink/v1/batch';
export const KID_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

export type Compression = 'auto' | 'deflate-raw' | 'none';

export interface SignOptions {
  /** The device's P-256 private key (KeyObject or PEM). */
  readonly privateKey: KeyObject | string;
  /** The device certificate (DER bytes or PEM): its SHA-256 is the `kid`. Or give `kid` directly. */
  readonly certDer?: Uint8Array | string;
  readonly kid?: Uint8Array;
  /** `auto` (default) deflates when that makes the message smaller. */
  readonly compression?: Compression;
}

/** DER bytes of the first certificate in a PEM text (or the DER bytes themselves). */
export function certificateDer(certDerOrPem: Uint8Array | string): Uint8Array {
  if (typeof certDerOrPem !== 'string') return certDerOrPem;
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(certDerOrPem);
  if (m === null)
    throw new ContractError('BAD_CERTIFICATE', 'no "-----BEGIN CERTIFICATE-----" block in the PEM text', {});
  return new Uint8Array(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'));
}

/** The `kid`: SHA-256 of the certificate's DER (what AWS IoT calls the certificate id, in hex). */
export function kidFromCertificate(certDerOrPem: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(certificateDer(certDerOrPem)).digest());
}

/** The certificate id as AWS IoT spells it (lowercase hex of the kid). */
export function kidToHex(kid: Uint8Array): string {
  return Buffer.from(kid).toString('hex');
}

export function encodeProtectedHeader(kid: Uint8Array, zip: boolean): Uint8Array {
  const w = new CborWriter(128);
  w.map(zip ? 4 : 3);
  w.int(HEADER_ALG);
  w.int(ALG_ES256);
  w.int(HEADER_CONTENT_TYPE);
  w.text(CONTENT_TYPE_BATCH_V1);
  w.int(HEADER_KID);
  w.bytes(kid);
  if (zip) {
    w.text(HEADER_ZIP);
    w.text(ZIP_DEFLATE);
  }
  return w.finish();
}

/** Sig_structure (RFC 9052 §4.4) for COSE_Sign1: ["Signature1", protected, external_aad, payload]. */
export function sigStructure(protectedHeader: Uint8Array, payload: Uint8Array, aad = BATCH_AAD): Uint8Array {
  const w = new CborWriter(payload.length + protectedHeader.length + 64);
  w.array(4);
  w.text('Signature1');
  w.bytes(protectedHeader);
  w.bytes(new TextEncoder().encode(aad));
  w.bytes(payload);
  return w.finish();
}

/** Assembles the tagged COSE_Sign1 message. */
export function encodeCoseSign1(
  protectedHeader: Uint8Array,
  payload: Uint8Array,
  signature: Uint8Array,
): Uint8Array {
  const w = new CborWriter(payload.length + protectedHeader.length + 96);
  w.tag(COSE_SIGN1_TAG);
  w.array(4);
  w.bytes(protectedHeader);
  w.map(0);
  w.bytes(payload);
  w.bytes(signature);
  return w.finish();
}

function privateKeyObject(key: KeyObject | string): KeyObject {
  let k: KeyObject;
  try {
    k = typeof key === 'string' ? createPrivateKey(key) : key;
  } catch (cause) {
    throw new ContractError('BAD_KEY', 'the private key is not a readable PEM key', {}, { cause });
  }
  if (
    k.type !== 'private' ||
    k.asymmetricKeyType !== 'ec' ||
    k.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  )
    throw new ContractError('BAD_KEY', 'the device key must be an EC P-256 private key (ES256)', {
      type: k.type,
      keyType: k.asymmetricKeyType,
    });
  return k;
}

/** A reusable signer: resolves the key and kid once (the batcher signs many batches with one key). */
export interface BatchSigner {
  readonly kid: Uint8Array;
  /** Signs an already encoded (uncompressed) batch document. */
  sign(document: Uint8Array): Uint8Array;
  /** Bytes the COSE envelope adds around a payload of `payloadLength` bytes (exact). */
  overhead(payloadLength: number, zip: boolean): number;
}

export function createBatchSigner(opts: SignOptions): BatchSigner {
  const key = privateKeyObject(opts.privateKey);
  const kid = opts.kid ?? (opts.certDer !== undefined ? kidFromCertificate(opts.certDer) : undefined);
  if (kid === undefined || kid.length !== KID_LENGTH)
    throw new ContractError(
      'BAD_CERTIFICATE',
      'signing needs the device certificate (certDer) or a 32-byte kid',
      {},
    );
  const compression = opts.compression ?? 'auto';
  const headers = { plain: encodeProtectedHeader(kid, false), zip: encodeProtectedHeader(kid, true) };
  return {
    kid,
    sign(document) {
      let payload = document;
      let zip = false;
      if (compression !== 'none') {
        const z = new Uint8Array(deflateRawSync(document, { level: 9 }));
        // `auto` keeps the smaller message: the zip header costs 8 bytes.
        if (compression === 'deflate-raw' || z.length + 8 < document.length) {
          payload = z;
          zip = true;
        }
      }
      const ph = zip ? headers.zip : headers.plain;
      const signature = sign('sha256', sigStructure(ph, payload), { key, dsaEncoding: 'ieee-p1363' });
      return encodeCoseSign1(ph, payload, new Uint8Array(signature));
    },
    overhead(payloadLength, zip) {
      const ph = zip ? headers.zip : headers.plain;
      const bstrHead = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
      // tag + array head + protected bstr + {} + payload bstr head + signature bstr
      return 1 + 1 + bstrHead(ph.length) + ph.length + 1 + bstrHead(payloadLength) + 2 + SIGNATURE_LENGTH;
    },
  };
}

/** Signs a batch: the encoded document bytes, or `{device, samples}` to encode first. Returns COSE_Sign1 bytes. */
export function signBatch(input: Uint8Array | BatchInput, opts: SignOptions): Uint8Array {
  const document = input instanceof Uint8Array ? input : encodeBatch(input);
  return createBatchSigner(opts).sign(document);
}

/** The public key in a certificate (DER or PEM). */
export function certificatePublicKey(certDerOrPem: Uint8Array | string): KeyObject {
  try {
    return new X509Certificate(certificateDer(certDerOrPem)).publicKey;
  } catch (cause) {
    throw new ContractError('BAD_CERTIFICATE', 'not a readable X.509 certificate', {}, { cause });
  }
}
