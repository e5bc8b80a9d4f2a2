/**
 * The read side of the DynamoDB hot store (sinks/dynamodb.ts): a meter's samples over a time range, for a
 * dashboard or an API. Kept out of the ingest Lambda, which only writes.
 */
import { QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { queryKeys, sortKey } from './dynamodb.js';

export interface ReadSamplesOptions {
  readonly client: Pick<DynamoDBClient, 'send'>;
  readonly table: string;
  /** Queries in flight at once. */
  readonly concurrency?: number;
}

/**
 * A meter's stored items with ts in [from, to), oldest first (by ts, then seq): one Query per (day, shard)
 * with the time range on the sort key, pages followed, results merged.
 */
export async function readSamples(
  opts: ReadSamplesOptions,
  device: string,
  meter: string,
  from: number,
  to: number,
): Promise<Record<string, AttributeValue>[]> {
  const keys = queryKeys(device, meter, from, to);
  const items: Record<string, AttributeValue>[] = [];
  const lo = sortKey(from, 0);
  const hi = sortKey(to, 0);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const pk = keys[next++] as string;
      let start: Record<string, AttributeValue> | undefined;
      do {
        const out = await opts.client.send(
          new QueryCommand({
            TableName: opts.table,
            KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
            ExpressionAttributeValues: { ':pk': { S: pk }, ':lo': { S: lo }, ':hi': { S: hi } },
            ExclusiveStartKey: start,
          }),
        );
        // BETWEEN is inclusive; `to` itself is outside the range.
        for (const it of out.Items ?? []) if ((it.sk?.S ?? '') < hi) items.push(it);
        start = out.LastEvaluatedKey;
      } while (start);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, keys.length) }, worker));
  return items.sort((a, b) => ((a.sk?.S ?? '') < (b.sk?.S ?? '') ? -1 : 1));
}
