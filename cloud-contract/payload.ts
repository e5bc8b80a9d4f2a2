/**
 * Any meterlink payload, auto-detected: a COSE_Sign1 batch (CBOR, first byte 0xd2 for tag 18 or 0x84 for the
 * bare array), or a JSON health/event message (first non-blank byte `{`, told apart by its `kind`). For tools
 * (`meterlink decode`) and the cloud's catch-all paths. Never throws.
 */
import { decodeBatchMessage, inspectBatchMessage, type DecodeOptions, type DecodedBatch } from './decode.js';
import { MAX_JSON_MESSAGE_BYTES, parseEvent, parseHealth, type EventV1, type HealthV1 } from './messages.js';
import type { Rejection } from './reject.js';

export type PayloadType = 'batch' | 'health' | 'event';

export type DecodedPayload =
  | ({ readonly type: 'batch' } & DecodedBatch)
  | { readonly ok: true; readonly type: 'health'; readonly message: HealthV1 }
  | { readonly ok: true; readonly type: 'event'; readonly message: EventV1 }
  | (Rejection & { readonly type: PayloadType | 'unknown' });

export function detectPayloadType(bytes: Uint8Array): PayloadType | 'unknown' {
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  )
    i++;
  const b = bytes[i];
  if (i === 0 && (b === 0xd2 || b === 0x84)) return 'batch';
  if (b !== 0x7b) return 'unknown';
  // JSON: look at `kind` without trusting the rest (the strict parse comes next).
  const head = new TextDecoder().decode(bytes.subarray(0, Math.min(bytes.length, MAX_JSON_MESSAGE_BYTES)));
  const m = /"kind"\s*:\s*"(health|event)"/.exec(head);
  return m === null ? 'unknown' : (m[1] as PayloadType);
}

/**
 * Decodes any payload. Batches are verified when `resolveKey` is given, else inspected (`signature:
 * 'unchecked'`).
 */
export async function decodePayload(
  bytes: Uint8Array,
  opts: Partial<DecodeOptions> = {},
): Promise<DecodedPayload> {
  const type = detectPayloadType(bytes);
  switch (type) {
    case 'batch': {
      const r =
        opts.resolveKey !== undefined
          ? await decodeBatchMessage(bytes, { ...opts, resolveKey: opts.resolveKey })
          : inspectBatchMessage(bytes, opts.limits);
      return { ...r, type };
    }
    case 'health': {
      const r = parseHealth(bytes);
      return r.ok ? { ok: true, type, message: r.message } : { ...r, type };
    }
    case 'event': {
      const r = parseEvent(bytes);
      return r.ok ? { ok: true, type, message: r.message } : { ...r, type };
    }
    default:
      return {
        ok: false,
        type,
        reason: 'UNKNOWN_PAYLOAD',
        detail: 'neither a COSE_Sign1 batch (CBOR) nor a JSON health/event message',
      };
  }
}
