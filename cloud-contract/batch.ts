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
  validateHead(s);
  if (typeof s.values !== 'object' || s.values === null) bad(`sample ${s.seq}: values is not an object`, ctx);
  for (const [name, v] of Object.entries(s.values)) {
    if (!CHANNEL_RE.test(name)) bad(`sample ${s.seq}: channel name ${JSON.stringify(name)} is invalid`, ctx);
    if (typeof v !== 'object' || v === null)
      bad(`sample ${s.seq}: ${name} is not a Value`, { seq: s.seq, channel: name, value: v });
    validateParts(v.type, v.mantissa, v.exponent, name, s.seq);
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

/** A value's checks, on its parts (no `Value` object needed; the error's context gets one). */
function validateParts(
  type: Value['type'],
  mantissa: number,
  exponent: number,
  name: string,
  seq: number,
): void {
  let why: string | undefined;
  if (!Number.isInteger(exponent) || Math.abs(exponent) > LIMITS.exponent)
    why = `exponent ${exponent} is not an integer in ±${LIMITS.exponent}`;
  else if (typeof mantissa !== 'number') why = 'mantissa is not a number';
  else if (type === 'int') {
    if (!Number.isSafeInteger(mantissa)) why = 'int mantissa is not a safe integer';
  } else if (type === 'f32') {
    if (!Object.is(Math.fround(mantissa), mantissa))
      why = `f32 mantissa ${mantissa} is not representable as float32`;
  } else if (type !== 'f64') why = `has unknown value type ${String(type)}`;
  if (why !== undefined)
    bad(`sample ${seq}: ${name} ${why}`, { seq, channel: name, value: { type, mantissa, exponent } });
}

// ---------------------------------------------------------------------------------------------------------
// Encoding
//
// Samples are gathered column by column as they are added (`ColumnSet`): per meter a block of rows (seq, ts,
// flags, missing) and per (channel, type, exponent) a column of rows and mantissas, in plain number arrays.
// Nothing holds one object per value, so a batch of ~2,000 samples × 26 values costs two arrays per column,
// and a caller that decodes stored bytes straight into `ValueSink` never makes a `Value` at all. Any prefix of
// the added samples can be written (the builder proves sizes on prefixes) or dropped (`truncate`).

type ChannelRef = number | string;

function channelRef(name: string): ChannelRef {
  return channelByName(name)?.id ?? name;
}

/**
 * Receives one sample's values and missing channels, without a `Value` object per value. `channel` is a
 * registry id (`channels.ts`) or a channel name (a registry name is mapped to its id).
 */
export interface ValueSink {
  value(channel: ChannelRef, type: Value['type'], mantissa: number, exponent: number): void;
  missing(channel: ChannelRef): void;
}

/** A sample without its values: what `ColumnSet.add` / `BatchBuilder.tryAddWith` take beside a `fill`. */
export interface SampleHead {
  readonly seq: number;
  readonly meter: string;
  readonly ts: number;
  readonly flags: number;
}

interface Column {
  ch: ChannelRef;
  type: Value['type'];
  exponent: number;
  /** Rows of the block that have this column, ascending. */
  rows: number[];
  mantissas: number[];
  /**
   * A float column's decimal scale and digits, carried from one encode to the next (`decimalColumn`): the
   * builder proves a growing batch several times, and only the values added since need looking at.
   * `truncate` drops it.
   */
  dec?: DecimalScan;
  /** The CBOR of the column's deltas so far, carried likewise (`writeColumnDeltas`); `truncate` drops it. */
  body?: DeltaBody;
}

/** A column's values `[0, n)` as CBOR deltas under one encoding (`key`), for a longer prefix to continue. */
interface DeltaBody {
  /** The encoding: DELTA_INT, DELTA_F32_BITS, or a decimal scale (≥ 0). */
  key: number;
  n: number;
  /** The last value written (the next delta's base). */
  prev: number;
  w: CborWriter;
}

const DELTA_INT = -1;
const DELTA_F32_BITS = -2;

/** `decimalColumn`'s scan of a column's first `n` values, kept so a longer prefix continues from it. */
interface DecimalScan {
  /** Values the first pass has seen. */
  n: number;
  /** The first pass's scale after them; above the type's maximum: no scale carries them. */
  k: number;
  /** Digits at scale `k` of the first `digits.length` values, each checked to give its value back exactly. */
  digits: number[];
  /** A value among the first `digits.length` + 1 does not survive scale `k`: no scale for any longer prefix. */
  broken: boolean;
}

interface ChannelColumns {
  cols: Column[];
  /** `ColumnSet.stamp` of the last sample that gave this channel a value (a channel twice in one sample). */
  lastStamp: number;
}

interface Block {
  meter: string;
  /** Index of each row among all samples of the set (ascending). */
  index: number[];
  seqs: number[];
  ts: number[];
  flags: number[];
  /** Rows with missing channels (ascending) and their channels. */
  missRows: number[];
  missRefs: ChannelRef[][];
  /** In order of first appearance (row-major); a channel whose type or exponent changes has several. */
  columns: Column[];
  byRef: Map<ChannelRef, ChannelColumns>;
}

/** Index of the first element ≥ x in an ascending array (its length if none). */
function lowerBound(xs: readonly number[], x: number, len = xs.length): number {
  if (len === 0 || (xs[len - 1] as number) < x) return len;
  let lo = 0;
  let hi = len;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The samples of one batch, gathered in columns as they are added (see above). */
export class ColumnSet implements ValueSink {
  private readonly blocks = new Map<string, Block>();
  /** Blocks in order of first appearance. */
  private order: Block[] = [];
  private seqList: number[] = [];
  /** The block and row being filled, and whether its values are checked (`add(..., validate)`). */
  private cur: Block | undefined;
  private row = 0;
  private checking = false;
  private curSeq = 0;
  private curMissing: Set<ChannelRef> | undefined;
  private stamp = 0;

  get count(): number {
    return this.seqList.length;
  }

  get lastSeq(): number | undefined {
    return this.seqList[this.seqList.length - 1];
  }

  seqAt(i: number): number {
    return this.seqList[i] as number;
  }

  /**
   * Adds one sample: its head, then whatever `fill` gives the sink (values and missing channels, in the
   * sample's order). With `validate`, every value is checked as `validateSample` would (the head is the
   * caller's to check); on any throw the sample is taken out again and the set is as before.
   */
  add(head: SampleHead, fill: (sink: ValueSink) => void, validate: boolean): void {
    let b = this.blocks.get(head.meter);
    if (b === undefined) {
      b = {
        meter: head.meter,
        index: [],
        seqs: [],
        ts: [],
        flags: [],
        missRows: [],
        missRefs: [],
        columns: [],
        byRef: new Map(),
      };
      this.blocks.set(head.meter, b);
      this.order.push(b);
    }
    const before = this.seqList.length;
    this.row = b.seqs.length;
    b.index.push(before);
    b.seqs.push(head.seq);
    b.ts.push(head.ts);
    b.flags.push(head.flags);
    this.seqList.push(head.seq);
    this.cur = b;
    this.checking = validate;
    this.curSeq = head.seq;
    this.curMissing = undefined;
    this.stamp++;
    try {
      fill(this);
    } catch (err) {
      this.cur = undefined;
      this.truncate(before);
      throw err;
    }
    this.cur = undefined;
  }

  value(channel: ChannelRef, type: Value['type'], mantissa: number, exponent: number): void {
    const b = this.cur as Block;
    const ref = typeof channel === 'string' ? channelRef(channel) : channel;
    if (this.checking) {
      const name = checkedChannel(ref, this.curSeq);
      validateParts(type, mantissa, exponent, name, this.curSeq);
    }
    let group = b.byRef.get(ref);
    if (group === undefined) b.byRef.set(ref, (group = { cols: [], lastStamp: 0 }));
    if (group.lastStamp === this.stamp)
      bad(`sample ${this.curSeq}: channel ${String(ref)} given twice`, { seq: this.curSeq, channel: ref });
    group.lastStamp = this.stamp;
    let c: Column | undefined;
    // Indexed, not for-of: without TurboFan (the daemon's --max-opt=1) a for-of makes an iterator and a result
    // object per value, ~2.3 KiB of garbage per SDM630 sample.
    const cols = group.cols;
    for (let i = 0; i < cols.length; i++) {
      const x = cols[i] as Column;
      if (x.type === type && x.exponent === exponent) {
        c = x;
        break;
      }
    }
    if (c === undefined) {
      c = { ch: ref, type, exponent, rows: [], mantissas: [] };
      group.cols.push(c);
      b.columns.push(c);
    }
    c.rows.push(this.row);
    c.mantissas.push(type === 'int' && mantissa === 0 ? 0 : mantissa);
  }

  missing(channel: ChannelRef): void {
    const b = this.cur as Block;
    const ref = typeof channel === 'string' ? channelRef(channel) : channel;
    if (this.checking) {
      checkedChannel(ref, this.curSeq);
      this.curMissing ??= new Set();
      if (this.curMissing.has(ref))
        bad(`sample ${this.curSeq}: missing channel ${String(ref)} listed twice`, { seq: this.curSeq });
      this.curMissing.add(ref);
    }
    const last = b.missRows.length - 1;
    if (last >= 0 && b.missRows[last] === this.row) (b.missRefs[last] as ChannelRef[]).push(ref);
    else {
      b.missRows.push(this.row);
      b.missRefs.push([ref]);
    }
  }

  /** Keeps the first `count` samples, as if the others had never been added. */
  truncate(count: number): void {
    if (count >= this.seqList.length) return;
    this.seqList.length = count;
    for (const b of this.order) {
      const n = lowerBound(b.index, count);
      if (n === b.seqs.length) continue;
      b.index.length = n;
      b.seqs.length = n;
      b.ts.length = n;
      b.flags.length = n;
      const m = lowerBound(b.missRows, n);
      b.missRows.length = m;
      b.missRefs.length = m;
      for (const c of b.columns) {
        const k = lowerBound(c.rows, n);
        c.rows.length = k;
        c.mantissas.length = k;
        c.dec = undefined;
        c.body = undefined;
      }
      // Columns made by the rows taken out are empty now, and they are the last ones made.
      while (b.columns.length > 0 && (b.columns[b.columns.length - 1] as Column).rows.length === 0) {
        const c = b.columns.pop() as Column;
        const group = b.byRef.get(c.ch) as ChannelColumns;
        group.cols.pop();
        if (group.cols.length === 0) b.byRef.delete(c.ch);
      }
    }
    const gone = this.order.filter((b) => b.seqs.length === 0);
    for (const b of gone) this.blocks.delete(b.meter);
    if (gone.length > 0) this.order = this.order.filter((b) => b.seqs.length > 0);
  }

  /** The batch document of the first `count` samples (default all). */
  write(device: string, count = this.seqList.length): Uint8Array {
    const w = new CborWriter(64 * 1024);
    w.map(4);
    w.int(0);
    w.int(BATCH_VERSION);
    w.int(1);
    w.text(device);
    w.int(2);
    w.array(2);
    w.int(this.seqList[0] as number);
    w.int(this.seqList[count - 1] as number);
    w.int(3);
    let blocks = 0;
    for (const b of this.order) if ((b.index[0] as number) < count) blocks++;
    w.array(blocks);
    for (const b of this.order) {
      const n = lowerBound(b.index, count);
      if (n > 0) writeBlock(w, b, n);
    }
    return w.finish();
  }
}

/** The channel's name for messages, after checking that a custom name is a valid one. */
function checkedChannel(ref: ChannelRef, seq: number): string {
  if (typeof ref === 'number') {
    const def = channelById(ref);
    if (def === undefined) bad(`sample ${seq}: unknown channel id ${ref}`, { seq, channel: ref });
    return def.name;
  }
  if (!CHANNEL_RE.test(ref)) bad(`sample ${seq}: channel name ${JSON.stringify(ref)} is invalid`, { seq });
  return ref;
}

/** `validateSample`'s checks of a sample's head (meter, seq, ts, flags). */
export function validateHead(s: SampleHead): void {
  const ctx = { seq: s.seq, meter: s.meter };
  if (typeof s.meter !== 'string' || !NAME_RE.test(s.meter))
    bad(`sample ${s.seq}: meter id must be 1–64 of [A-Za-z0-9_.:-]`, ctx);
  if (!Number.isSafeInteger(s.seq) || s.seq < 0)
    bad(`sample seq ${s.seq} is not a non-negative integer`, ctx);
  if (!Number.isSafeInteger(s.ts) || s.ts < 0 || s.ts > LIMITS.maxTs)
    bad(`sample ${s.seq}: ts ${s.ts} is not a ms timestamp in [0, 2^47]`, ctx);
  if (!Number.isInteger(s.flags) || s.flags < 0 || s.flags > LIMITS.maxFlags)
    bad(`sample ${s.seq}: flags ${s.flags} is not a 16-bit flag set`, ctx);
}

/** Gives a sample object's values and missing channels to a sink, in the object's order. */
export function fillFromSample(s: Sample, sink: ValueSink): void {
  const values = s.values;
  for (const name in values) {
    const v = values[name] as Value;
    sink.value(name, v.type, v.mantissa, v.exponent);
  }
  if (s.missing !== undefined) for (const name of s.missing) sink.missing(name);
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
  const p = POW10[k] as number;
  const m0 = Math.round(v * p);
  if (!Number.isSafeInteger(m0)) return undefined;
  const m = m0 === 0 ? 0 : m0; // -0 would not survive as a CBOR integer
  // fromDecimal and Object.is, inline: this runs once per float value, and the daemon has no TurboFan to
  // inline them.
  const x0 = k === 0 ? m : m / p;
  const x = type === 'f32' ? Math.fround(x0) : x0;
  return x === v && (x !== 0 || 1 / x === 1 / v) ? m : undefined;
}

function fromDecimal(m: number, type: 'f32' | 'f64', k: number): number {
  const x = k === 0 ? m : m / (POW10[k] as number);
  return type === 'f32' ? Math.fround(x) : x;
}

/**
 * The smallest scale at which the first `len` values are all carried exactly as decimal digits, with those
 * digits; undefined if there is none. Raising the scale for a later value can break an earlier one (digits
 * beyond the float's precision): then there is none either. Continues the column's last scan when `len` reaches
 * past it (each new value looked at once, where rescanning cost three looks at every value per encode), and
 * scans afresh, leaving the kept scan alone, for a shorter prefix (the builder's bisection).
 */
function decimalColumn(
  c: Column,
  len: number,
  type: 'f32' | 'f64',
): { k: number; digits: number[] } | undefined {
  let d = c.dec;
  if (d === undefined || len < d.n) {
    const fresh: DecimalScan = { n: 0, k: 0, digits: [], broken: false };
    if (d === undefined) c.dec = fresh;
    d = fresh;
  }
  const max = MAX_SCALE[type];
  const values = c.mantissas;
  let k = d.k;
  for (let i = d.n; i < len && k <= max; i++) {
    const v = values[i] as number;
    let m = decimalDigits(v, type, k);
    while (m === undefined && ++k <= max) m = decimalDigits(v, type, k);
    // Still at the scale every earlier value was checked at: this value's digits are the ones just found.
    if (m !== undefined && k === d.k && !d.broken && d.digits.length === i) d.digits.push(m);
  }
  d.n = len;
  if (k !== d.k) {
    d.k = k;
    d.digits = [];
    d.broken = false;
  }
  if (k > max || d.broken) return undefined;
  const digits = d.digits;
  for (let i = digits.length; i < len; i++) {
    const m = decimalDigits(values[i] as number, type, k);
    if (m === undefined) {
      d.broken = true;
      return undefined;
    }
    digits.push(m);
  }
  return { k, digits };
}

/** The first `len` numbers as deltas, each `map(x)` first. */
function writeDeltas(w: CborWriter, xs: readonly number[], len: number, map?: (x: number) => number): void {
  w.array(len);
  appendDeltas(w, xs, 0, len, 0, map);
}

/** Deltas of `xs[from..to)` (each `map(x)` first), the first against `prev`; gives the last value written. */
function appendDeltas(
  w: CborWriter,
  xs: readonly number[],
  from: number,
  to: number,
  prev: number,
  map?: (x: number) => number,
): number {
  for (let i = from; i < to; i++) {
    const x = map === undefined ? (xs[i] as number) : map(xs[i] as number);
    const d = x - prev;
    // subInts inline (one call less per value): exact while the difference is a safe integer.
    if (Number.isSafeInteger(d)) w.head(d >= 0 ? 0 : 1, d >= 0 ? d : -1 - d);
    else w.int(subInts(x, prev));
    prev = x;
  }
  return prev;
}

/**
 * `writeDeltas` of a column's values, continuing the CBOR it wrote for a shorter prefix under the same
 * encoding: a batch being proven is written several times over, and only the values added since are new.
 * A shorter prefix than the one kept (the builder's bisection) is written afresh.
 */
function writeColumnDeltas(
  w: CborWriter,
  c: Column,
  key: number,
  xs: readonly number[],
  len: number,
  map?: (x: number) => number,
): void {
  let body = c.body;
  if (body !== undefined && body.key === key && len < body.n) {
    writeDeltas(w, xs, len, map);
    return;
  }
  if (body === undefined || body.key !== key) c.body = body = { key, n: 0, prev: 0, w: new CborWriter(1024) };
  body.prev = appendDeltas(body.w, xs, body.n, len, body.prev, map);
  body.n = len;
  w.array(len);
  w.raw(body.w.written);
}

function writePresence(w: CborWriter, rows: readonly number[], len: number, n: number): void {
  if (len === n) {
    w.bool(true);
    return;
  }
  const runs: number[] = [];
  let expect = 0; // next row index not yet accounted for
  let i = 0;
  while (i < len) {
    const start = rows[i] as number;
    if (runs.length === 0) {
      if (start > 0) runs.push(0, start);
    } else runs.push(start - expect);
    let j = i;
    while (j + 1 < len && rows[j + 1] === (rows[j] as number) + 1) j++;
    runs.push(j - i + 1);
    expect = (rows[j] as number) + 1;
    i = j + 1;
  }
  if (expect < n) runs.push(n - expect);
  w.array(runs.length);
  for (const r of runs) w.int(r);
}

/** The column's first `len` values (those in the block's first `n` rows). */
function writeColumn(w: CborWriter, c: Column, len: number, n: number): void {
  w.array(7);
  if (typeof c.ch === 'number') w.int(c.ch);
  else w.text(c.ch);
  w.int(TYPE_CODE[c.type]);
  w.int(c.exponent);
  if (c.type === 'int') {
    w.int(CODEC_DELTA);
    w.int(0);
    writePresence(w, c.rows, len, n);
    writeColumnDeltas(w, c, DELTA_INT, c.mantissas, len);
    return;
  }
  const type = c.type;
  const dec = decimalColumn(c, len, type);
  if (dec !== undefined) {
    w.int(CODEC_DECIMAL);
    w.int(dec.k);
    writePresence(w, c.rows, len, n);
    writeColumnDeltas(w, c, dec.k, dec.digits, len);
    return;
  }
  w.int(CODEC_RAW);
  w.int(0);
  writePresence(w, c.rows, len, n);
  if (type === 'f32') {
    writeColumnDeltas(w, c, DELTA_F32_BITS, c.mantissas, len, f32Bits);
  } else {
    const b = new Uint8Array(8 * len);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < len; i++) dv.setFloat64(8 * i, c.mantissas[i] as number);
    w.bytes(b);
  }
}

/** The block's first `n` rows. */
function writeBlock(w: CborWriter, b: Block, n: number): void {
  const nMissing = lowerBound(b.missRows, n);
  w.map(nMissing > 0 ? 7 : 6);
  w.int(0);
  w.text(b.meter);
  w.int(1);
  w.int(n);
  // seq: first absolute, then deltas (≥ 1).
  w.int(2);
  writeDeltas(w, b.seqs, n);
  // ts: first absolute, first delta, then delta of delta.
  w.int(3);
  w.array(n);
  let prevTs = 0;
  let prevD = 0;
  for (let i = 0; i < n; i++) {
    const ts = b.ts[i] as number;
    const d = ts - prevTs;
    w.int(i < 2 ? d : d - prevD);
    prevD = i === 0 ? 0 : d;
    prevTs = ts;
  }
  // flags: run-length pairs.
  w.int(4);
  const runs: number[] = [];
  for (let i = 0; i < n; i++) {
    const flags = b.flags[i] as number;
    if (runs.length > 0 && runs[runs.length - 2] === flags) runs[runs.length - 1]! += 1;
    else runs.push(flags, 1);
  }
  w.array(runs.length);
  for (const r of runs) w.int(r);
  if (nMissing > 0) {
    w.int(5);
    w.array(nMissing * 2);
    for (let i = 0; i < nMissing; i++) {
      const refs = b.missRefs[i] as ChannelRef[];
      w.int(b.missRows[i] as number);
      w.array(refs.length);
      for (const ref of refs) {
        if (typeof ref === 'number') w.int(ref);
        else w.text(ref);
      }
    }
  }
  // columns, in order of first appearance; a channel whose type or exponent changes gets one more column.
  let cols = 0;
  const lens = b.columns.map((c) => lowerBound(c.rows, n));
  for (const len of lens) if (len > 0) cols++;
  w.int(6);
  w.array(cols);
  b.columns.forEach((c, i) => {
    const len = lens[i] as number;
    if (len > 0) writeColumn(w, c, len, n);
  });
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

export function assertFollows(s: { readonly seq: number }, prevSeq: number): void {
  if (s.seq <= prevSeq)
    throw new ContractError(
      'BAD_SAMPLE',
      `seq ${s.seq} follows ${prevSeq}: a batch is a strictly increasing range`,
      {
        seq: s.seq,
      },
    );
}

/** Encodes samples already checked by `validateSample`/`assertFollows`. */
export function encodeValidated(device: string, samples: readonly Sample[]): Uint8Array {
  const set = new ColumnSet();
  for (const s of samples) set.add(s, (sink) => fillFromSample(s, sink), false);
  return set.write(device);
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
