/**
 * DynamoDB hot store (the free-tier path): one item per sample, TTL attribute `expiresAt`. A re-sent batch
 * writes the same keys with the same attributes (nothing per-delivery is stored), so it changes nothing.
 *
 * Keys spread writes: pk = "device#meter#UTC day#shard", shard = a hash of the sample's seq into
 * `SHARDS` buckets; sk = "ts#seq" with fixed-width digits, so each partition's items sort by time. A box
 * draining a backlog writes consecutive samples of one day; the hash deals them evenly over the day's
 * shards, so one key takes about 1/SHARDS of the drain (a partition serves 1,000 WCU/s), and the day
 * in the key bounds each item collection. Both parts derive from the sample alone, so a rewrite hits the same
 * key. Reading a meter's time range means one Query per (day, shard), merged by sk: `queryKeys` here,
 * `readSamples` in dynamodb-read.ts (apart, so the ingest Lambda's bundle and role hold no read). Figures and access patterns: infra-cfn/README.md, test/infra/sinks.test.ts.
 */
import {
  BatchWriteItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { setTimeout as delay } from 'node:timers/promises';
import { valueToNumber, type Sample } from '../../../cloud-contract/sample.js';
import { IngestError } from '../errors.js';
import { backoffMs, type SampleSink, type SinkResult, type VerifiedBatch } from './sink.js';

export interface DynamoDbSinkOptions {
  readonly client: Pick<DynamoDBClient, 'send'>;
  readonly table: string;
  /** TTL: items expire this many days after their sample time. */
  readonly retentionDays: number;
  /** Attempts for unprocessed items / throttling before giving the records back to Lambda. */
  readonly maxAttempts?: number;
}

/** BatchWriteItem takes at most 25 requests. */
const CHUNK = 25;

/** Write shards per device, meter and day. */
export const SHARDS = 128;
const DAY_MS = 86_400_000;

/**
 * The shard of a sequence number: Fibonacci hashing (the top 7 bits of seq × 2^32/φ), which spreads runs of
 * consecutive numbers, and arithmetic progressions (a box with n meters gives each every n-th seq), evenly.
 */
export function shardOf(seq: number): number {
  const lo = seq >>> 0;
  const hi = Math.floor(seq / 2 ** 32) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> (32 - Math.log2(SHARDS));
}

const utcDay = (ts: number) => new Date(Math.floor(ts / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
export const partitionKey = (device: string, meter: string, day: string, shard: number) =>
  `${device}#${meter}#${day}#${String(shard).padStart(3, '0')}`;
export const sortKey = (ts: number, seq: number) =>
  `${String(ts).padStart(15, '0')}#${String(seq).padStart(16, '0')}`;

export const sampleKey = (device: string, s: Pick<Sample, 'meter' | 'ts' | 'seq'>) => ({
  pk: partitionKey(device, s.meter, utcDay(s.ts), shardOf(s.seq)),
  sk: sortKey(s.ts, s.seq),
});

/** The partition keys that hold one meter's samples with ts in [from, to): every shard of every day. */
export function queryKeys(device: string, meter: string, from: number, to: number): string[] {
  const keys: string[] = [];
  for (let d = Math.floor(from / DAY_MS) * DAY_MS; d < to; d += DAY_MS)
    for (let shard = 0; shard < SHARDS; shard++) keys.push(partitionKey(device, meter, utcDay(d), shard));
  return keys;
}

export function sampleItem(device: string, s: Sample, retentionDays: number): Record<string, AttributeValue> {
  const { pk, sk } = sampleKey(device, s);
  const values: Record<string, AttributeValue> = {};
  for (const [name, v] of Object.entries(s.values)) values[name] = { N: String(valueToNumber(v)) };
  const item: Record<string, AttributeValue> = {
    pk: { S: pk },
    sk: { S: sk },
    device: { S: device },
    meter: { S: s.meter },
    ts: { N: String(s.ts) },
    seq: { N: String(s.seq) },
    flags: { N: String(s.flags) },
    values: { M: values },
    expiresAt: { N: String(Math.floor(s.ts / 1000) + retentionDays * 86_400) },
  };
  if (s.missing && s.missing.length > 0) item.missing = { L: s.missing.map((m) => ({ S: m })) };
  return item;
}

export function createDynamoDbSink(opts: DynamoDbSinkOptions): SampleSink {
  const maxAttempts = opts.maxAttempts ?? 8;
  return {
    kind: 'dynamodb',
    async write(batches: readonly VerifiedBatch[]): Promise<SinkResult> {
      // BatchWriteItem refuses two requests for one key in a call; a batch re-sent within one Kinesis batch
      // would do that, so dedupe by key (the items are identical anyway).
      const byKey = new Map<string, WriteRequest>();
      for (const b of batches)
        for (const s of b.samples) {
          const { pk, sk } = sampleKey(b.device, s);
          byKey.set(`${pk}\u0000${sk}`, {
            PutRequest: { Item: sampleItem(b.device, s, opts.retentionDays) },
          });
        }
      const all = [...byKey.values()];
      for (let i = 0; i < all.length; i += CHUNK) {
        let pending = all.slice(i, i + CHUNK);
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt >= maxAttempts)
            throw new IngestError(
              'SINK_UNAVAILABLE',
              `DynamoDB left ${pending.length} items unprocessed after ${attempt} attempts`,
              {
                table: opts.table,
              },
            );
          if (attempt > 0) await delay(backoffMs(attempt));
          try {
            const out = await opts.client.send(
              new BatchWriteItemCommand({ RequestItems: { [opts.table]: pending } }),
            );
            pending = out.UnprocessedItems?.[opts.table] ?? [];
          } catch (err) {
            const name = (err as { name?: string }).name ?? 'Error';
            if (name === 'ValidationException')
              throw new IngestError(
                'SINK_REJECTED',
                `DynamoDB refused the items: ${(err as Error).message}`,
                { table: opts.table },
                { cause: err },
              );
            if (
              name !== 'ProvisionedThroughputExceededException' &&
              name !== 'ThrottlingException' &&
              name !== 'RequestLimitExceeded'
            )
              throw new IngestError(
                'SINK_UNAVAILABLE',
                `DynamoDB BatchWriteItem failed: ${name}`,
                { table: opts.table },
                { cause: err },
              );
          }
        }
      }
      return { written: batches.reduce((n, b) => n + b.samples.length, 0), rejected: 0 };
    },
  };
}
