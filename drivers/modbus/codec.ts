/**
 * Register words ↔ typed values. Decoding keeps the meter's value exactly (`Value`: integer mantissa with the
 * decimal scale and unit conversion in the exponent, or the float as read); encoding is the simulator's half.
 */
import { f32Value, f64Value, intValue, type Value } from '../../cloud-contract/sample.js';
import { plausibleRange, registerWords, unitExponent, type RegisterDef, type WordOrder } from './profile.js';

/** Reorders the bytes of one value between wire order and big-endian (ABCD) order; an involution. */
export function reorder(bytes: Buffer, order: WordOrder): Buffer {
  const out = Buffer.from(bytes);
  if (order === 'CDAB' || order === 'DCBA') {
    const words = out.length / 2;
    for (let w = 0; w < words / 2; w++) {
      const a = w * 2;
      const b = (words - 1 - w) * 2;
      for (let k = 0; k < 2; k++) {
        const t = out[a + k]!;
        out[a + k] = out[b + k]!;
        out[b + k] = t;
      }
    }
  }
  if (order === 'BADC' || order === 'DCBA') {
    for (let i = 0; i < out.length; i += 2) {
      const t = out[i]!;
      out[i] = out[i + 1]!;
      out[i + 1] = t;
    }
  }
  return out;
}

export type Decoded =
  | { readonly ok: true; readonly value: Value }
  | { readonly ok: false; readonly why: 'sentinel' | 'nan' | 'range' | 'unsafe'; readonly raw: string };

/**
 * Decodes one register from its wire bytes (2 × words bytes). Every register of every poll passes here, so a
 * good value costs only its `Value`: ABCD bytes are read in place, the hex text is made only when needed.
 */
export function decodeRegister(reg: RegisterDef, wire: Buffer): Decoded {
  const order = reg.wordOrder ?? 'ABCD';
  const be = order === 'ABCD' ? wire : reorder(wire, order);
  if (reg.sentinels?.length) {
    const raw = hexOf(be);
    if (reg.sentinels.includes(raw)) return { ok: false, why: 'sentinel', raw };
  }
  const exponent = (reg.scale ?? 0) + (unitExponent(reg.channel, reg.unit) ?? 0);
  let value: Value;
  switch (reg.type) {
    case 'int16':
      value = intValue(be.readInt16BE(0), exponent);
      break;
    case 'uint16':
      value = intValue(be.readUInt16BE(0), exponent);
      break;
    case 'int32':
      value = intValue(be.readInt32BE(0), exponent);
      break;
    case 'uint32':
      value = intValue(be.readUInt32BE(0), exponent);
      break;
    case 'int64':
    case 'uint64': {
      const big = reg.type === 'int64' ? be.readBigInt64BE(0) : be.readBigUInt64BE(0);
      if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
        return { ok: false, why: 'unsafe', raw: hexOf(be) };
      value = intValue(Number(big), exponent);
      break;
    }
    case 'float32': {
      const f = be.readFloatBE(0);
      if (!Number.isFinite(f)) return { ok: false, why: 'nan', raw: hexOf(be) };
      value = f32Value(f, exponent);
      break;
    }
    case 'float64': {
      const f = be.readDoubleBE(0);
      if (!Number.isFinite(f)) return { ok: false, why: 'nan', raw: hexOf(be) };
      value = f64Value(f, exponent);
      break;
    }
  }
  const range = plausibleRange(reg);
  const n = valueOf(value);
  if (n < range[0] || n > range[1]) return { ok: false, why: 'range', raw: hexOf(be) };
  return { ok: true, value };
}

function hexOf(bytes: Buffer): string {
  return bytes.toString('hex').toUpperCase();
}

function valueOf(v: Value): number {
  return v.exponent >= 0 ? v.mantissa * 10 ** v.exponent : v.mantissa / 10 ** -v.exponent;
}

const intLimits: Record<string, readonly [number, number]> = {
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/**
 * Encodes a value given in the channel's canonical unit into the register's wire bytes (simulator side).
 * Integers are rounded to the register's resolution and clamped to its type.
 */
export function encodeRegister(reg: RegisterDef, canonical: number): Buffer {
  const exponent = (reg.scale ?? 0) + (unitExponent(reg.channel, reg.unit) ?? 0);
  const scaled = exponent >= 0 ? canonical / 10 ** exponent : canonical * 10 ** -exponent;
  const be = Buffer.alloc(registerWords[reg.type] * 2);
  const limits = intLimits[reg.type];
  const int = limits ? Math.min(limits[1], Math.max(limits[0], Math.round(scaled))) : 0;
  switch (reg.type) {
    case 'int16':
      be.writeInt16BE(int);
      break;
    case 'uint16':
      be.writeUInt16BE(int);
      break;
    case 'int32':
      be.writeInt32BE(int);
      break;
    case 'uint32':
      be.writeUInt32BE(int);
      break;
    case 'int64':
      be.writeBigInt64BE(BigInt(int));
      break;
    case 'uint64':
      be.writeBigUInt64BE(BigInt(int));
      break;
    case 'float32':
      be.writeFloatBE(scaled);
      break;
    case 'float64':
      be.writeDoubleBE(scaled);
      break;
  }
  return reorder(be, reg.wordOrder ?? 'ABCD');
}
