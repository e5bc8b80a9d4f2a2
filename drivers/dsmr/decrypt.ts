/**
 * Encrypted P1 (Luxembourg Smarty, several Austrian grids): each telegram travels in a DLMS
 * general-global-ciphering APDU, AES-128-GCM with a per-meter key from the grid operator:
 *
 *   DB | 08 | system title (8) | length (0x82 + 2 bytes, 0x81 + 1, or < 0x80) | SC 0x30 | frame counter (4)
 *      | ciphertext | GCM tag (12)
 *
 * IV = system title ‖ frame counter; AAD = SC ‖ authentication key (fixed in the Smarty spec:
 * 00112233445566778899AABBCCDDEEFF). SC 0x30 = security suite 0, authenticated and encrypted; other SC values
 * are refused. The tag is checked by node:crypto: a wrong key is a `DECRYPT` error, never garbage.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { DriverError } from '../errors.js';

export const SMARTY_AUTH_KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const TAG = 0xdb;
const SC_AUTH_ENC = 0x30;
const GCM_TAG_BYTES = 12;

export interface GgcFrame {
  readonly systemTitle: Buffer;
  readonly frameCounter: number;
  readonly securityControl: number;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

/** Parses a key given as 32 hex digits; undefined for anything else. */
export function parseKeyHex(hex: string): Buffer | undefined {
  return /^[0-9a-fA-F]{32}$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

/** Header length and total frame length of a frame starting at `b[0]`; `undefined` while incomplete. */
export function ggcFrameLength(b: Buffer): { total: number } | 'bad' | undefined {
  if (b.length < 1) return undefined;
  if (b[0] !== TAG) return 'bad';
  if (b.length < 2) return undefined;
  if (b[1] !== 8) return 'bad';
  if (b.length < 11) return undefined;
  const l0 = b[10] as number;
  let len: number;
  let lenBytes: number;
  if (l0 < 0x80) [len, lenBytes] = [l0, 1];
  else if (l0 === 0x81) {
    if (b.length < 12) return undefined;
    [len, lenBytes] = [b[11] as number, 2];
  } else if (l0 === 0x82) {
    if (b.length < 13) return undefined;
    [len, lenBytes] = [b.readUInt16BE(11), 3];
  } else return 'bad';
  if (len < 5 + GCM_TAG_BYTES) return 'bad';
  return { total: 10 + lenBytes + len };
}

export function parseGgcFrame(b: Buffer): { ok: true; frame: GgcFrame } | { ok: false; error: DriverError } {
  const bad = (message: string) => ({
    ok: false as const,
    error: new DriverError('BAD_FRAME', `encrypted P1 frame: ${message}`, { context: { bytes: b.length } }),
  });
  const l = ggcFrameLength(b);
  if (l === undefined) return bad('truncated header');
  if (l === 'bad') return bad('not a general-global-ciphering frame (DB 08 …)');
  if (b.length !== l.total) return bad(`length says ${l.total} bytes, got ${b.length}`);
  const head = (b[10] as number) < 0x80 ? 11 : (b[10] as number) === 0x81 ? 12 : 13;
  const sc = b[head] as number;
  if (sc !== SC_AUTH_ENC)
    return bad(
      `security control 0x${sc.toString(16)}: only 0x30 (authenticated and encrypted, suite 0) is supported`,
    );
  return {
    ok: true,
    frame: {
      systemTitle: b.subarray(2, 10),
      securityControl: sc,
      frameCounter: b.readUInt32BE(head + 1),
      ciphertext: b.subarray(head + 5, b.length - GCM_TAG_BYTES),
      tag: b.subarray(b.length - GCM_TAG_BYTES),
    },
  };
}

export function decryptGgcFrame(
  f: GgcFrame,
  key: Buffer,
  authKey: Buffer = SMARTY_AUTH_KEY,
): { ok: true; plaintext: Buffer } | { ok: false; error: DriverError } {
  const iv = Buffer.alloc(12);
  f.systemTitle.copy(iv, 0);
  iv.writeUInt32BE(f.frameCounter, 8);
  try {
    const d = createDecipheriv('aes-128-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
    d.setAAD(Buffer.concat([Buffer.from([f.securityControl]), authKey]));
    d.setAuthTag(f.tag);
    return { ok: true, plaintext: Buffer.concat([d.update(f.ciphertext), d.final()]) };
  } catch (err) {
    return {
      ok: false,
      error: new DriverError(
        'DECRYPT',
        'encrypted P1 frame failed authentication: wrong key (check `key:`, the 32 hex digits from the grid operator) or a corrupted frame',
        {
          cause: err,
          context: { systemTitle: f.systemTitle.toString('hex'), frameCounter: f.frameCounter },
        },
      ),
    };
  }
}

/** The meter's half (simulator): wraps a telegram into a Smarty frame. */
export function encryptGgcFrame(
  plaintext: Buffer,
  key: Buffer,
  systemTitle: Buffer,
  frameCounter: number,
  authKey: Buffer = SMARTY_AUTH_KEY,
): Buffer {
  const iv = Buffer.alloc(12);
  systemTitle.copy(iv, 0);
  iv.writeUInt32BE(frameCounter, 8);
  const c = createCipheriv('aes-128-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
  c.setAAD(Buffer.concat([Buffer.from([SC_AUTH_ENC]), authKey]));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  const tag = c.getAuthTag();
  const len = 5 + ct.length + tag.length;
  const head = Buffer.alloc(18);
  head[0] = TAG;
  head[1] = 8;
  systemTitle.copy(head, 2, 0, 8);
  head[10] = 0x82;
  head.writeUInt16BE(len, 11);
  head[13] = SC_AUTH_ENC;
  head.writeUInt32BE(frameCounter, 14);
  return Buffer.concat([head, ct, tag]);
}

/** Cuts a byte stream into general-global-ciphering frames (binary; no delimiters, a length field). */
export class GgcFramer {
  readonly stats = { frames: 0, skippedBytes: 0 };
  private buf = Buffer.alloc(0);
  constructor(private readonly maxBytes = 8192) {}
  reset(): void {
    this.buf = Buffer.alloc(0);
  }
  push(chunk: Buffer): Buffer[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const start = this.buf.indexOf(TAG);
      if (start < 0) {
        this.stats.skippedBytes += this.buf.length;
        this.buf = Buffer.alloc(0);
        return out;
      }
      this.stats.skippedBytes += start;
      this.buf = this.buf.subarray(start);
      const l = ggcFrameLength(this.buf);
      if (l === undefined) return out;
      if (l === 'bad' || l.total > this.maxBytes) {
        this.stats.skippedBytes++;
        this.buf = this.buf.subarray(1);
        continue;
      }
      if (this.buf.length < l.total) return out;
      out.push(Buffer.from(this.buf.subarray(0, l.total)));
      this.stats.frames++;
      this.buf = this.buf.subarray(l.total);
    }
  }
}
