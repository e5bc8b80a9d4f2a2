/**
 * Cuts a P1 byte stream into telegrams, `/` through `!CRC` and its CRLF, on raw bytes.
 *
 * Why not @serialport/parser-readline (what DESIGN names): its line buffer grows without bound when no LF
 * arrives (wrong baud rate, 7E1 line read as 8N1, a noisy cable), and a telegram cut mid-line glues the next
 * header onto that line, so a line framer must still search inside lines for the next `/`. This framer does
 * both on bytes, with a hard size limit, and never decodes to text (the CRC is over the exact bytes).
 */

const SLASH = 0x2f;
const BANG = 0x21;
const CR = 0x0d;
const LF = 0x0a;

export interface FramerStats {
  /** Bytes thrown away outside any telegram (noise, a partial first telegram after opening). */
  garbageBytes: number;
  /** Telegrams cut short: a new header came before the footer, or the size limit was hit. */
  truncated: number;
  /** Complete frames handed on (not yet CRC-checked). */
  frames: number;
}

export interface FramerOptions {
  /** Largest telegram accepted, in bytes (default 16 KiB; an e-MUCS telegram with 13 months of peaks is ~3 KiB). */
  readonly maxBytes?: number;
}

const isLetter = (b: number | undefined) =>
  b !== undefined && ((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));
const isDigit = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39;
const isHex = (b: number | undefined) =>
  isDigit(b) || (b !== undefined && ((b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)));

/**
 * Where a header `/XXXZ` starts (IEC 62056-21 identification: three-letter manufacturer id, then the
 * baud-rate character, a digit), from `from` on; -1 when none; -2 when the buffer ends inside a possible one.
 */
function findHeader(buf: Buffer, from: number): number {
  for (let i = buf.indexOf(SLASH, from); i >= 0; i = buf.indexOf(SLASH, i + 1)) {
    if (buf.length - i < 5) {
      // Not enough bytes yet to tell: keep it if it can still become a header.
      let prefix = true;
      for (let k = i + 1; k < buf.length; k++) prefix &&= k - i <= 3 ? isLetter(buf[k]) : isDigit(buf[k]);
      if (prefix) return -2 - i;
      continue;
    }
    if (isLetter(buf[i + 1]) && isLetter(buf[i + 2]) && isLetter(buf[i + 3]) && isDigit(buf[i + 4])) return i;
  }
  return -1;
}

export class TelegramFramer {
  readonly stats: FramerStats = { garbageBytes: 0, truncated: 0, frames: 0 };
  private buf: Buffer = Buffer.alloc(0);
  private readonly maxBytes: number;

  constructor(opts: FramerOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 16 * 1024;
  }

  /** Forgets any partial telegram (after the port was reopened). */
  reset(): void {
    this.stats.garbageBytes += this.buf.length;
    this.buf = Buffer.alloc(0);
  }

  /** Feeds bytes; returns the complete frames they finished, in order. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const start = findHeader(this.buf, 0);
      if (start === -1) {
        this.drop(this.buf.length);
        break;
      }
      if (start <= -2) {
        this.drop(-2 - start);
        break;
      }
      this.drop(start);
      // Inside a telegram from byte 0. A new header before the footer means this one was cut short.
      const bang = this.buf.indexOf(BANG, 1);
      const next = findHeader(this.buf, 1);
      if (next >= 0 && (bang < 0 || next < bang)) {
        this.stats.truncated++;
        this.drop(next);
        continue;
      }
      if (bang < 0) {
        if (this.buf.length > this.maxBytes) {
          this.stats.truncated++;
          this.drop(1);
          continue;
        }
        break;
      }
      // Footer: `!` + up to four hex digits, then CRLF. Wait for more bytes while it may still be arriving.
      let end = bang + 1;
      while (end < this.buf.length && end - bang <= 4 && isHex(this.buf[end])) end++;
      if (end === this.buf.length) break;
      if (this.buf[end] === CR && end + 1 === this.buf.length) break;
      if (this.buf[end] === CR && this.buf[end + 1] === LF) end += 2;
      else if (this.buf[end] === LF) end += 1;
      out.push(Buffer.from(this.buf.subarray(0, end)));
      this.stats.frames++;
      this.buf = this.buf.subarray(end);
    }
    return out;
  }

  private drop(n: number): void {
    if (n <= 0) return;
    this.stats.garbageBytes += n;
    this.buf = this.buf.subarray(n);
  }
}
