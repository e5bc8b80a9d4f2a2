/** Test data for the infra tests: samples in the shape the agent produces, and moto read-back helpers. */
import { f32Value, intValue, type Sample } from '../../cloud-contract/sample.js';

/** `count` samples alternating between two meters, 1 s apart, seq from `firstSeq`. */
export function makeSamples(count: number, firstSeq = 1, t0 = Date.UTC(2025, 0, 15, 12)): Sample[] {
  return Array.from({ length: count }, (_, i) => {
    const meter = i % 2 === 0 ? 'main' : 'pv';
    const values: Sample['values'] = {
      power_w: f32Value(1000 + i * 1.5),
      energy_import_kwh: intValue(12_345_678 + i, -3),
      voltage_l1_v: intValue(2301 + (i % 7), -1),
    };
    return {
      meter,
      ts: t0 + i * 1000,
      seq: firstSeq + i,
      flags: i % 10 === 3 ? 1 : 0,
      values,
      ...(i % 10 === 3 ? { missing: ['current_l1_a'] } : {}),
    };
  });
}

interface MotoTimestreamTable {
  db_name: string;
  name: string;
  records: {
    Dimensions: { Name: string; Value: string }[];
    MeasureName: string;
    Time: string;
    Version?: number;
    MeasureValues: { Name: string; Value: string; Type: string }[];
  }[];
}

/**
 * Timestream records as moto keeps them (it appends every write; the real service upserts by dimensions +
 * measure name + time, and treats an identical re-write with the same version as a no-op).
 */
export async function motoTimestreamRecords(
  endpoint: string,
  db: string,
  table: string,
): Promise<MotoTimestreamTable['records']> {
  const res = await fetch(`${endpoint}/moto-api/data.json`);
  const data = (await res.json()) as { timestreamwrite?: { TimestreamTable?: MotoTimestreamTable[] } };
  return (
    data.timestreamwrite?.TimestreamTable?.find((x) => x.db_name === db && x.name === table)?.records ?? []
  );
}
