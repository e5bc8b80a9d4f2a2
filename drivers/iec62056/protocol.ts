/**
 * IEC 62056-21 ("D0", the optical port of most European meters) on the wire: the sign-on request, the
 * identification message and its baud character Z, the acknowledgement/option select, the block check
 * character, and a framer that cuts a byte stream into identification lines and data messages.
 *
 * Characters are 7E1 (ASCII with even parity done by the UART). A data message is
 * `STX data-block ! CR LF ETX BCC` with BCC the XOR of every byte after STX up to and including ETX; push
 * meters (mode D, e.g. EasyMeter, Hager eHZ) often send the data block bare: `CR LF data-block ! CR LF`
 * right after the identification line, with no STX/ETX/BCC.
 */

export const STX = 0x02;
export const ETX = 0x03;
export const ACK = 0x06;
export const NAK = 0x15;

/** XOR of `bytes` (for a data message: from the byte after STX up to and including ETX). */
export function bcc(bytes: Uint8Array): number {
  let x = 0;
  for (const b of bytes) x ^= b;
  return x;
}

/** Sign-on request `/?!\r\n`, or `/?<address>!\r\n` for one meter on a shared bus. */
export function signOnRequest(address = ''): Buffer {
  return Buffer.from(`/?${address}!\r\n`, 'latin1');
}

export type IecMode = 'A' | 'B' | 'C';

/** Baud rates of the Z character: mode C/E `0`–`6`, mode B `A`–`F`. */
const modeCBauds = [300, 600, 1200, 2400, 4800, 9600, 19200] as const;
const modeBBauds = [600, 1200, 2400, 4800, 9600, 19200] as const;

export interface Identification {
  /** Three letters, the manufacturer's FLAG id (`ESY`, `HAG`, `LGZ`, …). */
  readonly manufacturer: string;
  /** The baud character as sent. */
  readonly z: string;
  /** Protocol mode the Z character implies: C (0–6, ACK option select), B (A–F, switch without ACK), A (no switch). */
  readonly mode: IecMode;
  /** Highest baud rate the meter offers for the data (300 in mode A). */
  readonly baud: number;
  /** The identification text after Z (may start with `\W` enhanced-capability escapes). */
  readonly ident: string;
}

export type IdentResult =
  | { readonly ok: true; readonly id: Identification }
  | { readonly ok: false; readonly reason: 'format' | 'unknown-baud'; readonly message: string };

/**
 * Parses `/XXXZident` (without CR LF). Z `0`–`6`: mode C; `A`–`F`: mode B; `7`–`9` and `G`–`I` are reserved
 * for baud rates this standard does not define (`unknown-baud`); any other printable character: mode A.
 */
export function parseIdentification(line: string): IdentResult {
  const m = /^\/([A-Za-z]{2}[A-Za-z0-9])([\x21-\x7e])([\x20-\x7e]{0,100})$/.exec(line);
  if (!m)
    return { ok: false, reason: 'format', message: `not an identification message: ${JSON.stringify(line)}` };
  const [, manufacturer, z, ident] = m as unknown as [string, string, string, string];
  if (/^[0-6]$/.test(z))
    return { ok: true, id: { manufacturer, z, mode: 'C', baud: modeCBauds[Number(z)] as number, ident } };
  if (/^[A-F]$/.test(z))
    return {
      ok: true,
      id: { manufacturer, z, mode: 'B', baud: modeBBauds[z.charCodeAt(0) - 65] as number, ident },
    };
  if (/^[7-9G-I]$/.test(z))
    return {
      ok: false,
      reason: 'unknown-baud',
      message: `identification ${JSON.stringify(line)} offers baud character ${JSON.stringify(z)}, which IEC 62056-21 reserves (no known speed)`,
    };
  if (z === '/' || z === '!')
    return { ok: false, reason: 'format', message: `not an identification message: ${JSON.stringify(line)}` };
  return { ok: true, id: { manufacturer, z, mode: 'A', baud: 300, ident } };
}

/** The mode C Z character for `baud` (300 → `0` … 19200 → `6`), or undefined for a speed mode C lacks. */
export function modeCBaudChar(baud: number): string | undefined {
  const i = (modeCBauds as readonly number[]).indexOf(baud);
  return i < 0 ? undefined : String(i);
}

/** The mode C speed for Z `0`–`6`. */
export function modeCBaud(z: string): number | undefined {
  return /^[0-6]$/.test(z) ? modeCBauds[Number(z)] : undefined;
}

/** ACK / option select `ACK V Z Y CR LF`: V protocol control (`0` normal), Z baud, Y `0` data readout. */
export function ackOptionSelect(z: string, mode: '0' | '1' = '0'): Buffer {
  return Buffer.concat([Buffer.from([ACK]), Buffer.from(`0${z}${mode}\r\n`, 'latin1')]);
}

/** Parses an ACK / option select message (what a meter, or the simulator, receives). */
export function parseAckOptionSelect(bytes: Buffer): { z: string; mode: string } | undefined {
  if (bytes.length !== 6 || bytes[0] !== ACK) return undefined;
  const m = /^([0-9])([0-9A-Z])([0-9])\r\n$/.exec(bytes.subarray(1).toString('latin1'));
  return m ? { z: m[2] as string, mode: m[3] as string } : undefined;
}

/** Time to send `n` characters at `baud` on a 7E1 line (10 bits a character), ms, rounded up. */
export function transmitMs(n: number, baud: number): number {
  return Math.ceil((n * 10 * 1000) / baud);
}

export type IecFrame =
  | { readonly kind: 'ident'; readonly line: string }
  /** A data message: `STX … ETX BCC` (bcc true) or a bare push block `… !\r\n` (bcc false). */
  | { readonly kind: 'data'; readonly raw: Buffer; readonly bcc: boolean };

export interface IecFramerStats {
  /** Bytes that were neither an identification nor a data message (noise, a cut-off start). */
  garbageBytes: number;
  /** Data messages that stopped before their end (a new message started, or too long). */
  truncated: number;
  frames: number;
}

/** Longest identification line (`/XXXZ` + 16 characters by the standard; vendors send more). */
const MAX_IDENT = 128;
/** Longest data message we wait for; a readout of a big meter is a few kB. */
const MAX_BLOCK = 32 * 1024;

const CRLF = Buffer.from('\r\n');
const END_BARE = Buffer.from('\r\n!\r\n');

/**
 * Cuts a byte stream into identification lines and data messages. A bare block is only expected right
 * after an identification line (the push format); everything else before `/` or STX is noise.
 */
export class IecFramer {
  readonly stats: IecFramerStats = { garbageBytes: 0, truncated: 0, frames: 0 };
  private buf = Buffer.alloc(0);
  private afterIdent = false;

  reset(): void {
    this.stats.garbageBytes += this.buf.length;
    this.buf = Buffer.alloc(0);
    this.afterIdent = false;
  }

  /** Bytes of an unfinished message held (a truncated block when the meter went quiet). */
  pending(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): IecFrame[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: IecFrame[] = [];
    for (;;) {
      const f = this.next();
      if (f === undefined) break;
      if (f !== null) {
        this.stats.frames++;
        out.push(f);
      }
    }
    return out;
  }

  private drop(n: number, truncated = false): null {
    if (truncated) this.stats.truncated++;
    else this.stats.garbageBytes += n;
    this.buf = this.buf.subarray(n);
    return null;
  }

  /** The next frame; null when bytes were dropped (call again); undefined when more bytes are needed. */
  private next(): IecFrame | null | undefined {
    const b = this.buf;
    if (b.length === 0) return undefined;
    if (this.afterIdent && b[0] !== STX) {
      // Push format: CR LF, the data lines, `!` CR LF.
      if (b.length < 2) return undefined;
      if (b[0] !== 0x0d || b[1] !== 0x0a) {
        this.afterIdent = false;
        return null;
      }
      const end = b.indexOf(END_BARE);
      const restart = this.restartAt(2);
      if (restart >= 0 && (end < 0 || restart < end)) {
        this.afterIdent = false;
        return this.drop(restart, true);
      }
      if (end < 0) {
        if (b.length > MAX_BLOCK) {
          this.afterIdent = false;
          return this.drop(b.length, true);
        }
        return undefined;
      }
      this.afterIdent = false;
      const raw = Buffer.from(b.subarray(0, end + END_BARE.length));
      this.buf = b.subarray(end + END_BARE.length);
      return { kind: 'data', raw, bcc: false };
    }
    this.afterIdent = false;
    const start = this.startAt(0);
    if (start < 0) return this.drop(b.length);
    if (start > 0) return this.drop(start);
    if (b[0] === 0x2f) {
      const eol = b.indexOf(CRLF);
      if (eol < 0) return b.length > MAX_IDENT ? this.drop(1) : undefined;
      const line = b.subarray(0, eol).toString('latin1');
      if (eol > MAX_IDENT || !/^\/[\x20-\x7e]*$/.test(line)) return this.drop(1);
      this.buf = b.subarray(eol + 2);
      this.afterIdent = true;
      return { kind: 'ident', line };
    }
    // STX … ETX BCC
    const etx = b.indexOf(ETX, 1);
    const restart = this.restartAt(1);
    if (restart >= 0 && (etx < 0 || restart < etx)) return this.drop(restart, true);
    if (etx < 0) return b.length > MAX_BLOCK ? this.drop(b.length, true) : undefined;
    if (etx + 1 >= b.length) return undefined;
    const raw = Buffer.from(b.subarray(0, etx + 2));
    this.buf = b.subarray(etx + 2);
    return { kind: 'data', raw, bcc: true };
  }

  /** Where a message could start (`/` or STX) at or after `from`. */
  private startAt(from: number): number {
    for (let i = from; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (c === 0x2f || c === STX) return i;
    }
    return -1;
  }

  /** Where a new message starts inside an unfinished one: STX, or `/` at the start of a line. */
  private restartAt(from: number): number {
    for (let i = from; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (c === STX || (c === 0x2f && i > 0 && this.buf[i - 1] === 0x0a)) return i;
    }
    return -1;
  }
}
