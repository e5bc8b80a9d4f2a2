/**
 * A small CBOR (RFC 8949) writer and a strict reader for exactly the subset the contract emits.
 *
 * Why our own instead of cbor-x: the reader faces hostile bytes, so it must bound depth and item counts,
 * refuse to pre-allocate from a declared length that the remaining bytes cannot hold, and reject everything
 * we never emit (indefinite lengths, floats, undefined, unknown tags, non-preferred heads, duplicate map keys).
 * The writer always uses preferred serialization (RFC 8949 §4.1: shortest heads), so the same document always
 * gives the same bytes and the reader can insist on it.
 */

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Byte length of a CBOR head carrying `n` (≥ 0). */
export function headSize(n: number | bigint): number {
  if (n < 24) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  if (n < 0x100000000) return 5;
  return 9;
}

/** Byte length of the CBOR encoding of the integer `n`. */
export function intSize(n: number | bigint): number {
  return headSize(n >= 0 ? n : typeof n === 'bigint' ? -1n - n : -1 - n);
}

export class CborWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initial = 4096) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.len;
  }

  /** The bytes written so far, not copied: valid until the next write. */
  get written(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  private ensure(n: number): void {
    if (this.len + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  head(major: number, n: number | bigint): void {
    if (typeof n === 'bigint') return this.bigHead(major, n);
    const m = major << 5;
    // Inline room check: a batch writes one head per value, several times over while the builder proves it.
    if (this.len + 9 > this.buf.length) this.grow(9);
    if (n < 24) {
      this.buf[this.len++] = m | n;
    } else if (n < 0x100) {
      this.buf[this.len++] = m | 24;
      this.buf[this.len++] = n;
    } else if (n < 0x10000) {
      this.buf[this.len++] = m | 25;
      this.view.setUint16(this.len, n);
      this.len += 2;
    } else if (n < 0x100000000) {
      this.buf[this.len++] = m | 26;
      this.view.setUint32(this.len, n);
      this.len += 4;
    } else {
      this.buf[this.len++] = m | 27;
      this.view.setUint32(this.len, Math.floor(n / 0x100000000));
      this.view.setUint32(this.len + 4, n >>> 0);
      this.len += 8;
    }
  }

  private bigHead(major: number, n: bigint): void {
    if (n <= 0xffffffffn) return this.head(major, Number(n));
    this.ensure(9);
    this.buf[this.len++] = (major << 5) | 27;
    this.view.setBigUint64(this.len, n);
    this.len += 8;
  }

  /** An integer: a safe-integer number, or a bigint within CBOR's 64-bit range. */
  int(n: number | bigint): void {
    if (typeof n === 'bigint') {
      if (n >= 0n) this.head(0, n);
      else this.head(1, -1n - n);
    } else if (n >= 0) this.head(0, n);
    else this.head(1, -1 - n);
  }

  bytes(b: Uint8Array): void {
    this.head(2, b.length);
    this.raw(b);
  }

  text(s: string): void {
    const b = new TextEncoder().encode(s);
    this.head(3, b.length);
    this.raw(b);
  }

  array(n: number): void {
    this.head(4, n);
  }

  map(n: number): void {
    this.head(5, n);
  }

  tag(n: number): void {
    this.head(6, n);
  }

  bool(b: boolean): void {
    this.ensure(1);
    this.buf[this.len++] = b ? 0xf5 : 0xf4;
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Strict reader

export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | CborValue[]
  | Map<number | string, CborValue>
  | CborTagged;

export class CborTagged {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

export type CborErrorCode = 'NOT_CBOR' | 'TRUNCATED' | 'TOO_DEEP' | 'TOO_MANY_ITEMS';

export class CborError extends Error {
  constructor(
    readonly code: CborErrorCode,
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
    this.name = 'CborError';
  }
}

export function isCborError(err: unknown): err is CborError {
  return err instanceof CborError;
}

export interface CborReadLimits {
  /** Deepest nesting of arrays, maps and tags (the top-level item is depth 0). */
  maxDepth: number;
  /** Total data items, counting every array element, map key and value. */
  maxItems: number;
  /** Tags that may appear; any other tag is rejected. */
  tags?: readonly number[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes exactly one CBOR item spanning all of `bytes`. Throws `CborError` on anything else. */
export function decodeCbor(bytes: Uint8Array, limits: CborReadLimits): CborValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tags = new Set(limits.tags ?? []);
  let pos = 0;
  let items = 0;

  const need = (n: number, what: string): void => {
    if (n > bytes.length - pos) throw new CborError('TRUNCATED', `${what} runs past the end`, pos);
  };

  // Reads the argument of a head; returns a number when safe, a bigint beyond that.
  const arg = (ai: number, start: number): number | bigint => {
    if (ai < 24) return ai;
    if (ai === 24) {
      need(1, 'head');
      const v = bytes[pos++] as number;
      if (v < 24) throw new CborError('NOT_CBOR', 'non-preferred integer head', start);
      return v;
    }
    if (ai === 25) {
      need(2, 'head');
      const v = view.getUint16(pos);
      pos += 2;
      if (v < 0x100) throw new CborError('NOT_CBOR', 'non-preferred integer head', start);
      return v;
    }
    if (ai === 26) {
      need(4, 'head');
      const v = view.getUint32(pos);
      pos += 4;
      if (v < 0x10000) throw new CborError('NOT_CBOR', 'non-preferred integer head', start);
      return v;
    }
    if (ai === 27) {
      need(8, 'head');
      const v = view.getBigUint64(pos);
      pos += 8;
      if (v < 0x100000000n) throw new CborError('NOT_CBOR', 'non-preferred integer head', start);
      return v <= MAX_SAFE ? Number(v) : v;
    }
    if (ai === 31) throw new CborError('NOT_CBOR', 'indefinite length is not allowed', start);
    throw new CborError('NOT_CBOR', `reserved additional information ${ai}`, start);
  };

  const length = (ai: number, start: number, unit: number, what: string): number => {
    const n = arg(ai, start);
    // A length the remaining bytes cannot hold is truncation; never allocate from it.
    if (typeof n === 'bigint' || n > (bytes.length - pos) / unit)
      throw new CborError('TRUNCATED', `${what} of declared length ${n} runs past the end`, start);
    return n;
  };

  const item = (depth: number): CborValue => {
    if (++items > limits.maxItems)
      throw new CborError('TOO_MANY_ITEMS', `more than ${limits.maxItems} data items`, pos);
    need(1, 'item');
    const start = pos;
    const ib = bytes[pos++] as number;
    const major = ib >> 5;
    const ai = ib & 0x1f;
    switch (major) {
      case 0:
        return arg(ai, start);
      case 1: {
        const n = arg(ai, start);
        if (typeof n === 'bigint') {
          const v = -1n - n;
          return v >= -MAX_SAFE ? Number(v) : v;
        }
        return n === Number.MAX_SAFE_INTEGER ? -1n - BigInt(n) : -1 - n;
      }
      case 2: {
        const n = length(ai, start, 1, 'byte string');
        const b = bytes.subarray(pos, pos + n);
        pos += n;
        return b;
      }
      case 3: {
        const n = length(ai, start, 1, 'text string');
        const b = bytes.subarray(pos, pos + n);
        pos += n;
        try {
          return utf8.decode(b);
        } catch {
          throw new CborError('NOT_CBOR', 'text string is not valid UTF-8', start);
        }
      }
      case 4: {
        const n = length(ai, start, 1, 'array');
        if (depth + 1 > limits.maxDepth)
          throw new CborError('TOO_DEEP', `nesting deeper than ${limits.maxDepth}`, start);
        const out: CborValue[] = new Array<CborValue>(n);
        for (let i = 0; i < n; i++) out[i] = item(depth + 1);
        return out;
      }
      case 5: {
        const n = length(ai, start, 2, 'map');
        if (depth + 1 > limits.maxDepth)
          throw new CborError('TOO_DEEP', `nesting deeper than ${limits.maxDepth}`, start);
        const out = new Map<number | string, CborValue>();
        for (let i = 0; i < n; i++) {
          const keyAt = pos;
          const k = item(depth + 1);
          if (typeof k !== 'number' && typeof k !== 'string')
            throw new CborError('NOT_CBOR', 'map key is not an integer or text', keyAt);
          if (out.has(k)) throw new CborError('NOT_CBOR', `duplicate map key ${String(k)}`, keyAt);
          out.set(k, item(depth + 1));
        }
        return out;
      }
      case 6: {
        const tag = arg(ai, start);
        if (typeof tag === 'bigint' || !tags.has(tag))
          throw new CborError('NOT_CBOR', `tag ${String(tag)} is not allowed here`, start);
        if (depth + 1 > limits.maxDepth)
          throw new CborError('TOO_DEEP', `nesting deeper than ${limits.maxDepth}`, start);
        return new CborTagged(tag, item(depth + 1));
      }
      default: {
        // major 7
        if (ai === 20) return false;
        if (ai === 21) return true;
        if (ai === 22) return null;
        throw new CborError('NOT_CBOR', `simple value or float (0x${ib.toString(16)}) is not allowed`, start);
      }
    }
  };

  const value = item(0);
  if (pos !== bytes.length) throw new CborError('NOT_CBOR', 'trailing bytes after the item', pos);
  return value;
}

/** `a + b` for CBOR integers, exact; returns a number when the result is a safe integer, else a bigint. */
export function addInts(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const s = a + b;
    if (Number.isSafeInteger(s)) return s;
  }
  const s = BigInt(a) + BigInt(b);
  return s >= -MAX_SAFE && s <= MAX_SAFE ? Number(s) : s;
}

/** `a - b` exactly, as a number when safe, else a bigint (always within CBOR's ±2^64 for safe inputs). */
export function subInts(a: number, b: number): number | bigint {
  const d = a - b;
  if (Number.isSafeInteger(d)) return d;
  return BigInt(a) - BigInt(b);
}
