/**
 * What every simulated push meter (DSMR P1, SML, IEC 62056-21 mode D) shares: a serial port it writes a frame
 * to every interval (reopened when it goes away, as a meter keeps sending whether anyone listens or not), the
 * frame faults (truncated, corrupted check value, noise before the frame), a stall, a count, and stop.
 */
import { SerialPort } from 'serialport';
import type { P1LineSettings } from '../dsmr/port.js';

export type FrameKind = 'good' | 'corrupt' | 'truncated';

export interface FrameFaults {
  /** Every Nth frame is cut off at 60 %. */
  readonly truncateEvery?: number | undefined;
  /** Every Nth frame (not truncated) gets its check value corrupted by `corrupt`. */
  readonly corruptEvery?: number | undefined;
  /** Every Nth frame is preceded by `noiseBytes` random bytes. */
  readonly noiseEvery?: number | undefined;
  readonly noiseBytes?: number | undefined;
}

export const every = (n: number | undefined, i: number): boolean => n !== undefined && n > 0 && i % n === 0;

/** Applies the faults due for frame `index`; `encode` runs after truncation/corruption, before the noise. */
export function applyFaults(
  bytes: Buffer,
  index: number,
  faults: FrameFaults,
  opts: { corrupt?: (b: Buffer) => Buffer; encode?: (b: Buffer) => Buffer; rnd: () => number },
): { bytes: Buffer; kind: FrameKind; noise: number } {
  let out = bytes;
  let kind: FrameKind = 'good';
  if (every(faults.truncateEvery, index)) {
    kind = 'truncated';
    out = out.subarray(0, Math.floor(out.length * 0.6));
  } else if (opts.corrupt && every(faults.corruptEvery, index)) {
    kind = 'corrupt';
    out = opts.corrupt(Buffer.from(out));
  }
  if (opts.encode) out = opts.encode(out);
  let noise = 0;
  if (every(faults.noiseEvery, index)) {
    noise = faults.noiseBytes ?? 40;
    const junk = Buffer.from(Array.from({ length: noise }, () => Math.floor(opts.rnd() * 256)));
    out = Buffer.concat([junk, out]);
  }
  return { bytes: out, kind, noise };
}

export function openSimPort(path: string, settings: P1LineSettings): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, ...settings, autoOpen: false });
    port.open((err) => (err ? reject(err) : resolve(port)));
  });
}

export function writePort(port: SerialPort, bytes: Buffer): Promise<void> {
  // No port.drain(): tcdrain() blocks a libuv pool thread until the far end reads, and these ports have no
  // flow control to wait for anyway. The write callback is enough to pace one frame per interval.
  return new Promise((resolve, reject) => port.write(bytes, (err) => (err ? reject(err) : resolve())));
}

export interface PushLoopOptions {
  readonly path: string;
  readonly settings: P1LineSettings;
  readonly intervalMs: number;
  readonly count?: number | undefined;
  /** The bytes of frame `index` (1-based) and its kind; called only while not stalled. */
  frame(index: number): { bytes: Buffer; kind: FrameKind };
  /** After a successful write of frame `index`. */
  sent(index: number, kind: FrameKind, bytes: Buffer): void;
  /** Stop sending after this many frames (a hung meter; the port stays open). */
  readonly stallAfter?: number | undefined;
  readonly onPortError?: ((err: Error) => void) | undefined;
}

export interface PushLoop {
  readonly sent: number;
  readonly good: number;
  stall(): void;
  resume(): void;
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export async function startPushLoop(opts: PushLoopOptions): Promise<PushLoop> {
  let port: SerialPort | undefined;
  const watch = (p: SerialPort) =>
    p
      .on('close', () => {
        if (port === p) port = undefined;
      })
      .on('error', (err) => opts.onPortError?.(err));
  port = watch(await openSimPort(opts.path, opts.settings));
  let sent = 0;
  let good = 0;
  let stalled = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));

  const tick = async () => {
    if (stopped) return;
    if (!port) {
      try {
        port = watch(await openSimPort(opts.path, opts.settings));
      } catch (err) {
        opts.onPortError?.(err as Error);
      }
    }
    if (port && !stalled) {
      const index = sent + 1;
      const f = opts.frame(index);
      try {
        await writePort(port, f.bytes);
        sent = index;
        if (f.kind === 'good') good++;
        opts.sent(index, f.kind, f.bytes);
        if (opts.stallAfter !== undefined && sent >= opts.stallAfter) stalled = true;
      } catch (err) {
        opts.onPortError?.(err as Error);
      }
    }
    if (opts.count !== undefined && sent >= opts.count) {
      stopped = true;
      finish();
      return;
    }
    if (!stopped) timer = setTimeout(() => void tick(), opts.intervalMs);
  };
  void tick();

  return {
    get sent() {
      return sent;
    },
    get good() {
      return good;
    },
    stall: () => void (stalled = true),
    resume: () => void (stalled = false),
    done,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      finish();
      const p = port;
      port = undefined;
      if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
    },
  };
}
