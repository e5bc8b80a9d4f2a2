/**
 * The SML side of the simulator: an eHZ meter's info interface pushing a file every interval on a serial path
 * (9600 8N1), from a small seeded model (per-phase signed power, PV export at times, counters integrating it
 * exactly in 0.1 Wh). Faults: bad CRC, truncated files, noise between files, counter-only (no power, as a
 * meter before its PIN is entered) from file N on.
 */
import { SerialPort } from 'serialport';
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
  const open = () =>
    new Promise<SerialPort>((resolve, reject) => {
      const p = new SerialPort({ path: opts.path, baudRate: 9600, autoOpen: false });
      p.open((err) => (err ? reject(err) : resolve(p)));
    });
  let port: SerialPort | undefined = await open();
  port.on('error', (err) => opts.onPortError?.(err));
  let sent = 0;
  let good = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const every = (n: number | undefined, i: number) => n !== undefined && n > 0 && i % n === 0;

  const tick = async () => {
    if (stopped || !port) return;
    const index = sent + 1;
    const snapshot = model.next();
    const counterOnly = faults.counterOnlyFrom !== undefined && index >= faults.counterOnlyFrom;
    let bytes = renderSmlFile(serverId, smlValues(snapshot, { counterOnly }), index);
    let kind: SmlEmittedKind = 'good';
    if (every(faults.truncateEvery, index)) {
      kind = 'truncated';
      bytes = bytes.subarray(0, Math.floor(bytes.length * 0.6));
    } else if (every(faults.badCrcEvery, index)) {
      kind = 'bad-crc';
      bytes = Buffer.from(bytes);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x5a;
    }
    if (every(faults.noiseEvery, index)) {
      const noise = Buffer.from(Array.from({ length: 37 }, () => Math.floor(rnd() * 256)));
      bytes = Buffer.concat([noise, bytes]);
    }
    const p = port;
    try {
      await new Promise<void>((resolve, reject) => p.write(bytes, (err) => (err ? reject(err) : resolve())));
      sent = index;
      if (kind === 'good') good++;
      opts.onFile?.({ index, kind, bytes, snapshot, counterOnly });
    } catch (err) {
      opts.onPortError?.(err as Error);
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
    get filesSent() {
      return sent;
    },
    get goodSent() {
      return good;
    },
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
