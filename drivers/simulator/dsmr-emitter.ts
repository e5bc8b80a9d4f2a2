/**
 * The DSMR P1 side of the simulator: writes telegrams of an evolving apartment (dsmr-model.ts) on a serial
 * path at an interval, like the P1 port of a smart meter, with optional faults: corrupt CRCs, truncated
 * telegrams, garbage between telegrams, and stalls. When the port goes away (adapter unplugged) it keeps
 * trying to reopen it, as a meter keeps sending whether anyone listens or not.
 */
import { SerialPort } from 'serialport';
import { encryptGgcFrame } from '../dsmr/decrypt.js';
import { lineSettings } from '../dsmr/meter.js';
import { DsmrApartmentModel, seededRandom, type DsmrSnapshot } from './dsmr-model.js';
import { renderTelegram, type DsmrFlavour } from './dsmr-render.js';

export type EmittedKind = 'good' | 'corrupt-crc' | 'truncated';

export interface DsmrEmitterFaults {
  /** Every Nth telegram gets a wrong CRC (not for 2.2, which has none). */
  readonly corruptCrcEvery?: number;
  /** Every Nth telegram is cut off before its footer. */
  readonly truncateEvery?: number;
  /** Every Nth telegram is preceded by random bytes. */
  readonly garbageEvery?: number;
  /** Number of garbage bytes (default 40). */
  readonly garbageBytes?: number;
  /** Stop sending after this many telegrams (the meter hangs; the port stays open). */
  readonly stallAfter?: number;
}

export interface DsmrEmitterOptions {
  /** Serial path to write to (one end of a pty pair in tests, a USB–serial adapter on a bench). */
  readonly path: string;
  readonly flavour?: DsmrFlavour;
  /** Real time between telegrams, ms (default: 1 s for DSMR 5/e-MUCS, 10 s for 2.2/4, as the specs say). */
  readonly intervalMs?: number;
  /** Model time per telegram, ms (default = intervalMs; larger runs the apartment faster than real time). */
  readonly stepMs?: number;
  readonly seed?: number;
  /** Model start time (default now). */
  readonly startTime?: number;
  /** Stop after this many telegrams (default: run until stop()). */
  readonly count?: number;
  readonly serial?: string;
  readonly faults?: DsmrEmitterFaults;
  /** Send each telegram AES-128-GCM encrypted in a DLMS general-global-ciphering frame (Smarty), with this key. */
  readonly encryptKey?: Buffer;
  /** System title of encrypted frames (8 bytes; default `SIMSMRTY`). */
  readonly systemTitle?: Buffer;
  /** Called after each write with what was sent. */
  readonly onTelegram?: (sent: EmittedTelegram) => void;
  /** Called when the port cannot be opened or is lost (the emitter retries on its own). */
  readonly onPortError?: (err: Error) => void;
}

export interface EmittedTelegram {
  readonly index: number;
  readonly kind: EmittedKind;
  readonly bytes: Buffer;
  readonly snapshot: DsmrSnapshot;
  readonly garbage: number;
}

export interface DsmrEmitter {
  /** Telegrams written so far (all kinds). */
  readonly telegramsSent: number;
  /** Telegrams written with a valid CRC. */
  readonly goodSent: number;
  readonly model: DsmrApartmentModel;
  /** Stops sending until `resume()` (a hung meter). */
  stall(): void;
  resume(): void;
  /** Resolves when `count` telegrams were sent (never, without `count`) or after stop(). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

function openPort(path: string, flavour: DsmrFlavour): Promise<SerialPort> {
  const version = flavour === '2.2' ? '2.2' : '5';
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, ...lineSettings({ version }), autoOpen: false });
    port.open((err) => (err ? reject(err) : resolve(port)));
  });
}

function write(port: SerialPort, bytes: Buffer): Promise<void> {
  // No port.drain(): tcdrain() blocks a libuv pool thread until the far end reads, and a P1 port has no
  // flow control to wait for anyway. The write callback is enough to pace one telegram per interval.
  return new Promise((resolve, reject) => port.write(bytes, (err) => (err ? reject(err) : resolve())));
}

export async function startDsmrEmitter(opts: DsmrEmitterOptions): Promise<DsmrEmitter> {
  const flavour = opts.flavour ?? '5';
  const intervalMs = opts.intervalMs ?? (flavour === '5' || flavour === 'e-mucs' ? 1000 : 10_000);
  const stepMs = opts.stepMs ?? intervalMs;
  const faults = opts.faults ?? {};
  const rnd = seededRandom((opts.seed ?? 1) ^ 0x5eed);
  const model = new DsmrApartmentModel({
    seed: opts.seed ?? 1,
    ...(opts.startTime === undefined ? {} : { startTime: opts.startTime }),
    // DSMR 4 gas meters report hourly, DSMR 5 / e-MUCS every 5 minutes.
    gasIntervalMs: flavour === '5' || flavour === 'e-mucs' ? 300_000 : 3_600_000,
  });
  let port: SerialPort | undefined = await openPort(opts.path, flavour);
  let sent = 0;
  let good = 0;
  let stalled = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const every = (n: number | undefined, i: number) => n !== undefined && n > 0 && i % n === 0;

  const watch = (p: SerialPort) =>
    p
      .on('close', () => {
        if (port === p) port = undefined;
      })
      .on('error', (err) => opts.onPortError?.(err));
  watch(port);

  const tick = async () => {
    if (stopped) return;
    if (!port) {
      try {
        port = watch(await openPort(opts.path, flavour));
      } catch (err) {
        opts.onPortError?.(err as Error);
      }
    }
    if (port && !stalled) {
      const index = sent + 1;
      const snapshot = model.snapshot();
      let bytes = renderTelegram(flavour, snapshot, opts.serial === undefined ? {} : { serial: opts.serial });
      let kind: EmittedKind = 'good';
      if (every(faults.truncateEvery, index)) {
        kind = 'truncated';
        bytes = bytes.subarray(0, Math.floor(bytes.length * 0.6));
      } else if (flavour !== '2.2' && every(faults.corruptCrcEvery, index)) {
        kind = 'corrupt-crc';
        bytes = Buffer.from(bytes);
        // Swap one CRC digit for another hex digit: still a well-formed footer, just wrong.
        const at = bytes.length - 3;
        bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
      }
      if (opts.encryptKey) {
        const title = opts.systemTitle ?? Buffer.from('SIMSMRTY');
        bytes = encryptGgcFrame(bytes, opts.encryptKey, title, 0x1000_0000 + index);
      }
      let garbage = 0;
      if (every(faults.garbageEvery, index)) {
        garbage = faults.garbageBytes ?? 40;
        const noise = Buffer.from(Array.from({ length: garbage }, () => Math.floor(rnd() * 256)));
        bytes = Buffer.concat([noise, bytes]);
      }
      try {
        await write(port, bytes);
        sent = index;
        if (kind === 'good') good++;
        opts.onTelegram?.({ index, kind, bytes, snapshot, garbage });
        if (faults.stallAfter !== undefined && sent >= faults.stallAfter) stalled = true;
      } catch (err) {
        opts.onPortError?.(err as Error);
      }
      model.step(stepMs);
    }
    if (opts.count !== undefined && sent >= opts.count) {
      stopped = true;
      finish();
      return;
    }
    if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
  };
  void tick();

  return {
    get telegramsSent() {
      return sent;
    },
    get goodSent() {
      return good;
    },
    model,
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
