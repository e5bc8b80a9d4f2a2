/**
 * Compact, lossless binary encoding of a stored sample (the seq lives in the key, not here), and the
 * fixed-width big-endian keys that make LevelDB's byte order the sequence order.
 *
 * Value layout (version 1):
 *   u8 version=1 · zigzag-varint ts · varint len + utf8 meter · varint flags · varint nValues ·
 *   nValues × (channel · u8 head · mantissa) · varint nMissing · nMissing × channel ·
 *   [u8 1 · zigzag-varint clock.monoMs · varint len + utf8 clock.boot]   (only on unsynchronised samples)
 * channel: varint (id << 1) for a registry channel, or varint (len << 1 | 1) + utf8 name for any other.
 * head: bits 0-1 type (0 int ≥ 0, 1 f32, 2 f64, 3 int < 0); bits 2-7 zigzag exponent, or 63 then a zigzag-varint exponent.
 * mantissa: int → varint of its magnitude (zigzag would need 54 bits for ±2^53); f32 → 4 bytes BE binary32; f64 → 8 bytes BE binary64. Nothing is rounded.
 */
import type { ValueSink } from '../cloud-contract/batch.js';
import { channelById, channelByName } from '../cloud-contract/channels.js';
import type { Sample, SampleInput, Value } from '../cloud-contract/sample.js';
import { BufferError } from './errors.js';
import type { StoredSample } from './reading-buffer.js';

const VERSION = 1;
const TYPE_CODE = { int: 0, f32: 1, f64: 2 } as const;
/** Type code 3: a negative int (magnitude follows), so the full safe-integer range fits without zigzag. */
const NEG_INT = 3;
const EXP_ESCAPE = 63;
const CLOCK_TRAILER = 1;

/** Sample keys: 0x73 ('s') + seq as 8 bytes big-endian. */
export const SAMPLE_PREFIX = 0x73;
export const KEY_LENGTH = 9;

export function sampleKey(seq: number): Buffer {
  const k = Buffer.allocUnsafe(KEY_LENGTH);
  k[0] = SAMPLE_PREFIX;
  k.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 1);
  k.writeUInt32BE(seq >>> 0, 5);
  return k;
}

export function seqOfKey(key: Uint8Array): number {
  if (key.length !== KEY_LENGTH || key[0] !== SAMPLE_PREFIX) return -1;
  // Read byte by byte, not through a Buffer view: the open's scan reads every key of the backlog, and a view
  // is an object per key (without TurboFan to remove it).
  const hi = key[1]! * 0x100_0000 + key[2]! * 0x1_0000 + key[3]! * 0x100 + key[4]!;
  const lo = key[5]! * 0x100_0000 + key[6]! * 0x1_0000 + key[7]! * 0x100 + key[8]!;
  return hi * 0x1_0000_0000 + lo;
}

class Writer {
  buf = Buffer.allocUnsafe(256);
  pos = 0;
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  /** Unsigned varint for 0 ≤ v ≤ 2^53 (arithmetic, not bit ops: those are 32-bit in JS). */
  varint(v: number): void {
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  zigzag(v: number): void {
    this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  bytes(b: Buffer): void {
    this.room(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
  str(s: string, tagged: boolean): void {
    const b = Buffer.from(s, 'utf8');
    this.varint(tagged ? b.length * 2 + 1 : b.length);
    this.bytes(b);
  }
  f32(v: number): void {
    this.room(4);
    this.buf.writeFloatBE(v, this.pos);
    this.pos += 4;
  }
  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

const F32 = new Float32Array(1);
const F32_BYTES = new Uint8Array(F32.buffer);
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError('truncated value');
  }
  u8(): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw new RangeError('truncated value');
    this.pos++;
    return b;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    const buf = this.buf;
    for (let i = 0; i < 8; i++) {
      // u8() inline: several per value, for every stored sample a drain reads.
      const b = buf[this.pos];
      if (b === undefined) throw new RangeError('truncated value');
      this.pos++;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
    throw new RangeError('varint too long');
  }
  zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }
  str(len: number): string {
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  /** Steps over `len` bytes (a string the caller does not need). */
  skip(len: number): undefined {
    this.need(len);
    this.pos += len;
    return undefined;
  }
  f32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    // Little-endian hosts (x64, arm64): Buffer.readFloatBE's own method (a float32 scratch filled byte by
    // byte), without its call chain. Anywhere else, readFloatBE itself.
    if (!HOST_LE) return b.readFloatBE(p);
    F32_BYTES[0] = b[p + 3]!;
    F32_BYTES[1] = b[p + 2]!;
    F32_BYTES[2] = b[p + 1]!;
    F32_BYTES[3] = b[p]!;
    return F32[0]!;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
}

function invalid(msg: string, sample: SampleInput, field: string): BufferError {
  return new BufferError('BUFFER_INVALID_SAMPLE', `sample of meter "${sample.meter}": ${msg}`, {
    meter: sample.meter,
    ts: sample.ts,
    field,
  });
}

function writeChannel(w: Writer, name: string): void {
  const def = channelByName(name);
  if (def) w.varint(def.id * 2);
  else w.str(name, true);
}

function readChannel(r: Reader): string {
  const tag = r.varint();
  if (tag % 2 === 1) return r.str((tag - 1) / 2);
  const def = channelById(tag / 2);
  if (!def) throw new RangeError(`unknown channel id ${tag / 2}`);
  return def.name;
}

/** Encodes a sample (without seq). Throws `BUFFER_INVALID_SAMPLE` for anything not storable losslessly. */
export function encodeSample(s: SampleInput): Buffer {
  if (typeof s.meter !== 'string') throw invalid('meter must be a string', s, 'meter');
  if (!Number.isSafeInteger(s.ts)) throw invalid(`ts ${String(s.ts)} is not an integer ms time`, s, 'ts');
  if (!Number.isSafeInteger(s.flags) || s.flags < 0)
    throw invalid(`flags ${String(s.flags)} is not a bit set`, s, 'flags');
  const w = new Writer();
  w.u8(VERSION);
  w.zigzag(s.ts);
  w.str(s.meter, false);
  w.varint(s.flags);
  // Keys, not entries: every poll of every meter passes here, and entries cost an array per value.
  const names = Object.keys(s.values);
  w.varint(names.length);
  for (const name of names) {
    writeChannel(w, name);
    writeValue(w, s.values[name]!, s, name);
  }
  const missing = s.missing ?? [];
  w.varint(missing.length);
  for (const name of missing) writeChannel(w, name);
  if (s.clock) {
    // Device-local clock info of an unsynchronised sample, so the agent can correct its ts later.
    if (!Number.isFinite(s.clock.monoMs)) throw invalid('clock.monoMs must be a number', s, 'clock');
    w.u8(CLOCK_TRAILER);
    w.zigzag(Math.round(s.clock.monoMs));
    w.str(String(s.clock.boot), false);
  }
  return w.done();
}

/** The field name is built only for an error: a valid value (every value of every poll) allocates nothing here. */
function badValue(s: SampleInput, name: string, what: string): BufferError {
  return invalid(`values.${name}: ${what}`, s, `values.${name}`);
}

function writeValue(w: Writer, v: Value, s: SampleInput, name: string): void {
  let code: number | undefined = TYPE_CODE[v?.type];
  if (code === undefined) throw badValue(s, name, 'type must be int, f32 or f64');
  if (!Number.isInteger(v.exponent) || Math.abs(v.exponent) > 2 ** 31)
    throw badValue(s, name, `exponent ${String(v.exponent)} is not an integer`);
  if (typeof v.mantissa !== 'number') throw badValue(s, name, 'mantissa must be a number');
  if (v.type === 'int' && v.mantissa < 0) code = NEG_INT;
  const zz = v.exponent >= 0 ? v.exponent * 2 : -v.exponent * 2 - 1;
  if (zz < EXP_ESCAPE) w.u8(code | (zz << 2));
  else {
    w.u8(code | (EXP_ESCAPE << 2));
    w.zigzag(v.exponent);
  }
  if (v.type === 'int') {
    if (!Number.isSafeInteger(v.mantissa))
      throw badValue(s, name, `int mantissa ${v.mantissa} is not a safe integer`);
    w.varint(Math.abs(v.mantissa));
  } else if (v.type === 'f32') {
    // Storing a value that is not exactly a binary32 as f32 would silently round it.
    if (!Object.is(Math.fround(v.mantissa), v.mantissa) && !Number.isNaN(v.mantissa))
      throw badValue(s, name, `f32 mantissa ${v.mantissa} is not exactly representable in float32`);
    w.f32(v.mantissa);
  } else {
    w.f64(v.mantissa);
  }
}

/** Just the `ts` of a stored value (for age retention and stats), without decoding the rest. */
export function peekTs(bytes: Uint8Array): number {
  const r = new Reader(
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  );
  if (r.u8() !== VERSION) throw new RangeError('unknown value version');
  return r.zigzag();
}

/** Decodes a stored value. Throws `BUFFER_DECODE` (with the seq) for bytes that are not a valid sample. */
export function decodeSample(seq: number, bytes: Uint8Array): Sample {
  return parse(seq, bytes, BUILD) as Sample;
}

/**
 * Checks that a stored value decodes exactly as `decodeSample` would (same rules, same `BUFFER_DECODE`) and
 * returns its `ts`, without building the sample: no strings, objects or values are allocated, so the buffer's
 * verifying scan on open walks millions of samples without garbage.
 */
export function checkSample(seq: number, bytes: Uint8Array): number {
  return quickCheck(bytes) ? quick.ts : (parse(seq, bytes, CHECK) as number);
}

/**
 * A stored value's head (meter, ts, flags, clock) with its bytes, after checking that it all decodes as
 * `decodeSample` would; the values stay bytes until `decodeStoredValues`. The publisher holds thousands of
 * these at a time: ~1 object each instead of one per value.
 */
export function decodeHead(seq: number, bytes: Buffer): StoredSample {
  if (!quickCheck(bytes)) return parse(seq, bytes, HEAD) as StoredSample;
  // Checked: only the head's own fields are read again.
  const r = new Reader(bytes);
  r.pos = quick.meterAt;
  const head: { -readonly [K in keyof StoredSample]: StoredSample[K] } = {
    seq,
    meter: r.str(r.varint()),
    ts: quick.ts,
    flags: r.varint(),
    bytes,
  };
  if (quick.clockAt > 0) {
    r.pos = quick.clockAt + 1;
    const monoMs = r.zigzag();
    head.clock = { monoMs, boot: r.str(r.varint()) };
  }
  return head;
}

/**
 * Gives a stored sample's values and then its missing channels to `sink`, in stored order (the order of
 * `decodeSample`'s `values` and `missing`), without making an object per value: a registry channel goes as its
 * id, any other as its name. Errors the sink throws pass through unchanged; bytes that do not decode throw
 * `BUFFER_DECODE`.
 */
export function decodeStoredValues(s: Pick<StoredSample, 'seq' | 'bytes'>, sink: ValueSink): void {
  parse(s.seq, s.bytes, VALUES, sink);
}

/** Registry channel ids, as a table the quick check reads without a call (ids are small numbers). */
const REGISTRY_IDS = (() => {
  const ids = new Uint8Array(1024);
  for (let id = 0; id < ids.length; id++) if (channelById(id) !== undefined) ids[id] = 1;
  return ids;
})();

/** What the last successful `quickCheck` found: the ts, where the meter's length is, the clock trailer (or 0). */
const quick = { ts: 0, meterAt: 0, clockAt: 0, pos: 0 };

/** A varint at `quick.pos` (advancing it), as `Reader.varint` reads it; -1 where that would throw. */
function quickVarint(b: Uint8Array): number {
  let v = 0;
  let mul = 1;
  let p = quick.pos;
  for (let i = 0; i < 8; i++) {
    const x = b[p++];
    if (x === undefined) return -1;
    v += (x & 0x7f) * mul;
    if (x < 0x80) {
      quick.pos = p;
      return v;
    }
    mul *= 0x80;
  }
  return -1;
}

/**
 * `parse` in CHECK mode for bytes that decode, flattened: the position in a local, one-byte channel tags
 * read inline, no call per float. Under the daemon's `--max-opt=1` (no TurboFan to inline Reader's methods)
 * the open's scan of a week's backlog took 9.3-10.3 s of CPU through `parse`, 5.1-5.4 s through this (README
 * "Figures"); `decodeHead` walks each sample the drain reads the same way. `false` wherever `parse` might throw, or
 * for what this does not read itself (a channel outside the registry, id ≥ 1024): the caller then asks `parse`,
 * so the rules, results and errors stay `parse`'s alone (test/buffer/codec-check.test.ts compares the two).
 * A position past the end fails the next read (undefined) or the last check.
 */
function quickCheck(b: Uint8Array): boolean {
  const end = b.length;
  if (end === 0 || b[0] !== VERSION) return false;
  quick.pos = 1;
  const z = quickVarint(b);
  if (z < 0) return false;
  quick.ts = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  quick.meterAt = quick.pos;
  const meterLen = quickVarint(b);
  if (meterLen < 0) return false;
  quick.pos += meterLen;
  if (quickVarint(b) < 0) return false; // flags
  const n = quickVarint(b);
  if (n < 0) return false;
  let p = quick.pos;
  for (let i = 0; i < n; i++) {
    let tag = b[p];
    if (tag === undefined) return false;
    if (tag < 0x80) p++;
    else {
      quick.pos = p;
      tag = quickVarint(b);
      if (tag < 0) return false;
      p = quick.pos;
    }
    if (tag % 2 === 1) p += (tag - 1) / 2;
    else if (tag / 2 >= REGISTRY_IDS.length || REGISTRY_IDS[tag / 2] !== 1) return false;
    const head = b[p++];
    if (head === undefined) return false;
    if (head >> 2 === EXP_ESCAPE) {
      quick.pos = p;
      if (quickVarint(b) < 0) return false;
      p = quick.pos;
    }
    const code = head & 3;
    if (code === TYPE_CODE.f32) p += 4;
    else if (code === TYPE_CODE.f64) p += 8;
    else {
      quick.pos = p;
      const m = quickVarint(b);
      if (m < 0 || m > Number.MAX_SAFE_INTEGER) return false;
      p = quick.pos;
    }
  }
  quick.pos = p;
  const nMissing = quickVarint(b);
  if (nMissing < 0) return false;
  for (let i = 0; i < nMissing; i++) {
    const tag = quickVarint(b);
    if (tag < 0) return false;
    if (tag % 2 === 1) quick.pos += (tag - 1) / 2;
    else if (tag / 2 >= REGISTRY_IDS.length || REGISTRY_IDS[tag / 2] !== 1) return false;
  }
  quick.clockAt = 0;
  if (quick.pos < end) {
    if (b[quick.pos] !== CLOCK_TRAILER) return false;
    quick.clockAt = quick.pos++;
    if (quickVarint(b) < 0) return false; // monoMs
    const bootLen = quickVarint(b);
    if (bootLen < 0) return false;
    quick.pos += bootLen;
  }
  return quick.pos === end;
}

function skipChannel(r: Reader): void {
  const tag = r.varint();
  if (tag % 2 === 1) r.skip((tag - 1) / 2);
  else if (!channelById(tag / 2)) throw new RangeError(`unknown channel id ${tag / 2}`);
}

/** A registry channel's id, or another channel's name. */
function readChannelRef(r: Reader): number | string {
  const tag = r.varint();
  if (tag % 2 === 1) return r.str((tag - 1) / 2);
  if (!channelById(tag / 2)) throw new RangeError(`unknown channel id ${tag / 2}`);
  return tag / 2;
}

/** What `parse` makes: the ts only (CHECK), a Sample (BUILD), a StoredSample (HEAD), values to a sink (VALUES). */
const CHECK = 0;
const BUILD = 1;
const HEAD = 2;
const VALUES = 3;
type Mode = typeof CHECK | typeof BUILD | typeof HEAD | typeof VALUES;

/** The one decoder: every mode walks and validates the same bytes by the same rules. */
function parse(
  seq: number,
  bytes: Uint8Array,
  mode: Mode,
  sink?: ValueSink,
): Sample | StoredSample | number | undefined {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const build = mode === BUILD;
  const named = build || mode === HEAD;
  let sinkThrew = false;
  try {
    const r = new Reader(buf);
    const version = r.u8();
    if (version !== VERSION) throw new RangeError(`unknown value version ${version}`);
    const ts = r.zigzag();
    const meterLen = r.varint();
    const meter = named ? r.str(meterLen) : r.skip(meterLen);
    const flags = r.varint();
    const n = r.varint();
    const values: Record<string, Value> | undefined = build ? {} : undefined;
    for (let i = 0; i < n; i++) {
      let name: string | undefined;
      let ref: number | string | undefined;
      if (build) name = readChannel(r);
      else if (sink !== undefined) ref = readChannelRef(r);
      else skipChannel(r);
      const head = r.u8();
      const code = head & 3;
      const ez = head >> 2;
      const exponent = ez === EXP_ESCAPE ? r.zigzag() : ez % 2 === 0 ? ez / 2 : -(ez + 1) / 2;
      let type: Value['type'];
      let mantissa: number;
      // A float's bytes are always a float: the modes that give no values (the open's check, heads) only step
      // over them (reading them was ~10 % of a week's drain under `--max-opt=1`).
      const wanted = values !== undefined || sink !== undefined;
      if (code === TYPE_CODE.f32) {
        type = 'f32';
        if (wanted) mantissa = r.f32();
        else {
          r.skip(4);
          mantissa = 0;
        }
      } else if (code === TYPE_CODE.f64) {
        type = 'f64';
        if (wanted) mantissa = r.f64();
        else {
          r.skip(8);
          mantissa = 0;
        }
      } else {
        const m = r.varint();
        if (m > Number.MAX_SAFE_INTEGER) throw new RangeError('int mantissa out of range');
        type = 'int';
        mantissa = code === NEG_INT ? -m : m;
      }
      if (values !== undefined) values[name as string] = { type, mantissa, exponent };
      else if (sink !== undefined) {
        sinkThrew = true;
        sink.value(ref as number | string, type, mantissa, exponent);
        sinkThrew = false;
      }
    }
    const nMissing = r.varint();
    const missing: string[] | undefined = build && nMissing > 0 ? [] : undefined;
    for (let i = 0; i < nMissing; i++) {
      if (missing !== undefined) missing.push(readChannel(r));
      else if (sink !== undefined) {
        const ref = readChannelRef(r);
        sinkThrew = true;
        sink.missing(ref);
        sinkThrew = false;
      } else skipChannel(r);
    }
    let clock: { monoMs: number; boot: string } | undefined;
    if (r.pos < buf.length) {
      if (r.u8() !== CLOCK_TRAILER) throw new RangeError('unknown trailer');
      const monoMs = r.zigzag();
      const bootLen = r.varint();
      const boot = named ? r.str(bootLen) : r.skip(bootLen);
      if (boot !== undefined) clock = { monoMs, boot };
    }
    if (r.pos !== buf.length) throw new RangeError('trailing bytes');
    if (mode === CHECK) return ts;
    if (mode === VALUES) return undefined;
    if (mode === HEAD) {
      const head: { -readonly [K in keyof StoredSample]: StoredSample[K] } = {
        seq,
        meter: meter as string,
        ts,
        flags,
        bytes: buf,
      };
      if (clock !== undefined) head.clock = clock;
      return head;
    }
    const sample: { -readonly [K in keyof Sample]: Sample[K] } = {
      seq,
      meter: meter ?? '',
      ts,
      values: values as Record<string, Value>,
      flags,
    };
    if (missing !== undefined) sample.missing = missing;
    if (clock !== undefined) sample.clock = clock;
    return sample;
  } catch (err) {
    if (sinkThrew) throw err;
    throw new BufferError(
      'BUFFER_DECODE',
      `stored sample seq ${seq} does not decode: ${(err as Error).message}`,
      {
        fromSeq: seq,
        toSeq: seq,
      },
      { cause: err },
    );
  }
}
