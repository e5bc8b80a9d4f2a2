/**
 * The DSMR P1 side of the simulator: writes telegrams of an evolving apartment (dsmr-model.ts) on a serial
 * path at an interval, like the P1 port of a smart meter, with optional faults: corrupt CRCs, truncated
 * telegrams, garbage between telegrams, and stalls. When the port goes away (adapter unplugged) it keeps
 * trying to reopen it, as a meter keeps sending whether anyone listens or not.
 */
import { encryptGgcFrame } from '../dsmr/decrypt.js';
import { lineSettings } from '../dsmr/meter.js';
import { applyFaults, startPushLoop } from './emitter-core.js';
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
  const pending = new Map<number, { snapshot: DsmrSnapshot; garbage: number }>();
  const loop = await startPushLoop({
    path: opts.path,
    settings: lineSettings({ version: flavour === '2.2' ? '2.2' : '5' }),
    intervalMs,
    count: opts.count,
    stallAfter: faults.stallAfter,
    onPortError: opts.onPortError,
    frame(index) {
      const snapshot = model.snapshot();
      const bytes = renderTelegram(
        flavour,
        snapshot,
        opts.serial === undefined ? {} : { serial: opts.serial },
      );
      const f = applyFaults(
        bytes,
        index,
        {
          truncateEvery: faults.truncateEvery,
          // DSMR 2.2 has no CRC to corrupt.
          corruptEvery: flavour === '2.2' ? undefined : faults.corruptCrcEvery,
          noiseEvery: faults.garbageEvery,
          noiseBytes: faults.garbageBytes,
        },
        {
          rnd,
          corrupt: (b) => {
            // Swap one CRC digit for another hex digit: still a well-formed footer, just wrong.
            const at = b.length - 3;
            b[at] = b[at] === 0x30 ? 0x31 : 0x30;
            return b;
          },
          ...(opts.encryptKey
            ? {
                encode: (b: Buffer) =>
                  encryptGgcFrame(
                    b,
                    opts.encryptKey as Buffer,
                    opts.systemTitle ?? Buffer.from('SIMSMRTY'),
                    0x1000_0000 + index,
                  ),
              }
            : {}),
        },
      );
      pending.set(index, { snapshot, garbage: f.noise });
      model.step(stepMs);
      return f;
    },
    sent(index, kind, bytes) {
      const p = pending.get(index);
      pending.delete(index);
      if (p) opts.onTelegram?.({ index, kind: kind === 'corrupt' ? 'corrupt-crc' : kind, bytes, ...p });
    },
  });

  return {
    get telegramsSent() {
      return loop.sent;
    },
    get goodSent() {
      return loop.good;
    },
    model,
    stall: () => loop.stall(),
    resume: () => loop.resume(),
    done: loop.done,
    stop: () => loop.stop(),
  };
}
