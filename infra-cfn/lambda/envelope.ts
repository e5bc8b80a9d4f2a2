/**
 * The JSON document the batch topic rule puts on the stream (infra-cfn/templates/iot.yaml, BatchRule):
 *   SELECT encode(*, 'base64') AS payload, topic(3) AS thing, principal() AS principal,
 *          timestamp() AS receivedAt, topic() AS topic FROM 'meterlink/v1/+/batch'
 * `thing`, `principal` and `receivedAt` are facts IoT Core authenticated; `payload` is the device's bytes.
 * Hostile until proven otherwise: size first, then strict field types.
 */

export interface RuleEnvelope {
  /** COSE_Sign1 batch message bytes. */
  readonly payload: Uint8Array;
  /** Thing name from the topic (the IoT policy lets a device publish only under its own). */
  readonly thing: string;
  /** `principal()`: the id (SHA-256 hex) of the certificate the device connected with. */
  readonly principal: string;
  /** IoT Core receive time, ms since the epoch. */
  readonly receivedAt: number;
  readonly topic: string;
}

export type EnvelopeResult =
  { ok: true; envelope: RuleEnvelope } | { ok: false; reason: 'BAD_ENVELOPE'; detail: string };

/** IoT Core messages are ≤ 128 KiB; base64 makes 4/3 of that, plus the small JSON around it. */
export const MAX_ENVELOPE_BYTES = 200 * 1024;

const THING_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const CERT_ID_RE = /^[0-9a-f]{64}$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function bad(detail: string): EnvelopeResult {
  return { ok: false, reason: 'BAD_ENVELOPE', detail };
}

export function parseRuleEnvelope(data: Uint8Array): EnvelopeResult {
  if (data.length > MAX_ENVELOPE_BYTES)
    return bad(`record is ${data.length} bytes, the limit is ${MAX_ENVELOPE_BYTES}`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    return bad('record is not JSON (expected the batch rule envelope)');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return bad('record is not a JSON object');
  const o = doc as Record<string, unknown>;
  const { payload, thing, principal, receivedAt, topic } = o;
  if (
    typeof payload !== 'string' ||
    payload.length === 0 ||
    payload.length % 4 !== 0 ||
    !BASE64_RE.test(payload)
  )
    return bad('payload is not base64');
  if (typeof thing !== 'string' || !THING_RE.test(thing)) return bad('thing is not a valid thing name');
  // principal() is the certificate id for certificate-authenticated clients; anything else (Cognito ids,
  // "thing/..." strings) cannot have signed a batch.
  if (typeof principal !== 'string' || !CERT_ID_RE.test(principal))
    return bad('principal is not a certificate id (64 lowercase hex)');
  if (typeof receivedAt !== 'number' || !Number.isSafeInteger(receivedAt) || receivedAt < 0)
    return bad('receivedAt is not a timestamp in ms');
  if (typeof topic !== 'string' || topic !== `meterlink/v1/${thing}/batch`)
    return bad('topic does not match meterlink/v1/<thing>/batch for the thing');
  return {
    ok: true,
    envelope: {
      payload: new Uint8Array(Buffer.from(payload, 'base64')),
      thing,
      principal,
      receivedAt,
      topic,
    },
  };
}

/** Builds the envelope the rule would build (tests, the pipeline forwarder, the benchmark). */
export function buildRuleEnvelope(e: RuleEnvelope): Buffer {
  return Buffer.from(
    JSON.stringify({
      payload: Buffer.from(e.payload).toString('base64'),
      thing: e.thing,
      principal: e.principal,
      receivedAt: e.receivedAt,
      topic: e.topic,
    }),
  );
}
