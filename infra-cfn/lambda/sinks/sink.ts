/**
 * The one interface between the ingest Lambda and its hot store (`HotStore` template parameter). Every
 * implementation is idempotent: writing the same batch twice leaves the store as after the first write.
 */
import type { Sample } from '../../../cloud-contract/sample.js';

/** A batch that passed verification: its device (= thing) and samples. */
export interface VerifiedBatch {
  readonly device: string;
  readonly samples: readonly Sample[];
}

export interface SinkResult {
  /** Samples the store accepted (including identical rewrites). */
  readonly written: number;
  /** Samples the store refused as invalid; they are logged and counted, never retried. */
  readonly rejected: number;
  /** Why, for the log (first few). */
  readonly rejections?: readonly string[];
}

export interface SampleSink {
  readonly kind: 'dynamodb' | 'timestream-liveanalytics' | 'timestream-influxdb' | 'none';
  /** Throws `IngestError` (SINK_UNAVAILABLE, retryable) when the store cannot take the write now. */
  write(batches: readonly VerifiedBatch[]): Promise<SinkResult>;
}

export const noneSink: SampleSink = {
  kind: 'none',
  write: async () => ({ written: 0, rejected: 0 }),
};

/** Sleeps between retries of throttled/unprocessed writes: full jitter, capped. */
export function backoffMs(attempt: number, baseMs = 50, capMs = 2_000): number {
  return Math.round(Math.random() * Math.min(capMs, baseMs * 2 ** attempt));
}
