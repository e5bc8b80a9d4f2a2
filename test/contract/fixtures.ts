/**
 * Test data for the contract tests: a seeded PRNG, a realistic 3-phase meter series, and a device identity
 * (P-256 key + certificate from the harness PKI).
 */
import { makeCa, issueCert, type Issued } from '../harness/pki.js';
import { seededRandom } from '../../drivers/simulator/random.js';

/** The simulator's seeded PRNG: the same seed gives the same cases on every run. */
export const prng = seededRandom;
import { f32Value, intValue, type Sample, type Value } from '../../cloud-contract/sample.js';

export function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

export interface SeriesOptions {
  readonly meter?: string;
  readonly count: number;
  readonly startTs?: number;
  readonly startSeq?: number;
  readonly seed?: number;
  /**
   * `meter`: values at the meter's display resolution (0.1 V, 1 mA, 0.1 W, ...), as real meters report
   * them in float32 registers; `noisy`: full float32 precision noise (worst case for compression).
   */
  readonly precision?: 'meter' | 'noisy';
  /** Timestamp jitter of the poll loop, ms (default ±3). */
  readonly jitterMs?: number;
}

const DAY = 86_400_000;

/**
 * A week-like 1 Hz series of a 3-phase meter with 20 channels: voltages ~230 V with small noise, currents
 * following a daily load curve with random appliance steps, powers = V·I·pf, frequency ~50 Hz, energy
 * counters (int Wh, exponent −3 → kWh) rising with power.
 */
export function threePhaseSeries(opts: SeriesOptions): Sample[] {
  const rand = prng(opts.seed ?? 1);
  const n = gaussian(rand);
  const meter = opts.meter ?? 'main';
  const jitter = opts.jitterMs ?? 3;
  const q = (x: number, step: number): number =>
    opts.precision === 'noisy' ? Math.fround(x) : Math.fround(Math.round(x / step) * step);
  let ts = opts.startTs ?? Date.UTC(2025, 0, 6);
  let seq = opts.startSeq ?? 1;
  let importWh = 12_345_678;
  let exportWh = 1_234_567;
  let reactiveWh = 345_678;
  const load = [0.4, 0.3, 0.5];
  const out: Sample[] = [];
  for (let i = 0; i < opts.count; i++) {
    const dayFrac = (ts % DAY) / DAY;
    const daily = 0.6 + 0.4 * Math.sin(2 * Math.PI * (dayFrac - 0.3));
    for (let p = 0; p < 3; p++) {
      if (rand() < 0.002) load[p] = Math.max(0.05, Math.min(16, (load[p] as number) + (rand() - 0.4) * 6));
    }
    const v = [0, 1, 2].map((p) => 230 + 2 * Math.sin(2 * Math.PI * dayFrac + p) + 0.3 * n());
    const cur = [0, 1, 2].map((p) => Math.max(0, (load[p] as number) * daily + 0.01 * n()));
    const pf = [0, 1, 2].map(() => 0.95 + 0.01 * n());
    const pw = [0, 1, 2].map((p) => (v[p] as number) * (cur[p] as number) * (pf[p] as number));
    const ptot = pw.reduce((a, b) => a + b, 0);
    importWh += ptot / 3600;
    if (rand() < 0.01) exportWh += 1;
    reactiveWh += ptot / 3600 / 3;
    const values: Record<string, Value> = {};
    for (let p = 0; p < 3; p++) {
      values[`voltage_l${p + 1}_v`] = f32Value(q(v[p] as number, 0.1));
      values[`current_l${p + 1}_a`] = f32Value(q(cur[p] as number, 0.001));
      values[`power_l${p + 1}_w`] = f32Value(q(pw[p] as number, 0.1));
      values[`power_factor_l${p + 1}`] = f32Value(q(pf[p] as number, 0.001));
    }
    values.power_w = f32Value(q(ptot, 0.1));
    values.power_factor = f32Value(q((pf[0]! + pf[1]! + pf[2]!) / 3, 0.001));
    values.frequency_hz = f32Value(q(50 + 0.02 * n(), 0.01));
    values.reactive_power_var = f32Value(q(ptot * 0.33, 0.1));
    values.apparent_power_va = f32Value(q(ptot * 1.05, 0.1));
    values.current_n_a = f32Value(q(Math.abs(cur[0]! - cur[1]!) * 0.5, 0.001));
    values.energy_import_kwh = intValue(Math.floor(importWh), -3);
    values.energy_export_kwh = intValue(exportWh, -3);
    values.energy_reactive_import_kvarh = intValue(Math.floor(reactiveWh), -3);
    values.energy_total_kwh = intValue(Math.floor(importWh) + exportWh, -3);
    out.push({ meter, ts, seq, values, flags: 0 });
    seq++;
    ts += 1000 + Math.round((rand() * 2 - 1) * jitter);
  }
  return out;
}

export interface Device {
  readonly thing: string;
  readonly issued: Issued;
  readonly other: Issued;
}

/** A device certificate and key, plus a second certificate from the same CA (the "wrong" one). */
export async function makeDevice(thing = 'apt-12-meterbox'): Promise<Device> {
  const ca = await makeCa();
  return {
    thing,
    issued: await issueCert(ca, { cn: thing }),
    other: await issueCert(ca, { cn: 'other-box' }),
  };
}
