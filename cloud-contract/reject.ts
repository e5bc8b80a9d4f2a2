/**
 * Why the cloud refused a message. Every rejection of the hostile-input decoders carries one of these stable
 * codes (metrics and alarms key on them; never match on `detail`, which is for humans).
 */
export const RejectReasons = [
  /** The message (or a JSON document) is larger than the limit, checked before any parsing. */
  'TOO_LARGE',
  /** Not well-formed CBOR, or CBOR we never emit (indefinite lengths, floats, non-preferred heads, ...). */
  'NOT_CBOR',
  /** The CBOR ends before the item does (or declares a length the bytes cannot hold). */
  'TRUNCATED',
  /** Nesting deeper than the limit. */
  'TOO_DEEP',
  /** More CBOR data items than the limit. */
  'TOO_MANY_ITEMS',
  /** Well-formed CBOR, but not a COSE_Sign1 structure (RFC 9052 §4.2). */
  'NOT_COSE_SIGN1',
  /** The protected header is malformed, has unknown critical parameters, or lacks `kid`. */
  'BAD_HEADER',
  /** `alg` is not ES256 (-7). */
  'BAD_ALG',
  /** `resolveKey` knows no key for this `kid`. */
  'UNKNOWN_KID',
  /** The certificate `resolveKey` returned does not hash to `kid`. */
  'KID_MISMATCH',
  /** `resolveKey` failed (e.g. the certificate store was unreachable): retry later, the message may be fine. */
  'KEY_LOOKUP_FAILED',
  /** The key `resolveKey` returned is not a usable P-256 public key or certificate. */
  'BAD_KEY',
  /** The ES256 signature does not verify over the Sig_structure. */
  'BAD_SIGNATURE',
  /** The declared compression is unknown, or the compressed payload does not inflate. */
  'BAD_COMPRESSION',
  /** The payload inflates beyond the decompressed-size cap (a zip bomb, or a batch built against the rules). */
  'DECOMPRESSED_TOO_LARGE',
  /** The document's version is not one this decoder knows. */
  'UNSUPPORTED_VERSION',
  /** Valid CBOR, valid signature, but the document breaks the batch schema (batch.cddl) or its invariants. */
  'BAD_DOCUMENT',
  /** The document names another device than the one the caller expected (thing name / principal). */
  'DEVICE_MISMATCH',
  /** A JSON message (health/event) is not valid JSON or breaks its schema. */
  'BAD_JSON',
  /** Not any meterlink payload (for the auto-detecting decoders). */
  'UNKNOWN_PAYLOAD',
  /** A decoder bug caught at its boundary (never expected; the fuzz test asserts it never happens). */
  'INTERNAL',
] as const;

export type RejectReason = (typeof RejectReasons)[number];

export interface Rejection {
  readonly ok: false;
  readonly reason: RejectReason;
  readonly detail: string;
}

/** Thrown inside the decoders only; turned into a `Rejection` at their boundary. */
export class RejectError extends Error {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'RejectError';
  }
}

export function isRejectReason(x: unknown): x is RejectReason {
  return typeof x === 'string' && (RejectReasons as readonly string[]).includes(x);
}

export function reject(reason: RejectReason, detail: string): never {
  throw new RejectError(reason, detail);
}
