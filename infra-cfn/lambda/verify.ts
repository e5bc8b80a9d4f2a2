/**
 * One stream record → a verified batch, or a rejection with a reason code, or "retry later". Shared by the
 * ingest Lambda and lake:rebuild (infra-cfn/lake-rebuild.ts), so the archive is re-verified exactly as the
 * stream was.
 *
 * Trust chain: the topic rule adds `principal()` (the certificate the TLS session authenticated) and the
 * topic's thing name; the IoT policy lets a certificate publish only under its own thing's topic. The batch
 * must be signed with that same certificate (`kid` = principal), the certificate must be ACTIVE in IoT and
 * attached to the topic's thing, and the batch's device must be the topic's thing. The attachment check stops a
 * certificate of one box (ACTIVE, its own policy) from signing for another box's thing name.
 */
import { decodeBatchMessage, type BatchV1, type RejectReason } from '../../cloud-contract/index.js';
import type { CertificateSource } from './certificates.js';
import { parseRuleEnvelope, type RuleEnvelope } from './envelope.js';
import { isIngestError } from './errors.js';

/** `CERT_NOT_ATTACHED`: an ACTIVE certificate signed correctly, but IoT does not list it on the topic's thing. */
export type VerifyRejectReason =
  RejectReason | 'BAD_ENVELOPE' | 'PRINCIPAL_MISMATCH' | 'CERT_NOT_ACTIVE' | 'CERT_NOT_ATTACHED';

export type VerifyOutcome =
  | {
      readonly kind: 'accepted';
      readonly envelope: RuleEnvelope;
      readonly batch: BatchV1;
      readonly kid: string;
    }
  | {
      readonly kind: 'rejected';
      readonly reason: VerifyRejectReason;
      readonly detail: string;
      readonly thing?: string;
    }
  | { readonly kind: 'retry'; readonly reason: 'KEY_LOOKUP_FAILED'; readonly detail: string };

export async function verifyRecord(data: Uint8Array, certs: CertificateSource): Promise<VerifyOutcome> {
  const parsed = parseRuleEnvelope(data);
  if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason, detail: parsed.detail };
  const env = parsed.envelope;
  let kidSeen: string | undefined;
  let inactive: string | undefined;
  const result = await decodeBatchMessage(env.payload, {
    expectedDevice: env.thing,
    resolveKey: async (_kid, kidHex) => {
      kidSeen = kidHex;
      // Only the certificate the device connected with may have signed: never look up any other kid.
      if (kidHex !== env.principal) return undefined;
      const cert = await certs.get(kidHex);
      if (cert && cert.status !== 'ACTIVE') {
        inactive = cert.status;
        return undefined;
      }
      // The cached key (fingerprint = id = kid checked once, at lookup) saves parsing the certificate for every
      // record; a certificate not named by its fingerprint goes through the decoder's own kid check.
      return cert?.publicKey ?? cert?.pem;
    },
  });
  if (result.ok) {
    let attached: ReadonlySet<string>;
    try {
      attached = await certs.attachedTo(env.thing, result.kidHex);
    } catch (err) {
      if (isRetryableLookupError(err))
        return { kind: 'retry', reason: 'KEY_LOOKUP_FAILED', detail: (err as Error).message };
      throw err;
    }
    if (!attached.has(result.kidHex))
      return {
        kind: 'rejected',
        reason: 'CERT_NOT_ATTACHED',
        detail: `certificate ${result.kidHex} is not attached to thing ${env.thing}`,
        thing: env.thing,
      };
    return { kind: 'accepted', envelope: env, batch: result.batch, kid: result.kidHex };
  }
  if (result.reason === 'KEY_LOOKUP_FAILED')
    return { kind: 'retry', reason: result.reason, detail: result.detail };
  if (result.reason === 'UNKNOWN_KID' && kidSeen !== undefined && kidSeen !== env.principal)
    return {
      kind: 'rejected',
      reason: 'PRINCIPAL_MISMATCH',
      detail: `batch signed by ${kidSeen}, but the connection was authenticated as ${env.principal}`,
      thing: env.thing,
    };
  if (result.reason === 'UNKNOWN_KID' && inactive !== undefined)
    return {
      kind: 'rejected',
      reason: 'CERT_NOT_ACTIVE',
      detail: `certificate ${env.principal} is ${inactive}`,
      thing: env.thing,
    };
  return { kind: 'rejected', reason: result.reason, detail: result.detail, thing: env.thing };
}

/** True for errors the certificate lookup throws that mean "try again later". */
export const isRetryableLookupError = (err: unknown): boolean => isIngestError(err, 'CERT_LOOKUP_FAILED');
