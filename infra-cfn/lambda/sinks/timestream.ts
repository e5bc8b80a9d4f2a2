/**
 * Timestream for LiveAnalytics hot store (accounts that still have it): one multi-measure record per sample,
 * dimensions device and meter, measures = channel values (DOUBLE) + seq and flags (BIGINT), fixed Version so a
 * re-sent batch is an identical write, at most 100 records per WriteRecords. Records Timestream rejects are
 * counted and logged, not retried (they are data problems); throttling and server errors are retried.
 */
import {
  WriteRecordsCommand,
  type MeasureValue,
  type TimestreamWriteClient,
  type _Record as TsRecord,
} from '@aws-sdk/client-timestream-write';
import { setTimeout as delay } from 'node:timers/promises';
import { valueToNumber, type Sample } from '../../../cloud-contract/sample.js';
import { IngestError } from '../errors.js';
import { backoffMs, type SampleSink, type SinkResult, type VerifiedBatch } from './sink.js';

export interface TimestreamSinkOptions {
  readonly client: Pick<TimestreamWriteClient, 'send'>;
  readonly database: string;
  readonly table: string;
  readonly maxAttempts?: number;
}

/** WriteRecords takes at most 100 records. */
export const TIMESTREAM_CHUNK = 100;
export const MEASURE_NAME = 'sample';
/** Same version for every write of a sample: an identical re-write is accepted and changes nothing. */
const VERSION = 1;

export function sampleRecord(device: string, s: Sample): TsRecord {
  const measures: MeasureValue[] = Object.entries(s.values).map(([name, v]) => ({
    Name: name,
    Value: String(valueToNumber(v)),
    Type: 'DOUBLE',
  }));
  measures.push(
    { Name: 'seq', Value: String(s.seq), Type: 'BIGINT' },
    { Name: 'flags', Value: String(s.flags), Type: 'BIGINT' },
  );
  return {
    Dimensions: [
      { Name: 'device', Value: device },
      { Name: 'meter', Value: s.meter },
    ],
    MeasureName: MEASURE_NAME,
    MeasureValueType: 'MULTI',
    MeasureValues: measures,
    Time: String(s.ts),
    TimeUnit: 'MILLISECONDS',
    Version: VERSION,
  };
}

interface RejectedRecordsError {
  name: string;
  RejectedRecords?: { RecordIndex?: number; Reason?: string }[];
}

export function createTimestreamSink(opts: TimestreamSinkOptions): SampleSink {
  const maxAttempts = opts.maxAttempts ?? 6;
  return {
    kind: 'timestream-liveanalytics',
    async write(batches: readonly VerifiedBatch[]): Promise<SinkResult> {
      const records = batches.flatMap((b) => b.samples.map((s) => sampleRecord(b.device, s)));
      let rejected = 0;
      const rejections: string[] = [];
      for (let i = 0; i < records.length; i += TIMESTREAM_CHUNK) {
        const chunk = records.slice(i, i + TIMESTREAM_CHUNK);
        for (let attempt = 0; ; attempt++) {
          try {
            await opts.client.send(
              new WriteRecordsCommand({ DatabaseName: opts.database, TableName: opts.table, Records: chunk }),
            );
            break;
          } catch (err) {
            const e = err as RejectedRecordsError;
            if (e.name === 'RejectedRecordsException') {
              // The other records of the request were written; these ones never will be.
              const list = e.RejectedRecords ?? [];
              rejected += list.length;
              for (const r of list.slice(0, 5))
                rejections.push(`record ${i + (r.RecordIndex ?? 0)}: ${r.Reason ?? 'rejected'}`);
              break;
            }
            if (e.name === 'ValidationException') {
              rejected += chunk.length;
              rejections.push(`records ${i}..${i + chunk.length - 1}: ${(err as Error).message}`);
              break;
            }
            const retryable = e.name === 'ThrottlingException' || e.name === 'InternalServerException';
            if (!retryable || attempt + 1 >= maxAttempts)
              throw new IngestError(
                'SINK_UNAVAILABLE',
                `Timestream WriteRecords failed: ${e.name}`,
                { database: opts.database, table: opts.table },
                { cause: err },
              );
            await delay(backoffMs(attempt + 1));
          }
        }
      }
      return { written: records.length - rejected, rejected, rejections };
    },
  };
}
