/**
 * Deterministic sample sets that exercise every path of the batch document's encoder: decimal and raw float
 * columns, int deltas near the safe-integer limits, -0, NaN, a channel whose type or exponent changes,
 * custom (non-registry) channel names, missing channels, flag runs, interleaved meters, seq gaps and ts jumps.
 * The contract's golden test pins the encoded bytes of each set (wire format v1 must not drift).
 */
import { f32Value, f64Value, intValue, type Sample, type Value } from '../../cloud-contract/sample.js';
import { prng, threePhaseSeries } from './fixtures.js';

function mixed(seed: number, count: number): Sample[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const meters = ['main', 'flat-2', 'pv.roof', 'gas:1'];
  const out: Sample[] = [];
  let seq = 1 + Math.floor(rand() * 1000);
  let ts = Date.UTC(2025, 2, 30, 0, 59, 58);
  let counter = 2 ** 52 - 5000;
  for (let i = 0; i < count; i++) {
    const values: Record<string, Value> = {};
    const missing: string[] = [];
    const e = i > count / 2 ? -2 : -1; // voltage's exponent changes half-way: a second column
    values.voltage_l1_v =
      rand() < 0.9 ? f32Value(Math.round(2300 + rand() * 20) / 10, e + 1) : f32Value(rand());
    if (rand() < 0.8) values.current_l1_a = f32Value(rand() * 20);
    else missing.push('current_l1_a');
    values.power_w = i % 7 === 0 ? intValue(Math.round((rand() - 0.5) * 10_000)) : f32Value(-rand() * 3000);
    counter += Math.floor(rand() * 1000);
    values.energy_import_kwh = intValue(counter, -3);
    values.energy_export_kwh = intValue(-(2 ** 53 - 1) + Math.floor(rand() * 10), 0);
    values.frequency_hz = f64Value(pick([50, 49.99, 50.01, 0.1 + 0.2, -0, 1e-300, 123456.789]));
    if (rand() < 0.3) values.my_custom_reg = intValue(Math.floor(rand() * 65536), Math.floor(rand() * 5) - 2);
    if (rand() < 0.05) values.odd_float = f32Value(pick([-0, NaN, Infinity, -Infinity, 1.5]));
    if (rand() < 0.1) missing.push('gas_m3', 'x_custom_missing');
    const flags = rand() < 0.85 ? 0 : pick([1, 2, 6, 8, 16, 32, 0xffff]);
    const s: Sample = {
      seq,
      meter: pick(meters),
      ts,
      values,
      flags,
      ...(missing.length > 0 ? { missing } : rand() < 0.05 ? { missing: [] } : {}),
    };
    out.push(s);
    seq += rand() < 0.9 ? 1 : 1 + Math.floor(rand() * 100_000);
    ts += rand() < 0.95 ? 1000 + Math.floor(rand() * 7) - 3 : Math.floor(rand() * 2 ** 31) - 2 ** 30;
    if (ts < 0) ts = 5;
  }
  return out;
}

/** Named sets; each is a valid batch (strictly increasing seq). */
export function goldenSets(): [string, Sample[]][] {
  return [
    ['three-phase 600, meter precision', threePhaseSeries({ count: 600, seed: 3 })],
    ['three-phase 300, noisy float32', threePhaseSeries({ count: 300, seed: 4, precision: 'noisy' })],
    ['one sample', threePhaseSeries({ count: 1, seed: 5 })],
    ['two samples', threePhaseSeries({ count: 2, seed: 6, meter: 'x' })],
    ['mixed 400 (4 meters, custom channels, missing, type/exponent changes)', mixed(11, 400)],
    ['mixed 57', mixed(12, 57)],
    ['mixed 3', mixed(13, 3)],
  ];
}
