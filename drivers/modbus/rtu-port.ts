/**
 * RTU framing for modbus-serial over any byte link. modbus-serial's own buffered RTU port skips answers from
 * another unit id (they surface as a timeout) and cannot say why a frame was bad; this port finds the answer
 * frame in the byte stream (tolerating garbage before it), and records *why* a frame is suspect
 * (`lastIssue`) so the adapter can map it to a `DriverError` code without reading message text.
 */
import { EventEmitter } from 'node:events';
import { crcOk } from './crc.js';
import type { ByteLink } from './link.js';

export type FrameIssue = 'crc' | 'wrong-unit';

export class RtuFramePort extends EventEmitter {
  /** Why the last emitted frame will be rejected, if the port knows. Reset by each request. */
  lastIssue: FrameIssue | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private pending: { unit: number; fn: number; length: number } | undefined;
  private silence: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: ByteLink,
    /** Quiet time after the last byte that ends a frame which never became valid. */
    private readonly frameGapMs: number,
  ) {
    super();
    link.on('data', (d: Buffer) => this.onData(d));
    link.on('error', (e: Error) => this.emit('error', e));
    link.on('close', () => {
      this.clearSilence();
      this.emit('close');
    });
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  open(cb: (err: Error | null) => void): void {
    this.link.open().then(
      () => cb(null),
      (err: Error) => cb(err),
    );
  }

  close(cb?: () => void): void {
    this.clearSilence();
    void this.link.close().then(() => cb?.());
  }

  write(req: Buffer): void {
    const unit = req[0]!;
    const fn = req[1]!;
    const length = fn === 3 || fn === 4 ? 5 + 2 * req.readUInt16BE(4) : 8;
    // Bytes still in the buffer belong to an earlier, abandoned exchange.
    this.buf = Buffer.alloc(0);
    this.lastIssue = undefined;
    this.pending = { unit, fn, length };
    this.link.write(req);
  }

  private clearSilence(): void {
    if (this.silence) clearTimeout(this.silence);
    this.silence = undefined;
  }

  private onData(d: Buffer): void {
    if (!this.pending) return;
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const { unit, fn, length } = this.pending;
    for (let i = 0; i + 5 <= this.buf.length; i++) {
      const code = this.buf[i + 1]!;
      const len = code === fn ? length : code === (fn | 0x80) ? 5 : 0;
      if (len === 0 || i + len > this.buf.length) continue;
      const frame = this.buf.subarray(i, i + len);
      if (!crcOk(frame)) continue;
      if (frame[0] !== unit) this.lastIssue = 'wrong-unit';
      this.finish(frame);
      return;
    }
    // No valid frame yet: wait for more bytes, but not forever.
    this.clearSilence();
    this.silence = setTimeout(() => {
      if (!this.pending || this.buf.length === 0) return;
      this.lastIssue = 'crc';
      const frame =
        this.buf.length >= 5
          ? this.buf.subarray(0, Math.max(5, Math.min(length, this.buf.length)))
          : this.buf;
      this.finish(frame);
    }, this.frameGapMs);
  }

  private finish(frame: Buffer): void {
    this.clearSilence();
    this.pending = undefined;
    this.buf = Buffer.alloc(0);
    this.emit('data', Buffer.from(frame));
  }
}
