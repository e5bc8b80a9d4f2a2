/**
 * The lake's row: one per sample, exactly the columns of the Glue table `samples` in
 * infra-cfn/templates/lake.yaml (test/infra/transform.test.ts holds the two together). Timestamps are epoch
 * milliseconds, which Firehose's HiveJsonSerDe reads with TimestampFormats ["millis"].
 */
import type { BatchV1 } from '../../cloud-contract/index.js';
import { valueToNumber } from '../../cloud-contract/sample.js';

export interface SampleRow {
  device: string;
  meter: string;
  seq: number;
  ts: number;
  flags: number;
  missing: string[];
  readings: Record<string, number>;
  kid: string;
  received_at: number;
}

export function sampleRows(batch: BatchV1, kid: string, receivedAt: number): SampleRow[] {
  return batch.samples.map((s) => {
    const readings: Record<string, number> = {};
    for (const [name, v] of Object.entries(s.values)) readings[name] = valueToNumber(v);
    return {
      device: batch.device,
      meter: s.meter,
      seq: s.seq,
      ts: s.ts,
      flags: s.flags,
      missing: [...(s.missing ?? [])],
      readings,
      kid,
      received_at: receivedAt,
    };
  });
}

/**
 * UTC date of the batch's first sample. The lake's `dt` partition is each row's own sample date instead
 * (lake.ts `rowDate`, computed by Firehose with `DT_QUERY`); a batch across midnight spans two partitions.
 */
export function partitionDate(batch: BatchV1, fallbackMs: number): string {
  const ts = batch.samples[0]?.ts ?? fallbackMs;
  return new Date(ts).toISOString().slice(0, 10);
}
