/**
 * SML transport protocol v1 (SML 1.04 §8): a file starts with `1B1B1B1B 01010101`, the payload follows in
 * 4-byte words (a payload word `1B1B1B1B` is sent twice), and the file ends with `1B1B1B1B 1A nn c1 c2`: nn
 * padding bytes (00) were appended to the payload to fill the last word, c1 c2 is the CRC-16/X-25 over every
 * byte from the start escape through `nn`, least significant byte first (as captures show).
 *
 * `SmlFramer` cuts a byte stream (an IR head pushes a file every 1–4 s) into files; `unpackFile` checks one.
 */
import { DriverError } from '../errors.js';
import { crc16x25 } from './crc.js';

const ESC = 0x1b1b1b1b;
const START = 0x01010101;

export interface SmlFramerStats {
  /** Files cut from the stream (good or bad CRC). */
  files: number;
  /** Bytes skipped outside any file (noise, a file whose start was lost). */
  skippedBytes: number;
  /** Files abandoned: a new start inside a file (truncated), an unknown escape, or over the size limit. */
  abandoned: number;
}

/** Cuts a byte stream into raw SML files (start escape … CRC), unchecked. */
export class SmlFramer {
  readonly stats: SmlFramerStats = { files: 0, skippedBytes: 0, abandoned: 0 };
  private buf = Buffer.alloc(0);
  constructor(private readonly maxBytes = 16_384) {}

  reset(): void {
    this.buf = Buffer.alloc(0);
  }

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const start = findStart(this.buf);
      if (start < 0) {
        // Keep the last 7 bytes: a start sequence may be split across chunks.
        const keep = Math.min(this.buf.length, 7);
        this.stats.skippedBytes += this.buf.length - keep;
        this.buf = this.buf.subarray(this.buf.length - keep);
        return out;
      }
      this.stats.skippedBytes += start;
      this.buf = this.buf.subarray(start);
      const r = scanFile(this.buf);
      if (r.kind === 'more') {
        if (this.buf.length > this.maxBytes) {
          this.stats.abandoned++;
          this.buf = this.buf.subarray(8);
          continue;
        }
        return out;
      }
      if (r.kind === 'abandon') {
        this.stats.abandoned++;
        this.buf = this.buf.subarray(r.resumeAt);
        continue;
      }
      this.stats.files++;
      out.push(Buffer.from(this.buf.subarray(0, r.end)));
      this.buf = this.buf.subarray(r.end);
    }
  }
}

function findStart(b: Buffer): number {
  for (let i = b.indexOf(0x1b); i >= 0 && i + 8 <= b.length; i = b.indexOf(0x1b, i + 1)) {
    if (b.readUInt32BE(i) === ESC && b.readUInt32BE(i + 4) === START) return i;
  }
  return -1;
}

type Scan = { kind: 'more' } | { kind: 'abandon'; resumeAt: number } | { kind: 'file'; end: number };

/** `b` starts with the start sequence; walks its words to the end escape. */
function scanFile(b: Buffer): Scan {
  let i = 8;
  while (i + 4 <= b.length) {
    if (b.readUInt32BE(i) !== ESC) {
      i += 4;
      continue;
    }
    if (i + 8 > b.length) return { kind: 'more' };
    const next = b.readUInt32BE(i + 4);
    if (next === ESC) i += 8;
    else if (next === START) return { kind: 'abandon', resumeAt: i };
    else if (b[i + 4] === 0x1a) return { kind: 'file', end: i + 8 };
    else return { kind: 'abandon', resumeAt: i + 4 };
  }
  return { kind: 'more' };
}

/** Checks one file (as `SmlFramer` cut it, or a captured one): CRC, padding, escapes → the payload. */
export function unpackFile(
  file: Uint8Array,
): { ok: true; payload: Buffer } | { ok: false; error: DriverError } {
  const b = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const bad = (message: string, context: Record<string, unknown> = {}) => ({
    ok: false as const,
    error: new DriverError('BAD_FRAME', `SML file: ${message}`, { context: { bytes: b.length, ...context } }),
  });
  if (b.length < 16 || b.length % 4 !== 0) return bad('too short or not a whole number of 4-byte words');
  if (b.readUInt32BE(0) !== ESC || b.readUInt32BE(4) !== START) return bad('no start sequence');
  const endAt = b.length - 8;
  if (b.readUInt32BE(endAt) !== ESC || b[endAt + 4] !== 0x1a) return bad('no end sequence (truncated?)');
  const expected = b.readUInt16LE(b.length - 2);
  const actual = crc16x25(b, 0, b.length - 2);
  if (expected !== actual)
    return {
      ok: false,
      error: new DriverError('CRC', 'SML file: CRC-16/X-25 mismatch', {
        context: { expected, actual, bytes: b.length },
      }),
    };
  const words: Buffer[] = [];
  for (let i = 8; i < endAt; i += 4) {
    if (b.readUInt32BE(i) === ESC) {
      if (i + 4 >= endAt || b.readUInt32BE(i + 4) !== ESC) return bad('unknown escape sequence', { at: i });
      i += 4;
    }
    words.push(b.subarray(i, i + 4));
  }
  const payload = Buffer.concat(words);
  const padding = b[endAt + 5] as number;
  // The spec pads 0–3 bytes; DZG meters send 4 (a whole extra word of zeros), so only zeros are checked.
  if (padding > 7 || padding > payload.length) return bad(`padding count ${padding} out of range`);
  for (let k = payload.length - padding; k < payload.length; k++)
    if (payload[k] !== 0) return bad('padding bytes are not zero');
  return { ok: true, payload: payload.subarray(0, payload.length - padding) };
}

/** Wraps a payload into a transport v1 file (escapes, padding, CRC) — the simulator's half. */
export function packFile(payload: Uint8Array): Buffer {
  const padding = (4 - (payload.length % 4)) % 4;
  const body = Buffer.concat([Buffer.from(payload), Buffer.alloc(padding)]);
  const parts: Buffer[] = [Buffer.from('1b1b1b1b01010101', 'hex')];
  for (let i = 0; i < body.length; i += 4) {
    const w = body.subarray(i, i + 4);
    parts.push(w);
    if (w.readUInt32BE(0) === ESC) parts.push(w);
  }
  parts.push(Buffer.from([0x1b, 0x1b, 0x1b, 0x1b, 0x1a, padding]));
  const head = Buffer.concat(parts);
  const crc = Buffer.alloc(2);
  crc.writeUInt16LE(crc16x25(head));
  return Buffer.concat([head, crc]);
}
