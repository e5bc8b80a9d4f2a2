/** Sample factories and small helpers shared by the buffer tests, the crash writer and the benchmark. */
import { f32Value, f64Value, intValue, QualityFlag, type SampleInput } from '../../cloud-contract/sample.js';
import type tap from 'tap';

/** tap's test object as handed to `t.test` callbacks. */
export type TapTest = Parameters<Parameters<typeof tap.test>[0]>[0];

export const T0 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

/** A typical 3-phase reading, distinct per `i` (values derive from `i`, so they can be checked later). */
export function sampleAt(i: number, meter = 'main', ts = T0 + i * 1000): SampleInput {
  return {
    meter,
    ts,
    flags: i % 7 === 0 ? QualityFlag.partial : 0,
    values: {
      energy_import_kwh: intValue(12_345_678 + i, -3),
      power_w: intValue(1500 + (i % 1000)),
      voltage_l1_v: f32Value(230 + (i % 10) / 10),
      voltage_l2_v: f32Value(231.5),
      voltage_l3_v: f32Value(229.75),
      current_l1_a: f32Value(6.5),
      frequency_hz: f64Value(50 + (i % 100) / 1000),
    },
    ...(i % 7 === 0 ? { missing: ['power_factor'] } : {}),
  };
}

export function samplesFrom(start: number, n: number, meter = 'main'): SampleInput[] {
  return Array.from({ length: n }, (_, k) => sampleAt(start + k, meter));
}
