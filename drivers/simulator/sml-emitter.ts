/**
 * The SML side of the simulator: an eHZ meter's info interface pushing a file every interval on a serial path
 * (9600 8N1), from a small seeded model (per-phase signed power, PV export at times, counters integrating it
 * exactly in 0.1 Wh). Faults: bad CRC, truncated files, noise between files, counter-only (no power, as a
 * meter before its PIN is entered) from file N on.
 */
import { applyFaults, startPushLoop } from './emitter-core.js';
import { seededRandom } from './random.js';
import { renderSmlFile, smlValues, type SmlSnapshot } from './sml-render.js';

export type SmlEmittedKind = 'good' | 'bad-crc' | 'truncated';

export interface SmlEmitterFaults {
  readonly badCrcEvery?: number;
  readonly truncateEvery?: number;
  readonly noiseEvery?: number;
  /** Send counters only (no power) from this file on — a meter locked again. */
  readonly counterOnlyFrom?: number;
}

export interface SmlEmitterOptions {
  readonly path: string;
  readonly intervalMs?: number;
  readonly seed?: number;
  readonly count?: number;
  /** Server id, hex (10 bytes like `0a01454d480000cacf7e`). */
  readonly serverId?: string;
  readonly faults?: SmlEmitterFaults;
  readonly onFile?: (sent: SmlEmittedFile) => void;
  readonly onPortError?: (err: Error) => void;
}

export interface SmlEmittedFile {
  readonly index: number;
  readonly kind: SmlEmittedKind;
  readonly bytes: Buffer;
  readonly snapshot: SmlSnapshot;
  readonly counterOnly: boolean;
}

export interface SmlEmitter {
  readonly filesSent: number;
  readonly goodSent: number;
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export const defaultSmlServerId = '0a01454d480000cacf7e';

/** A deterministic model: the same seed gives the same files. */
export function createSmlModel(seed: number, intervalMs: number): { next(): SmlSnapshot } {
  const rnd = seededRandom(seed);
  let imp = 123_456_789n;
  let exp = 5_432_100n;
  return {
    next() {
      const p = (base: number) => Math.round(base + (rnd() - 0.5) * 400);
      const powerW: [number, number, number] = [p(350), p(120), p(rnd() < 0.3 ? -900 : 200)];
      const total = powerW[0] + powerW[1] + powerW[2];
      // W × ms → 0.1 Wh: W·ms / 360 000.
      const d = BigInt(Math.round((Math.abs(total) * intervalMs) / 360_000));
      if (total >= 0) imp += d;
      else exp += d;
      return { importDeciWh: imp, exportDeciWh: exp, powerW };
    },
  };
}

export async function startSmlEmitter(opts: SmlEmitterOptions): Promise<SmlEmitter> {
  const intervalMs = opts.intervalMs ?? 1000;
  const faults = opts.faults ?? {};
  const model = createSmlModel(opts.seed ?? 1, intervalMs);
  const rnd = seededRandom((opts.seed ?? 1) ^ 0x5eed);
  const serverId = opts.serverId ?? defaultSmlServerId;
  const pending = new Map<number, { snapshot: SmlSnapshot; counterOnly: boolean }>();
  const loop = await startPushLoop({
    path: opts.path,
    settings: { baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1 },
    intervalMs,
    count: opts.count,
    onPortError: opts.onPortError,
    frame(index) {
      const snapshot = model.next();
      const counterOnly = faults.counterOnlyFrom !== undefined && index >= faults.counterOnlyFrom;
      pending.set(index, { snapshot, counterOnly });
      const f = applyFaults(
        renderSmlFile(serverId, smlValues(snapshot, { counterOnly }), index),
        index,
        {
          truncateEvery: faults.truncateEvery,
          corruptEvery: faults.badCrcEvery,
          noiseEvery: faults.noiseEvery,
          noiseBytes: 37,
        },
        {
          rnd,
          corrupt: (b) => {
            b[b.length - 1] = (b[b.length - 1] as number) ^ 0x5a;
            return b;
          },
        },
      );
      return f;
    },
    sent(index, kind, bytes) {
      const p = pending.get(index);
      pending.delete(index);
      if (p) opts.onFile?.({ index, kind: kind === 'corrupt' ? 'bad-crc' : kind, bytes, ...p });
    },
  });
  return {
    get filesSent() {
      return loop.sent;
    },
    get goodSent() {
      return loop.good;
    },
    done: loop.done,
    stop: () => loop.stop(),
  };
}
