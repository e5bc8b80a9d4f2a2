/**
 * The ingest Lambda: Kinesis records (batch rule envelopes) → verify → hot store.
 *
 * - A record that fails verification is rejected: logged with its reason, counted, and NOT reported as a
 *   failure — retrying a tampered or malformed record can never succeed, and must not block its shard.
 * - A record whose certificate lookup failed, or whose write the store could not take, is reported in
 *   `batchItemFailures` (ReportBatchItemFailures): Lambda checkpoints before the first one and retries from
 *   there (bisecting, bounded by MaximumRetryAttempts / MaximumRecordAgeInSeconds, then the SQS destination).
 *   Processing stops at the first such record; records after it come back in the retry anyway.
 * - Writes are idempotent, so the records that do come back twice change nothing.
 * - With a lake hand-off (lake.ts), accepted batches also go to Firehose (Parquet rows and the raw archive)
 *   in the same group as the hot-store write, and rejected records to S3 under `rejected/`; when Firehose or
 *   S3 cannot take them, the group's first record is handed back like a store outage. Lake rows may then
 *   repeat; the lake's queries deduplicate by (device, meter, seq).
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import type { CertificateSource } from './certificates.js';
import { isIngestError } from './errors.js';
import type { AcceptedBatch, LakeHandoff } from './lake.js';
import { emitMetrics, type LogLine } from './metrics.js';
import type { SampleSink, VerifiedBatch } from './sinks/sink.js';
import { verifyRecord } from './verify.js';

export interface IngestDeps {
  readonly sink: SampleSink;
  readonly certs: CertificateSource;
  /** Firehose rows + raw archive + rejected records (absent: hot store only). */
  readonly lake?: LakeHandoff;
  readonly namespace?: string;
  readonly log?: LogLine;
  readonly now?: () => number;
  /** Samples gathered from consecutive records before one sink write (default 2,000). */
  readonly samplesPerWrite?: number;
  /**
   * Time kept in reserve before the function's timeout (default 20 s): once less remains, no further record
   * is started and the rest are handed back. One flat backlog batch expands to ~41,600 rows, so a Kinesis
   * event of them could otherwise outlast any timeout (infra-cfn/README.md, "Lake").
   */
  readonly reserveMs?: number;
}

export interface IngestSummary {
  records: number;
  accepted: number;
  rejected: number;
  retried: number;
  samplesWritten: number;
  samplesRejectedByStore: number;
  rejectedByReason: Record<string, number>;
  /** Rows handed to the lake's Firehose stream, and the Firehose records that carried them. */
  lakeRows: number;
  lakeRecords: number;
  /** Rejected records written under `rejected/` in S3. */
  rejectedStored: number;
}

/** What the handler reads of Lambda's context object. */
export interface InvocationClock {
  getRemainingTimeInMillis(): number;
}

export type IngestHandler = ((
  event: KinesisStreamEvent,
  context?: InvocationClock,
) => Promise<KinesisStreamBatchResponse>) & {
  /** Counters of the last invocation (tests, benchmark). */
  readonly last: () => IngestSummary;
};

export function createIngestHandler(deps: IngestDeps): IngestHandler {
  const log = deps.log ?? ((line: string) => console.log(line));
  const now = deps.now ?? Date.now;
  const perWrite = deps.samplesPerWrite ?? 2_000;
  const namespace = deps.namespace ?? 'meterlink/Ingest';
  let last: IngestSummary | undefined;

  const reserveMs = deps.reserveMs ?? 20_000;
  const handler = async (
    event: KinesisStreamEvent,
    context?: InvocationClock,
  ): Promise<KinesisStreamBatchResponse> => {
    const sum: IngestSummary = {
      records: event.Records.length,
      accepted: 0,
      rejected: 0,
      retried: 0,
      samplesWritten: 0,
      samplesRejectedByStore: 0,
      rejectedByReason: {},
      lakeRows: 0,
      lakeRecords: 0,
      rejectedStored: 0,
    };
    last = sum;
    let failedAt: string | undefined;
    // Accepted records waiting for one sink write, with the sequence number of the first of them.
    let group: VerifiedBatch[] = [];
    let lakeGroup: AcceptedBatch[] = [];
    let groupFirst: string | undefined;
    let groupSamples = 0;

    const flush = async (): Promise<boolean> => {
      if (group.length === 0) return true;
      const toLake = deps.lake?.deliver(lakeGroup);
      // Settled here so that a lake failure never goes unobserved while the store write runs.
      toLake?.catch(() => {});
      try {
        const r = await deps.sink.write(group);
        sum.samplesWritten += r.written;
        sum.samplesRejectedByStore += r.rejected;
        if (r.rejected > 0)
          log(
            JSON.stringify({
              level: 'warn',
              msg: 'hot store rejected samples',
              rejected: r.rejected,
              why: r.rejections,
            }),
          );
      } catch (err) {
        if (isIngestError(err) && !err.retryable) {
          sum.samplesRejectedByStore += groupSamples;
          log(
            JSON.stringify({
              level: 'error',
              msg: 'hot store refused a write',
              code: err.code,
              error: err.message,
            }),
          );
        } else {
          failedAt = groupFirst;
          log(
            JSON.stringify({
              level: 'error',
              msg: 'hot store write failed; records handed back for retry',
              code: isIngestError(err) ? err.code : 'UNEXPECTED',
              error: (err as Error)?.message,
              sequenceNumber: groupFirst,
            }),
          );
          return false;
        }
      } finally {
        group = [];
        lakeGroup = [];
        groupSamples = 0;
      }
      try {
        const l = await toLake;
        if (l) {
          sum.lakeRows += l.rows;
          sum.lakeRecords += l.records;
        }
      } catch (err) {
        failedAt = groupFirst;
        log(
          JSON.stringify({
            level: 'error',
            msg: 'lake hand-off failed; records handed back for retry',
            code: isIngestError(err) ? err.code : 'UNEXPECTED',
            error: (err as Error)?.message,
            sequenceNumber: groupFirst,
          }),
        );
        return false;
      } finally {
        groupFirst = undefined;
      }
      return true;
    };

    for (const [i, rec] of event.Records.entries()) {
      const seqNo = rec.kinesis.sequenceNumber;
      if (i > 0 && context && context.getRemainingTimeInMillis() < reserveMs) {
        if (!(await flush())) break;
        failedAt = seqNo;
        log(
          JSON.stringify({
            level: 'warn',
            msg: 'function timeout near; the remaining records handed back',
            remainingMs: context.getRemainingTimeInMillis(),
            sequenceNumber: seqNo,
          }),
        );
        break;
      }
      let outcome;
      try {
        outcome = await verifyRecord(new Uint8Array(Buffer.from(rec.kinesis.data, 'base64')), deps.certs);
      } catch (err) {
        // verifyRecord never throws by design; if it does, retry rather than lose the record.
        outcome = {
          kind: 'retry' as const,
          reason: 'KEY_LOOKUP_FAILED' as const,
          detail: String((err as Error)?.message),
        };
      }
      if (outcome.kind === 'rejected') {
        if (deps.lake) {
          try {
            const key = await deps.lake.reject({
              reason: outcome.reason,
              detail: outcome.detail,
              thing: outcome.thing,
              partitionKey: rec.kinesis.partitionKey,
              sequenceNumber: seqNo,
              data: new Uint8Array(Buffer.from(rec.kinesis.data, 'base64')),
              arrivedAt: Math.round(rec.kinesis.approximateArrivalTimestamp * 1000),
            });
            if (key !== undefined) sum.rejectedStored++;
          } catch (err) {
            if (!(await flush())) break;
            failedAt = seqNo;
            log(
              JSON.stringify({
                level: 'error',
                msg: 'rejected record not stored; record handed back',
                error: (err as Error)?.message,
                sequenceNumber: seqNo,
              }),
            );
            break;
          }
        }
        sum.rejected++;
        sum.rejectedByReason[outcome.reason] = (sum.rejectedByReason[outcome.reason] ?? 0) + 1;
        log(
          JSON.stringify({
            level: 'warn',
            msg: 'batch rejected',
            reason: outcome.reason,
            detail: outcome.detail,
            thing: outcome.thing,
            partitionKey: rec.kinesis.partitionKey,
            sequenceNumber: seqNo,
          }),
        );
        continue;
      }
      if (outcome.kind === 'retry') {
        if (!(await flush())) break;
        failedAt = seqNo;
        log(
          JSON.stringify({
            level: 'error',
            msg: 'certificate lookup failed; record handed back',
            detail: outcome.detail,
            sequenceNumber: seqNo,
          }),
        );
        break;
      }
      sum.accepted++;
      groupFirst ??= seqNo;
      group.push({ device: outcome.batch.device, samples: outcome.batch.samples });
      lakeGroup.push({ envelope: outcome.envelope, batch: outcome.batch, kid: outcome.kid });
      groupSamples += outcome.batch.samples.length;
      if (groupSamples >= perWrite && !(await flush())) break;
    }
    if (failedAt === undefined) await flush();

    const failures: KinesisStreamBatchResponse['batchItemFailures'] = [];
    if (failedAt !== undefined) {
      failures.push({ itemIdentifier: failedAt });
      const idx = event.Records.findIndex((r) => r.kinesis.sequenceNumber === failedAt);
      sum.retried = event.Records.length - idx;
    }
    emitMetrics(log, namespace, sum, now());
    return { batchItemFailures: failures };
  };
  return Object.assign(handler, {
    last: () =>
      last ?? {
        records: 0,
        accepted: 0,
        rejected: 0,
        retried: 0,
        samplesWritten: 0,
        samplesRejectedByStore: 0,
        rejectedByReason: {},
        lakeRows: 0,
        lakeRecords: 0,
        rejectedStored: 0,
      },
  });
}
