/**
 * The lake hand-off from the Lambda environment (ingest.yaml): `LAKE_DELIVERY_STREAM` (rows),
 * `ARCHIVE_DELIVERY_STREAM` (raw batches) and `LAKE_BUCKET` (rejected records). Without the two stream
 * names the function runs hot-store only; naming just one of them is a deployment error.
 */
import type { FirehoseClient } from '@aws-sdk/client-firehose';
import type { S3Client } from '@aws-sdk/client-s3';
import { IngestError } from './errors.js';
import { createFirehoseWriter, createLakeHandoff, type LakeHandoff } from './lake.js';

export function lakeFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  clients: { firehose: () => Pick<FirehoseClient, 'send'>; s3: () => Pick<S3Client, 'send'> },
): LakeHandoff | undefined {
  const rows = env.LAKE_DELIVERY_STREAM ?? '';
  const archive = env.ARCHIVE_DELIVERY_STREAM ?? '';
  const bucket = env.LAKE_BUCKET ?? '';
  if (rows === '' && archive === '') return undefined;
  if (rows === '' || archive === '')
    throw new IngestError(
      'SINK_CONFIG',
      'set both LAKE_DELIVERY_STREAM and ARCHIVE_DELIVERY_STREAM (or neither): the lake and its archive go together',
      { rows, archive },
    );
  const firehose = clients.firehose();
  return createLakeHandoff({
    rows: createFirehoseWriter({ client: firehose, stream: rows }),
    archive: createFirehoseWriter({ client: firehose, stream: archive }),
    ...(bucket !== '' ? { rejected: { s3: clients.s3(), bucket } } : {}),
  });
}
