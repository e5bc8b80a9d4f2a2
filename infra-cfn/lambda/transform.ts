/**
 * The Firehose transform Lambda: each stream record (a batch rule envelope) is verified exactly like the
 * ingest path, then flattened to newline-delimited JSON rows (one per sample) that Firehose converts to
 * Parquet against the Glue table. Rejected records become `ProcessingFailed`, which Firehose writes to the
 * error output prefix (firehose-errors/processing-failed/...), never to the table.
 */
import type {
  FirehoseTransformationEvent,
  FirehoseTransformationResult,
  FirehoseTransformationResultRecord,
} from 'aws-lambda';
import type { CertificateSource } from './certificates.js';
import { emitMetrics, type LogLine } from './metrics.js';
import { partitionDate, sampleRows } from './rows.js';
import { verifyRecord } from './verify.js';

export interface TransformDeps {
  readonly certs: CertificateSource;
  readonly namespace?: string;
  readonly log?: LogLine;
  readonly now?: () => number;
}

export function createTransformHandler(
  deps: TransformDeps,
): (event: FirehoseTransformationEvent) => Promise<FirehoseTransformationResult> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const now = deps.now ?? Date.now;
  return async (event) => {
    const out: FirehoseTransformationResultRecord[] = [];
    const counts = {
      records: event.records.length,
      accepted: 0,
      rejected: 0,
      retried: 0,
      samplesWritten: 0,
      samplesRejectedByStore: 0,
    };
    const byReason: Record<string, number> = {};
    for (const rec of event.records) {
      const outcome = await verifyRecord(new Uint8Array(Buffer.from(rec.data, 'base64')), deps.certs);
      if (outcome.kind !== 'accepted') {
        if (outcome.kind === 'rejected') counts.rejected++;
        else counts.retried++;
        byReason[outcome.reason] = (byReason[outcome.reason] ?? 0) + 1;
        log(
          JSON.stringify({
            level: 'warn',
            msg: 'record not transformed',
            reason: outcome.reason,
            detail: outcome.detail,
            recordId: rec.recordId,
          }),
        );
        out.push({ recordId: rec.recordId, result: 'ProcessingFailed', data: rec.data });
        continue;
      }
      counts.accepted++;
      const rows = sampleRows(outcome.batch, outcome.kid, outcome.envelope.receivedAt);
      counts.samplesWritten += rows.length;
      const body = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
      out.push({
        recordId: rec.recordId,
        result: 'Ok',
        data: Buffer.from(body).toString('base64'),
        metadata: { partitionKeys: { dt: partitionDate(outcome.batch, outcome.envelope.receivedAt) } },
      });
    }
    emitMetrics(
      log,
      deps.namespace ?? 'meterlink/Transform',
      { ...counts, rejectedByReason: byReason },
      now(),
    );
    return { records: out };
  };
}
