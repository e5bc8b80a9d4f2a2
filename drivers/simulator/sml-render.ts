/**
 * Builds SML 1.04 files as an eHZ meter pushes them: PublicOpen.Res, GetList.Res (server id, OBIS value list
 * with units and scalers), PublicClose.Res, each message with its CRC, wrapped in transport v1 (escapes,
 * padding, CRC-16/X-25). The simulator's half of drivers/sml/.
 */
import { messageCrc } from '../sml/messages.js';
import { packFile } from '../sml/transport.js';

/** One SML element to encode. */
export type SmlOut =
  | { readonly t: 'octets'; readonly v: Uint8Array }
  | { readonly t: 'uint' | 'int'; readonly v: bigint; readonly bytes: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 }
  | { readonly t: 'list'; readonly v: readonly SmlOut[] }
  | { readonly t: 'none' };

export const none: SmlOut = { t: 'none' };
export const octets = (v: Uint8Array | string): SmlOut => ({
  t: 'octets',
  v: typeof v === 'string' ? Buffer.from(v, 'hex') : v,
});
export const uint = (v: number | bigint, bytes: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8): SmlOut => ({
  t: 'uint',
  v: BigInt(v),
  bytes,
});
export const sint = (v: number | bigint, bytes: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8): SmlOut => ({
  t: 'int',
  v: BigInt(v),
  bytes,
});
export const list = (...v: SmlOut[]): SmlOut => ({ t: 'list', v });

function tl(type: number, len: number): number[] {
  // Length counts the TL bytes themselves (not for lists); more than 15 needs a second TL byte.
  if (len <= 15) return [(type << 4) | len];
  const total = type === 7 ? len : len + 1;
  if (total > 0xff) throw new RangeError('SML element too long for the simulator');
  return [0x80 | (type << 4) | (total >> 4), total & 0x0f];
}

export function encodeSml(e: SmlOut): Buffer {
  switch (e.t) {
    case 'none':
      return Buffer.from([0x01]);
    case 'octets': {
      const head = e.v.length + 1 <= 15 ? tl(0, e.v.length + 1) : tl(0, e.v.length);
      return Buffer.concat([Buffer.from(head), Buffer.from(e.v)]);
    }
    case 'uint':
    case 'int': {
      const out = Buffer.alloc(e.bytes + 1);
      out[0] = ((e.t === 'int' ? 5 : 6) << 4) | (e.bytes + 1);
      let v = BigInt.asUintN(8 * e.bytes, e.v);
      for (let i = e.bytes; i >= 1; i--) {
        out[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      return out;
    }
    case 'list':
      return Buffer.concat([Buffer.from(tl(7, e.v.length)), ...e.v.map(encodeSml)]);
  }
}

/** One message: transaction id, group 0, abort 0, body [tag, content], CRC over the bytes before it, 0x00. */
export function encodeMessage(transactionId: number, tag: number, content: SmlOut): Buffer {
  const head = Buffer.concat([
    Buffer.from([0x76]),
    encodeSml(octets(Buffer.from(transactionId.toString(16).padStart(8, '0'), 'hex'))),
    encodeSml(uint(0, 1)),
    encodeSml(uint(0, 1)),
    encodeSml(list(uint(tag, 2), content)),
  ]);
  return Buffer.concat([head, encodeSml(uint(messageCrc(head, 0, head.length), 2)), Buffer.from([0x00])]);
}

export interface SmlValueOut {
  /** OBIS as 6 bytes hex, e.g. `0100010800ff`. */
  readonly obis: string;
  readonly unit: number;
  readonly scaler: number;
  readonly value: SmlOut;
}

export function obisBytes(code: string): string {
  const m = /^(\d+)-(\d+):(\d+)\.(\d+)\.(\d+)(?:\*(\d+))?$/.exec(code);
  if (!m) throw new RangeError(`bad OBIS code ${code}`);
  return [m[1], m[2], m[3], m[4], m[5], m[6] ?? '255']
    .map((x) => Number(x).toString(16).padStart(2, '0'))
    .join('');
}

/** A whole file: open, one GetList.Res, close. */
export function renderSmlFile(serverId: string, values: readonly SmlValueOut[], seq: number): Buffer {
  const open = list(
    none,
    none,
    octets(seq.toString(16).padStart(8, '0')),
    octets(serverId),
    none,
    uint(1, 1),
  );
  const vals = list(
    ...values.map((v) => list(octets(v.obis), none, none, uint(v.unit, 1), sint(v.scaler, 1), v.value, none)),
  );
  const getList = list(none, octets(serverId), none, list(uint(1, 1), uint(seq, 4)), vals, none, none);
  const payload = Buffer.concat([
    encodeMessage(seq * 3, 0x0101, open),
    encodeMessage(seq * 3 + 1, 0x0701, getList),
    encodeMessage(seq * 3 + 2, 0x0201, list(none)),
  ]);
  return packFile(payload);
}

export interface SmlSnapshot {
  /** Import and export counters in 0.1 Wh. */
  readonly importDeciWh: bigint;
  readonly exportDeciWh: bigint;
  /** Signed net power per phase, W (import positive). */
  readonly powerW: readonly [number, number, number];
}

/** The values of a three-phase eHZ: 1.8.0/1.8.1/1.8.2, 2.8.0 (scaler −1, Wh), 16.7.0 and 36/56/76.7.0 (W). */
export function smlValues(s: SmlSnapshot, opts: { counterOnly?: boolean } = {}): SmlValueOut[] {
  const wh = (code: string, v: bigint): SmlValueOut => ({
    obis: obisBytes(code),
    unit: 30,
    scaler: -1,
    value: uint(v, 8),
  });
  const w = (code: string, v: number): SmlValueOut => ({
    obis: obisBytes(code),
    unit: 27,
    scaler: 0,
    value: sint(v, 4),
  });
  const out = [
    wh('1-0:1.8.0', s.importDeciWh),
    wh('1-0:1.8.1', s.importDeciWh),
    wh('1-0:1.8.2', 0n),
    wh('1-0:2.8.0', s.exportDeciWh),
  ];
  if (opts.counterOnly) return out;
  const [l1, l2, l3] = s.powerW;
  return [
    ...out,
    w('1-0:16.7.0', l1 + l2 + l3),
    w('1-0:36.7.0', l1),
    w('1-0:56.7.0', l2),
    w('1-0:76.7.0', l3),
  ];
}
