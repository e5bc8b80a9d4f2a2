/**
 * Finding meters on an RS-485 bus: for each baud rate, probe each unit id with a short timeout (any answer,
 * even an exception, means a device is there), then poll every profile against the units that answered and
 * name the profiles whose identifying registers (voltages, frequency) read plausibly.
 */
import { valueToNumber } from '../../cloud-contract/sample.js';
import { builtinProfiles } from '../profiles/index.js';
import { isDriverError } from '../errors.js';
import { acquireBus, releaseBus, type ModbusTransport } from './bus.js';
import { createModbusMeter } from './meter.js';
import type { ModbusProfile } from './profile.js';

export interface ScanOptions {
  readonly port: string;
  readonly bauds: readonly number[];
  readonly units: readonly number[];
  readonly parity?: 'none' | 'even' | 'odd';
  /** Presence probe timeout per unit, ms (default 100). Identification uses 5× this. */
  readonly timeout?: number;
  readonly profiles?: Readonly<Record<string, ModbusProfile>>;
  /** Called with one line per baud rate as the scan advances. */
  readonly onProgress?: (line: string) => void;
}

export interface ScanFinding {
  readonly baud: number;
  readonly unit: number;
  /** Most likely profiles, best first; several when the register maps cannot be told apart. */
  readonly profiles: readonly string[];
  /** Identifying registers that read plausibly minus those that did not (of the best profile). */
  readonly score: number;
  /** A few values read with the best profile, for the installer to eyeball. */
  readonly values: Readonly<Record<string, number>>;
}

export interface ScanResult {
  readonly found: readonly ScanFinding[];
}

const plausible: Record<string, readonly [number, number]> = {
  voltage_l1_v: [150, 300],
  voltage_l2_v: [150, 300],
  voltage_l3_v: [150, 300],
  voltage_l1_l2_v: [260, 520],
  voltage_l2_l3_v: [260, 520],
  voltage_l3_l1_v: [260, 520],
  frequency_hz: [45, 65],
};

export async function scanModbusBus(opts: ScanOptions): Promise<ScanResult> {
  const profiles = opts.profiles ?? builtinProfiles;
  const timeout = opts.timeout ?? 100;
  const found: ScanFinding[] = [];
  const seen = new Set<number>();
  for (const baud of opts.bauds) {
    const transport: ModbusTransport = { kind: 'rtu', port: opts.port, baud, parity: opts.parity ?? 'none' };
    const present: number[] = [];
    const bus = acquireBus(transport);
    try {
      for (const unit of opts.units) {
        if (seen.has(unit)) continue;
        try {
          await bus.read({ unit, fn: 4, address: 0, count: 2, timeout });
          present.push(unit);
        } catch (err) {
          if (!isDriverError(err)) throw err;
          if (err.code === 'PORT_GONE' || err.code === 'PORT_OPEN_FAILED') throw err;
          if (err.code !== 'TIMEOUT') present.push(unit);
        }
      }
      for (const unit of present) {
        const finding = await identify(transport, unit, profiles, timeout * 5);
        found.push({ baud, ...finding });
        seen.add(unit);
      }
    } finally {
      await releaseBus(bus);
    }
    opts.onProgress?.(
      `${baud} baud: probed ${opts.units.length} unit ids, ` +
        (present.length === 0 ? 'no answer' : `found unit ${present.join(', ')}`),
    );
  }
  return { found };
}

async function identify(
  transport: ModbusTransport,
  unit: number,
  profiles: Readonly<Record<string, ModbusProfile>>,
  timeout: number,
): Promise<Omit<ScanFinding, 'baud'>> {
  const scored: { name: string; score: number; values: Record<string, number> }[] = [];
  for (const [name, profile] of Object.entries(profiles)) {
    const meter = createModbusMeter({ id: `scan-${unit}`, transport, unit, profile, timeout, retries: 0 });
    try {
      const r = await meter.read();
      let score = 0;
      const values: Record<string, number> = {};
      for (const reg of profile.registers) {
        const range = plausible[reg.channel];
        if (!range) continue;
        const v = r.values[reg.channel];
        const n = v ? valueToNumber(v) : NaN;
        if (n >= range[0] && n <= range[1]) {
          score++;
          values[reg.channel] = Math.round(n * 100) / 100;
        } else score--;
      }
      if (score > 0) scored.push({ name, score, values });
    } catch {
      // This profile's registers are not there: not this model.
    } finally {
      await meter.close();
    }
  }
  scored.sort((a, b) => b.score - a.score);
  const best = scored[0];
  if (!best) return { unit, profiles: [], score: 0, values: {} };
  return {
    unit,
    profiles: scored.filter((s) => s.score === best.score).map((s) => s.name),
    score: best.score,
    values: best.values,
  };
}
