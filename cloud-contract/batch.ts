/**
 * The batch document (contract v1): CBOR, schema in batch.cddl. Lossless and compact:
 * - samples grouped per meter; per meter, sequence numbers delta-encoded and timestamps delta-of-delta
 *   encoded (a 1 Hz poll gives runs of 0);
 * - values columnar per (channel, type, exponent), integer mantissas delta-encoded;
 * - a float32 that is the float32 nearest to a short decimal (what meters mostly report: 230.1 V) is carried
 *   as that decimal's integer digits (delta-encoded) plus a scale, chosen only when the decoder's exact
 *   computation `fround(m / 10^scale)` gives back the very same bits; otherwise the raw bits are carried.
 *   float64 likewise. So the cloud gets bit for bit what the meter reported, at a fraction of the size.
 */
import { CborWriter, addInts, subInts, type CborValue } from './cbor.js';
import { channelById, channelByName } from './channels.js';
import { ContractError } from './errors.js';
import { reject } from './reject.js';
import type { Sample, Value } from './sample.js';
import { isValidThingName } from './topics.js';

export const BATCH_VERSION = 1;

export interface BatchInput {
  /** Thing name of the device that took the samples. */
  readonly device: string;
  /** Samples in strictly increasing `seq` order (a buffer range); may mix meters. */
  readonly samples: readonly Sample[];
}

/** A decoded batch document. */
export interface BatchV1 {
  readonly v: 1;
  readonly device: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Meter ids in the order of their first sample. */
  readonly meters: readonly string[];
  /** In `seq` order. */
  readonly samples: readonly Sample[];
}

const TYPE_CODE = { int: 0, f32: 1, f64: 2 } as const;
const TYPES = ['int', 'f32', 'f64'] as const;
/** Column codecs: 0 delta-coded integers, 1 delta-coded decimal digits + scale, 2 raw IEEE bits. */
const CODEC_DELTA = 0;
const CODEC_DECIMAL = 1;
const CODEC_RAW = 2;
const MAX_SCALE = { int: 0, f32: 9, f64: 15 } as const;
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);

export const LIMITS = {
  /** Meter ids and custom channel names: short identifiers. */
  nameLength: 64,
  /** Value exponents (decimal scaling and unit prefixes). */
  exponent: 64,
  /** Timestamps: ms since the epoch, up to 2^47 (year 6429), which keeps every delta a safe integer. */
  maxTs: 2 ** 47,
  maxFlags: 0xffff,
} as const;

const NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const CHANNEL_RE = /^[a-z][a-z0-9_]{0,63}$/;

function bad(message: string, context: Record<string, unknown>): never {
  throw new ContractError('BAD_SAMPLE', message, context);
}

/** Checks that a sample can be carried losslessly; throws `ContractError('BAD_SAMPLE')` saying why. */
export function validateSample(s: Sample): void {
  const ctx = { seq: s?.seq, meter: s?.meter };
  if (typeof s !== 'object' || s === null) bad('sample is not an object', ctx);
  if (typeof s.meter !== 'string' || !NAME_RE.test(s.meter))
    bad(`sample ${s.seq}: meter id must be 1–64 of [A-Za-z0-9_.:-]`, ctx);
  if (!Number.isSafeInteger(s.seq) || s.seq < 0)
    bad(`sample seq ${s.seq} is not a non-negative integer`, ctx);
  if (!Number.isSafeInteger(s.ts) || s.ts < 0 || s.ts > LIMITS.maxTs)
    bad(`sample ${s.seq}: ts ${s.ts} is not a ms timestamp in [0, 2^47]`, ctx);
  if (!Number.isInteger(s.flags) || s.flags < 0 || s.flags > LIMITS.maxFlags)
    bad(`sample ${s.seq}: flags ${s.flags} is not a 16-bit flag set`, ctx);
  if (typeof s.values !== 'object' || s.values === null) bad(`sample ${s.seq}: values is not an object`, ctx);
  for (const [name, v] of Object.entries(s.values)) {
    if (!CHANNEL_RE.test(name)) bad(`sample ${s.seq}: channel name ${JSON.stringify(name)} is invalid`, ctx);
    validateValue(v, name, s.seq);
  }
  if (s.missing !== undefined) {
    if (!Array.isArray(s.missing)) bad(`sample ${s.seq}: missing is not an array`, ctx);
    const seen = new Set<string>();
    for (const name of s.missing) {
      if (typeof name !== 'string' || !CHANNEL_RE.test(name))
        bad(`sample ${s.seq}: missing channel ${JSON.stringify(name)} is invalid`, ctx);
      if (seen.has(name)) bad(`sample ${s.seq}: missing channel ${name} listed twice`, ctx);
      seen.add(name);
    }
  }
}

function validateValue(v: Value, name: string, seq: number): void {
  const ctx = { seq, channel: name, value: v };
  if (typeof v !== 'object' || v === null) bad(`sample ${seq}: ${name} is not a Value`, ctx);
  if (!Number.isInteger(v.exponent) || Math.abs(v.exponent) > LIMITS.exponent)
    bad(`sample ${seq}: ${name} exponent ${v.exponent} is not an integer in ±${LIMITS.exponent}`, ctx);
  if (typeof v.mantissa !== 'number') bad(`sample ${seq}: ${name} mantissa is not a number`, ctx);
  switch (v.type) {
    case 'int':
      if (!Number.isSafeInteger(v.mantissa))
        bad(`sample ${seq}: ${name} int mantissa is not a safe integer`, ctx);
      return;
    case 'f32':
      if (!Object.is(Math.fround(v.mantissa), v.mantissa))
        bad(`sample ${seq}: ${name} f32 mantissa ${v.mantissa} is not representable as float32`, ctx);
      return;
    case 'f64':
      return;
    default:
      bad(`sample ${seq}: ${name} has unknown value type ${String((v as Value).type)}`, ctx);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

type ChannelRef = number | string;

function channelRef(name: string): ChannelRef {
  return channelByName(name)?.id ?? name;
}

interface Column {
  ch: ChannelRef;
  type: Value['type'];
  exponent: number;
  rows: number[];
  mantissas: number[];
}

interface Block {
  meter: string;
  samples: Sample[];
}

const f32View = new DataView(new ArrayBuffer(8));

function f32Bits(x: number): number {
  f32View.setFloat32(0, x);
  return f32View.getInt32(0);
}

function bitsF32(b: number): number {
  f32View.setInt32(0, b);
  return f32View.getFloat32(0);
}

function decimalDigits(v: number, type: 'f32' | 'f64', k: number): number | undefined {
  const m0 = Math.round(v * (POW10[k] as number));
  if (!Number.isSafeInteger(m0)) return undefined;
  const m = m0 === 0 ? 0 : m0; // -0 would not survive as a CBOR integer
  return Object.is(fromDecimal(m, type, k), v) ? m : undefined;
}

function fromDecimal(m: number, type: 'f32' | 'f64', k: number): number {
  const x = k === 0 ? m : m / (POW10[k] as number);
  return type === 'f32' ? Math.fround(x) : x;
}

/** The smallest scale at which every value of the column is carried exactly as decimal digits, if any. */
function columnScale(values: readonly number[], type: 'f32' | 'f64'): number | undefined {
  let k = 0;
  const max = MAX_SCALE[type];
  for (const v of values) {
    while (decimalDigits(v, type, k) === undefined) if (++k > max) return undefined;
  }
  // Raising k for a later value can break an earlier one (digits beyond the float's precision): recheck.
  for (const v of values) if (decimalDigits(v, type, k) === undefined) return undefined;
  return k;
}

function writeDeltas(w: CborWriter, xs: readonly number[]): void {
  w.array(xs.length);
  let prev = 0;
  for (const x of xs) {
    w.int(subInts(x, prev));
    prev = x;
  }
}

function writePresence(w: CborWriter, rows: readonly number[], n: number): void {
  if (rows.length === n) {
    w.bool(true);
    return;
  }
  const runs: number[] = [];
  let expect = 0; // next row index not yet accounted for
  let i = 0;
  while (i < rows.length) {
    const start = rows[i] as number;
    if (runs.length === 0) {
      if (start > 0) runs.push(0, start);
    } else runs.push(start - expect);
    let j = i;
    while (j + 1 < rows.length && rows[j + 1] === (rows[j] as number) + 1) j++;
    runs.push(j - i + 1);
    expect = (rows[j] as number) + 1;
    i = j + 1;
  }
  if (expect < n) runs.push(n - expect);
  w.array(runs.length);
  for (const r of runs) w.int(r);
}

function writeColumn(w: CborWriter, c: Column, n: number): void {
  w.array(7);
  if (typeof c.ch === 'number') w.int(c.ch);
  else w.text(c.ch);
  w.int(TYPE_CODE[c.type]);
  w.int(c.exponent);
  if (c.type === 'int') {
    w.int(CODEC_DELTA);
    w.int(0);
    writePresence(w, c.rows, n);
    writeDeltas(w, c.mantissas);
    return;
  }
  const type = c.type;
  const k = columnScale(c.mantissas, type);
  if (k !== undefined) {
    w.int(CODEC_DECIMAL);
    w.int(k);
    writePresence(w, c.rows, n);
    writeDeltas(
      w,
      c.mantissas.map((v) => decimalDigits(v, type, k) as number),
    );
    return;
  }
  w.int(CODEC_RAW);
  w.int(0);
  writePresence(w, c.rows, n);
  if (type === 'f32') {
    writeDeltas(w, c.mantissas.map(f32Bits));
  } else {
    const b = new Uint8Array(8 * c.mantissas.length);
    const dv = new DataView(b.buffer);
    c.mantissas.forEach((v, i) => dv.setFloat64(8 * i, v));
    w.bytes(b);
  }
}

function writeBlock(w: CborWriter, b: Block): void {
  const n = b.samples.length;
  const missing: number[] = [];
  for (let i = 0; i < n; i++) if (((b.samples[i] as Sample).missing?.length ?? 0) > 0) missing.push(i);
  w.map(missing.length > 0 ? 7 : 6);
  w.int(0);
  w.text(b.meter);
  w.int(1);
  w.int(n);
  // seq: first absolute, then deltas (≥ 1).
  w.int(2);
  writeDeltas(
    w,
    b.samples.map((s) => s.seq),
  );
  // ts: first absolute, first delta, then delta of delta.
  w.int(3);
  w.array(n);
  let prevTs = 0;
  let prevD = 0;
  b.samples.forEach((s, i) => {
    const d = s.ts - prevTs;
    w.int(i < 2 ? d : d - prevD);
    prevD = i === 0 ? 0 : d;
    prevTs = s.ts;
  });
  // flags: run-length pairs.
  w.int(4);
  const runs: number[] = [];
  for (const s of b.samples) {
    if (runs.length > 0 && runs[runs.length - 2] === s.flags) runs[runs.length - 1]! += 1;
    else runs.push(s.flags, 1);
  }
  w.array(runs.length);
  for (const r of runs) w.int(r);
  if (missing.length > 0) {
    w.int(5);
    w.array(missing.length * 2);
    for (const i of missing) {
      const names = b.samples[i]?.missing ?? [];
      w.int(i);
      w.array(names.length);
      for (const name of names) {
        const ref = channelRef(name);
        if (typeof ref === 'number') w.int(ref);
        else w.text(ref);
      }
    }
  }
  // columns, in order of first appearance; a channel whose type or exponent changes gets one more column.
  const columns: Column[] = [];
  const byName = new Map<string, Column[]>();
  for (let row = 0; row < n; row++) {
    const values = (b.samples[row] as Sample).values;
    for (const name in values) {
      const v = values[name] as Value;
      let list = byName.get(name);
      if (list === undefined) byName.set(name, (list = []));
      let c: Column | undefined;
      for (const x of list)
        if (x.type === v.type && x.exponent === v.exponent) {
          c = x;
          break;
        }
      if (c === undefined) {
        c = { ch: channelRef(name), type: v.type, exponent: v.exponent, rows: [], mantissas: [] };
        list.push(c);
        columns.push(c);
      }
      c.rows.push(row);
      c.mantissas.push(v.type === 'int' && v.mantissa === 0 ? 0 : v.mantissa);
    }
  }
  w.int(6);
  w.array(columns.length);
  for (const c of columns) writeColumn(w, c, n);
}

/**
 * Encodes a batch document (uncompressed CBOR). Throws `ContractError` (`BAD_THING_NAME`, `BAD_SAMPLE`) for
 * input it cannot carry losslessly: an invalid device, an invalid sample, or seq not strictly increasing.
 */
export function encodeBatch(input: BatchInput): Uint8Array {
  assertDevice(input.device);
  const { samples } = input;
  if (samples.length === 0) throw new ContractError('BAD_SAMPLE', 'a batch needs at least one sample', {});
  let prevSeq = -1;
  for (const s of samples) {
    validateSample(s);
    assertFollows(s, prevSeq);
    prevSeq = s.seq;
  }
  return encodeValidated(input.device, samples);
}

export function assertDevice(device: string): void {
  if (!isValidThingName(device))
    throw new ContractError('BAD_THING_NAME', `invalid device (thing name) ${JSON.stringify(device)}`, {
      device,
    });
}

export function assertFollows(s: Sample, prevSeq: number): void {
  if (s.seq <= prevSeq)
    throw new ContractError(
      'BAD_SAMPLE',
      `seq ${s.seq} follows ${prevSeq}: a batch is a strictly increasing range`,
      {
        seq: s.seq,
      },
    );
}

/** Encodes samples already checked by `validateSample`/`assertFollows` (the builder validates once per add). */
export function encodeValidated(device: string, samples: readonly Sample[]): Uint8Array {
  const blocks = new Map<string, Block>();
  for (const s of samples) {
    let b = blocks.get(s.meter);
    if (b === undefined) blocks.set(s.meter, (b = { meter: s.meter, samples: [] }));
    b.samples.push(s);
  }
  const w = new CborWriter(64 * 1024);
  w.map(4);
  w.int(0);
  w.int(BATCH_VERSION);
  w.int(1);
  w.text(device);
  w.int(2);
  w.array(2);
  w.int((samples[0] as Sample).seq);
  w.int((samples[samples.length - 1] as Sample).seq);
  w.int(3);
  w.array(blocks.size);
  for (const b of blocks.values()) writeBlock(w, b);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------------------
// Decoding (of an already parsed, strictly read CBOR value; see decode.ts for the hostile-input entry)

export interface DocumentLimits {
  /** Most samples in one batch. */
  readonly maxSamples: number;
}

type CMap = Map<number | string, CborValue>;

function asMap(
  x: CborValue | undefined,
  what: string,
  keys: readonly number[],
  optional: readonly number[] = [],
): CMap {
  if (!(x instanceof Map)) return reject('BAD_DOCUMENT', `${what} is not a map`);
  for (const k of x.keys())
    if (typeof k !== 'number' || (!keys.includes(k) && !optional.includes(k)))
      reject('BAD_DOCUMENT', `${what} has unknown key ${JSON.stringify(k)}`);
  for (const k of keys) if (!x.has(k)) reject('BAD_DOCUMENT', `${what} lacks key ${k}`);
  return x;
}

function asArray(x: CborValue | undefined, what: string, len?: number): CborValue[] {
  if (!Array.isArray(x)) return reject('BAD_DOCUMENT', `${what} is not an array`);
  if (len !== undefined && x.length !== len)
    reject('BAD_DOCUMENT', `${what} has ${x.length} items, not ${len}`);
  return x;
}

function asUint(x: CborValue | undefined, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof x !== 'number' || x < 0 || x > max)
    return reject('BAD_DOCUMENT', `${what} is not an integer in [0, ${max}]`);
  return x;
}

function asInt(x: CborValue | undefined, what: string): number | bigint {
  if (typeof x !== 'number' && typeof x !== 'bigint')
    return reject('BAD_DOCUMENT', `${what} is not an integer`);
  return x;
}

function asText(x: CborValue | undefined, what: string, re: RegExp): string {
  if (typeof x !== 'string' || !re.test(x)) return reject('BAD_DOCUMENT', `${what} is not a valid name`);
  return x;
}

function channelName(x: CborValue | undefined, what: string): string {
  if (typeof x === 'number') {
    const def = channelById(x);
    if (def === undefined) return reject('BAD_DOCUMENT', `${what}: unknown channel id ${x}`);
    return def.name;
  }
  if (typeof x === 'string') {
    // A name outside the registry travels as text; a registry name must travel as its id (one spelling only).
    if (!CHANNEL_RE.test(x) || channelByName(x) !== undefined)
      return reject('BAD_DOCUMENT', `${what}: invalid channel name`);
    return x;
  }
  return reject('BAD_DOCUMENT', `${what}: channel is neither an id nor a name`);
}

/** Undoes `writeDeltas`; every running value must stay a safe integer within [min, max]. */
function undelta(xs: CborValue[], what: string, min: number, max: number): number[] {
  const out = new Array<number>(xs.length);
  let acc: number | bigint = 0;
  for (let i = 0; i < xs.length; i++) {
    acc = addInts(acc, asInt(xs[i], what));
    if (typeof acc !== 'number' || acc < min || acc > max) reject('BAD_DOCUMENT', `${what} leaves its range`);
    out[i] = acc;
  }
  return out;
}

function presenceRows(x: CborValue | undefined, n: number, what: string): number[] {
  if (x === true) return Array.from({ length: n }, (_, i) => i);
  const runs = asArray(x, what);
  const rows: number[] = [];
  let at = 0;
  runs.forEach((r, i) => {
    const len = asUint(r, what, n);
    if (len === 0 && i > 0) reject('BAD_DOCUMENT', `${what}: empty run`);
    if (at + len > n) reject('BAD_DOCUMENT', `${what}: runs exceed the sample count`);
    if (i % 2 === 0) for (let j = 0; j < len; j++) rows.push(at + j);
    at += len;
  });
  if (at !== n) reject('BAD_DOCUMENT', `${what}: runs do not cover the samples`);
  if (rows.length === n) reject('BAD_DOCUMENT', `${what}: full presence must be written as true`);
  return rows;
}

function decodeColumn(
  x: CborValue,
  n: number,
  what: string,
): { name: string; rows: number[]; values: Value[] } {
  const c = asArray(x, what, 7);
  const name = channelName(c[0], what);
  const type = TYPES[asUint(c[1], `${what} type`, 2)] as Value['type'];
  const exponent = asInt(c[2], `${what} exponent`);
  if (typeof exponent !== 'number' || Math.abs(exponent) > LIMITS.exponent)
    reject('BAD_DOCUMENT', `${what}: exponent out of range`);
  const codec = asUint(c[3], `${what} codec`, 2);
  const scale = asUint(c[4], `${what} scale`, MAX_SCALE[type]);
  const rows = presenceRows(c[5], n, `${what} presence`);
  let mantissas: number[];
  if (type === 'int') {
    if (codec !== CODEC_DELTA || scale !== 0)
      reject('BAD_DOCUMENT', `${what}: int column must use delta coding`);
    mantissas = undelta(asArray(c[6], what), what, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  } else if (codec === CODEC_DECIMAL) {
    const digits = undelta(asArray(c[6], what), what, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    mantissas = digits.map((m) => fromDecimal(m, type, scale));
  } else if (codec === CODEC_RAW && scale === 0) {
    if (type === 'f32') {
      mantissas = undelta(asArray(c[6], what), what, -0x80000000, 0x7fffffff).map(bitsF32);
    } else {
      const b = c[6];
      if (!(b instanceof Uint8Array) || b.length !== 8 * rows.length)
        reject('BAD_DOCUMENT', `${what}: raw f64 data must be 8 bytes per value`);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      mantissas = rows.map((_, i) => dv.getFloat64(8 * i));
    }
  } else {
    return reject('BAD_DOCUMENT', `${what}: codec ${codec} does not fit type ${type}`);
  }
  if (mantissas.length !== rows.length) reject('BAD_DOCUMENT', `${what}: value count differs from presence`);
  return { name, rows, values: mantissas.map((mantissa) => ({ type, mantissa, exponent })) };
}

interface MutableSample {
  meter: string;
  ts: number;
  seq: number;
  values: Record<string, Value>;
  flags: number;
  missing?: string[];
}

function decodeBlock(x: CborValue, index: number, budget: { left: number }): MutableSample[] {
  const what = `meter block ${index}`;
  const m = asMap(x, what, [0, 1, 2, 3, 4, 6], [5]);
  const meter = asText(m.get(0), `${what} meter`, NAME_RE);
  const n = asUint(m.get(1), `${what} count`);
  if (n === 0) reject('BAD_DOCUMENT', `${what} is empty`);
  if (n > budget.left) reject('BAD_DOCUMENT', `${what}: more samples than the limit`);
  budget.left -= n;
  const seqs = undelta(asArray(m.get(2), `${what} seq`, n), `${what} seq`, 0, Number.MAX_SAFE_INTEGER);
  for (let i = 1; i < n; i++)
    if ((seqs[i] as number) <= (seqs[i - 1] as number)) reject('BAD_DOCUMENT', `${what}: seq not increasing`);
  const tsCol = asArray(m.get(3), `${what} ts`, n);
  const ts = new Array<number>(n);
  let prev = 0;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const x = asInt(tsCol[i], `${what} ts`);
    if (typeof x !== 'number' || Math.abs(x) > 2 * LIMITS.maxTs)
      reject('BAD_DOCUMENT', `${what}: ts out of range`);
    d = i < 2 ? x : d + x;
    prev += d;
    if (prev < 0 || prev > LIMITS.maxTs) reject('BAD_DOCUMENT', `${what}: ts out of range`);
    ts[i] = prev;
  }
  const samples: MutableSample[] = seqs.map((seq, i) => ({
    meter,
    ts: ts[i] as number,
    seq,
    values: {},
    flags: 0,
  }));
  const flagRuns = asArray(m.get(4), `${what} flags`);
  if (flagRuns.length % 2 !== 0) reject('BAD_DOCUMENT', `${what}: flags runs are not pairs`);
  let at = 0;
  for (let i = 0; i < flagRuns.length; i += 2) {
    const flags = asUint(flagRuns[i], `${what} flags`, LIMITS.maxFlags);
    const run = asUint(flagRuns[i + 1], `${what} flags run`, n - at);
    if (run === 0) reject('BAD_DOCUMENT', `${what}: empty flags run`);
    for (let j = 0; j < run; j++) (samples[at + j] as MutableSample).flags = flags;
    at += run;
  }
  if (at !== n) reject('BAD_DOCUMENT', `${what}: flags runs do not cover the samples`);
  if (m.has(5)) {
    const miss = asArray(m.get(5), `${what} missing`);
    if (miss.length === 0 || miss.length % 2 !== 0) reject('BAD_DOCUMENT', `${what}: missing is not pairs`);
    let last = -1;
    for (let i = 0; i < miss.length; i += 2) {
      const row = asUint(miss[i], `${what} missing row`, n - 1);
      if (row <= last) reject('BAD_DOCUMENT', `${what}: missing rows not increasing`);
      last = row;
      const names = asArray(miss[i + 1], `${what} missing names`).map((c) =>
        channelName(c, `${what} missing`),
      );
      if (names.length === 0 || new Set(names).size !== names.length)
        reject('BAD_DOCUMENT', `${what}: missing names empty or repeated`);
      (samples[row] as MutableSample).missing = names;
    }
  }
  const cols = asArray(m.get(6), `${what} columns`);
  cols.forEach((cx, ci) => {
    const col = decodeColumn(cx, n, `${what} column ${ci}`);
    col.rows.forEach((row, i) => {
      const s = samples[row] as MutableSample;
      if (Object.hasOwn(s.values, col.name))
        reject('BAD_DOCUMENT', `${what}: channel ${col.name} given twice`);
      s.values[col.name] = col.values[i] as Value;
    });
  });
  return samples;
}

/** Interprets a strictly read CBOR value as a batch document; throws `RejectError` (BAD_DOCUMENT, ...). */
export function batchFromCbor(x: CborValue, limits: DocumentLimits): BatchV1 {
  if (x instanceof Map && x.get(0) !== BATCH_VERSION && typeof x.get(0) === 'number')
    reject('UNSUPPORTED_VERSION', `batch document version ${String(x.get(0))}`);
  const m = asMap(x, 'batch document', [0, 1, 2, 3]);
  const device = m.get(1);
  if (!isValidThingName(device)) return reject('BAD_DOCUMENT', 'device is not a valid thing name');
  const range = asArray(m.get(2), 'seq range', 2);
  const firstSeq = asUint(range[0], 'first seq');
  const lastSeq = asUint(range[1], 'last seq');
  const blocks = asArray(m.get(3), 'meter blocks');
  if (blocks.length === 0) reject('BAD_DOCUMENT', 'no meter blocks');
  const budget = { left: limits.maxSamples };
  const meters: string[] = [];
  const all: MutableSample[] = [];
  blocks.forEach((b, i) => {
    const samples = decodeBlock(b, i, budget);
    const meter = (samples[0] as MutableSample).meter;
    if (meters.includes(meter)) reject('BAD_DOCUMENT', `meter ${meter} has two blocks`);
    meters.push(meter);
    for (const s of samples) all.push(s);
  });
  all.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < all.length; i++)
    if ((all[i] as MutableSample).seq === (all[i - 1] as MutableSample).seq)
      reject('BAD_DOCUMENT', `seq ${(all[i] as MutableSample).seq} appears twice`);
  if ((all[0] as MutableSample).seq !== firstSeq || (all[all.length - 1] as MutableSample).seq !== lastSeq)
    reject('BAD_DOCUMENT', 'seq range does not match the samples');
  return { v: 1, device, firstSeq, lastSeq, meters, samples: all };
}
