/**
 * The lake hand-off of the ingest Lambda: verified batches → Firehose Direct PUT, in two streams.
 *
 * - **Rows** (`LAKE_DELIVERY_STREAM`): one JSON row per sample (rows.ts, the Glue table's columns), packed
 *   newline-delimited into Firehose records of at most `MAX_ROWS_PER_RECORD` rows. Firehose de-aggregates
 *   them (its JSON multi-record de-aggregation takes at most 500 objects per record), derives the `dt`
 *   partition from each row with `DT_QUERY` (jq 1.6), and converts them to Parquet against the Glue table.
 *   No Lambda sits inside Firehose any more, so no response can outgrow Lambda's 6 MB limit.
 * - **Archive** (`ARCHIVE_DELIVERY_STREAM`): each accepted batch exactly as IoT Core delivered it — the
 *   rule envelope (COSE bytes in base64 + the authenticated thing, principal, receive time and topic) as one
 *   JSON line. Firehose GZIPs them into `raw/dt=<arrival date>/`; archive.ts reads them back.
 *
 * Every PutRecordBatch call stays within 500 records and 4 MiB, every record within 1,000 KiB. Records
 * Firehose did not take (FailedPutCount) are sent again with backoff; when they still fail, `deliver`
 * throws a retryable `LAKE_UNAVAILABLE`, and the ingest Lambda hands the Kinesis record back for retry.
 * Nothing is ever written off; a retried batch repeats rows, which the lake's queries deduplicate.
 */
import { PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { BatchV1 } from '../../cloud-contract/index.js';
import { buildRuleEnvelope, type RuleEnvelope } from './envelope.js';
import { IngestError } from './errors.js';
import { sampleRows } from './rows.js';
import { backoffMs } from './sinks/sink.js';

/** PutRecordBatch: at most 500 records per call. */
export const FIREHOSE_MAX_RECORDS_PER_CALL = 500;
/** PutRecordBatch: at most 4 MiB of data per call. */
export const FIREHOSE_MAX_BYTES_PER_CALL = 4 * 1024 * 1024;
/** One Firehose record: at most 1,000 KiB before base64. */
export const FIREHOSE_MAX_RECORD_BYTES = 1_000 * 1024;
/** Firehose's JSON multi-record de-aggregation splits at most 500 objects out of one record. */
export const MAX_ROWS_PER_RECORD = 500;

/**
 * The `dt` partition of a row: the UTC date of its own sample time (`ts`, epoch ms). This exact text is the
 * lake stream's MetadataExtractionQuery in lake.yaml (test/infra/lake.test.ts runs it in jq 1.6, the
 * version Firehose runs, against real rows).
 */
export const DT_QUERY = '{dt: (.ts / 1000 | floor | strftime("%Y-%m-%d"))}';

/** `DT_QUERY` in TypeScript: what Firehose computes for a row with this `ts`. */
export function rowDate(ts: number): string {
  return new Date(Math.floor(ts / 1000) * 1000).toISOString().slice(0, 10);
}

/** A batch that passed verification, with what the lake and the archive keep of it. */
export interface AcceptedBatch {
  readonly envelope: RuleEnvelope;
  readonly batch: BatchV1;
  readonly kid: string;
}

/** Newline-delimited JSON rows, at most `MAX_ROWS_PER_RECORD` rows and 1,000 KiB per record. */
export function packRows(rows: readonly object[]): Buffer[] {
  const records: Buffer[] = [];
  let lines: Buffer[] = [];
  let bytes = 0;
  const close = () => {
    if (lines.length > 0) records.push(Buffer.concat(lines, bytes));
    lines = [];
    bytes = 0;
  };
  for (const row of rows) {
    const line = Buffer.from(JSON.stringify(row) + '\n');
    if (line.length > FIREHOSE_MAX_RECORD_BYTES)
      throw new IngestError('LAKE_REJECTED', `one row is ${line.length} bytes`, {}, { retryable: false });
    if (lines.length === MAX_ROWS_PER_RECORD || bytes + line.length > FIREHOSE_MAX_RECORD_BYTES) close();
    lines.push(line);
    bytes += line.length;
  }
  close();
  return records;
}

/** The Firehose records of one accepted batch's rows. */
export function lakeRecords(a: AcceptedBatch): Buffer[] {
  return packRows(sampleRows(a.batch, a.kid, a.envelope.receivedAt));
}

/** The archive line of one accepted batch: the rule envelope as IoT Core built it, newline-terminated. */
export function archiveLine(envelope: RuleEnvelope): Buffer {
  return Buffer.concat([buildRuleEnvelope(envelope), Buffer.from('\n')]);
}

/** Splits records into PutRecordBatch calls within the per-call record and byte limits. */
export function planCalls(records: readonly Buffer[]): Buffer[][] {
  const calls: Buffer[][] = [];
  let call: Buffer[] = [];
  let bytes = 0;
  for (const r of records) {
    if (r.length > FIREHOSE_MAX_RECORD_BYTES)
      throw new IngestError('LAKE_REJECTED', `a record is ${r.length} bytes`, {}, { retryable: false });
    if (call.length === FIREHOSE_MAX_RECORDS_PER_CALL || bytes + r.length > FIREHOSE_MAX_BYTES_PER_CALL) {
      calls.push(call);
      call = [];
      bytes = 0;
    }
    call.push(r);
    bytes += r.length;
  }
  if (call.length > 0) calls.push(call);
  return calls;
}

export interface FirehoseWriterOptions {
  readonly client: Pick<FirehoseClient, 'send'>;
  readonly stream: string;
  /** Attempts per call before giving up (default 5). */
  readonly attempts?: number;
  /** Backoff between attempts (default: full jitter from 100 ms, capped at 2 s). */
  readonly backoff?: (attempt: number) => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface FirehoseWriteStats {
  calls: number;
  records: number;
  bytes: number;
  retriedRecords: number;
  largestCallBytes: number;
  largestCallRecords: number;
  largestRecordBytes: number;
}

export interface FirehoseWriter {
  /** Puts every record, or throws a retryable `LAKE_UNAVAILABLE` naming how many Firehose refused. */
  put(records: readonly Buffer[]): Promise<void>;
  readonly stats: FirehoseWriteStats;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createFirehoseWriter(opts: FirehoseWriterOptions): FirehoseWriter {
  const attempts = opts.attempts ?? 5;
  const backoff = opts.backoff ?? ((a: number) => backoffMs(a, 100, 2_000));
  const sleep = opts.sleep ?? realSleep;
  const stats: FirehoseWriteStats = {
    calls: 0,
    records: 0,
    bytes: 0,
    retriedRecords: 0,
    largestCallBytes: 0,
    largestCallRecords: 0,
    largestRecordBytes: 0,
  };

  const putCall = async (records: Buffer[]) => {
    let pending = records;
    let lastError = '';
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(backoff(attempt));
      stats.calls++;
      const bytes = pending.reduce((n, r) => n + r.length, 0);
      stats.largestCallBytes = Math.max(stats.largestCallBytes, bytes);
      stats.largestCallRecords = Math.max(stats.largestCallRecords, pending.length);
      let out;
      try {
        out = await opts.client.send(
          new PutRecordBatchCommand({
            DeliveryStreamName: opts.stream,
            Records: pending.map((Data) => ({ Data })),
          }),
        );
      } catch (err) {
        // Throttling (ServiceUnavailableException), network, 5xx: the whole call again.
        lastError = `${(err as Error)?.name}: ${(err as Error)?.message}`;
        stats.retriedRecords += pending.length;
        continue;
      }
      const failed = out.FailedPutCount ?? 0;
      if (failed === 0) return;
      const responses = out.RequestResponses ?? [];
      const again = pending.filter((_, i) => responses[i]?.ErrorCode !== undefined);
      // A response without per-record results cannot say which failed: send them all again.
      pending = again.length > 0 ? again : pending;
      lastError = `${failed} records failed: ${responses.find((r) => r.ErrorCode)?.ErrorCode ?? '?'}`;
      stats.retriedRecords += pending.length;
    }
    throw new IngestError(
      'LAKE_UNAVAILABLE',
      `Firehose ${opts.stream} did not take ${pending.length} records after ${attempts} attempts (${lastError})`,
      { stream: opts.stream, records: pending.length },
    );
  };

  return {
    stats,
    async put(records) {
      for (const r of records) {
        stats.records++;
        stats.bytes += r.length;
        stats.largestRecordBytes = Math.max(stats.largestRecordBytes, r.length);
      }
      for (const call of planCalls(records)) await putCall(call);
    },
  };
}

export interface LakeHandoffOptions {
  /** Rows for the Parquet lake. */
  readonly rows: FirehoseWriter;
  /** Raw accepted batches for the archive. */
  readonly archive: FirehoseWriter;
  /** Where rejected records land: `s3://<bucket>/rejected/...` (absent: only logged and counted). */
  readonly rejected?: { readonly s3: Pick<S3Client, 'send'>; readonly bucket: string };
}

export interface RejectedRecord {
  readonly reason: string;
  readonly detail: string;
  readonly thing?: string | undefined;
  readonly partitionKey: string;
  readonly sequenceNumber: string;
  /** The Kinesis record's bytes as they arrived. */
  readonly data: Uint8Array;
  /** When the record reached the stream (ms), for the date prefix. */
  readonly arrivedAt: number;
}

export interface LakeHandoff {
  /** Rows and archive lines of these batches; throws a retryable error when Firehose would not take them. */
  deliver(batches: readonly AcceptedBatch[]): Promise<{ rows: number; records: number }>;
  /** Writes a rejected record under `rejected/dt=<date>/<reason>/`; throws when S3 would not take it. */
  reject(r: RejectedRecord): Promise<string | undefined>;
}

/** S3 key of a rejected record: one object per Kinesis record, so a retried invocation overwrites it. */
export function rejectedKey(r: RejectedRecord): string {
  const date = new Date(r.arrivedAt).toISOString().slice(0, 10);
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `rejected/dt=${date}/${safe(r.reason)}/${safe(r.partitionKey)}-${safe(r.sequenceNumber)}.json`;
}

export function createLakeHandoff(opts: LakeHandoffOptions): LakeHandoff {
  return {
    async deliver(batches) {
      const rows: Buffer[] = [];
      let rowCount = 0;
      for (const b of batches) {
        rows.push(...lakeRecords(b));
        rowCount += b.batch.samples.length;
      }
      const lines = batches.map((b) => archiveLine(b.envelope));
      await Promise.all([opts.rows.put(rows), opts.archive.put(lines)]);
      return { rows: rowCount, records: rows.length };
    },
    async reject(r) {
      if (!opts.rejected) return undefined;
      const key = rejectedKey(r);
      const body = JSON.stringify({
        reason: r.reason,
        detail: r.detail,
        thing: r.thing,
        partitionKey: r.partitionKey,
        sequenceNumber: r.sequenceNumber,
        arrivedAt: r.arrivedAt,
        data: Buffer.from(r.data).toString('base64'),
      });
      try {
        await opts.rejected.s3.send(
          new PutObjectCommand({
            Bucket: opts.rejected.bucket,
            Key: key,
            Body: body,
            ContentType: 'application/json',
          }),
        );
      } catch (err) {
        throw new IngestError(
          'LAKE_UNAVAILABLE',
          `rejected record not written to s3://${opts.rejected.bucket}/${key}`,
          { key },
          { cause: err },
        );
      }
      return key;
    },
  };
}
