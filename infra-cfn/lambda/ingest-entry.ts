/** Lambda entry point of the ingest function (bundled by infra-cfn/build.ts to dist/ingest/index.mjs). */
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { IoTClient } from '@aws-sdk/client-iot';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context, KinesisStreamEvent } from 'aws-lambda';
import { createIotCertificateSource } from './certificates.js';
import { createIngestHandler } from './ingest.js';
import { lakeFromEnv } from './lake-env.js';
import { sinkFromEnv } from './sinks/from-env.js';

const ttlMs = Number(process.env.CERT_CACHE_TTL_SECONDS ?? '900') * 1000;
const lake = lakeFromEnv(process.env, { firehose: () => new FirehoseClient({}), s3: () => new S3Client({}) });
// Built once per container: the certificate cache and the SDK clients' connections outlive invocations.
const ingest = createIngestHandler({
  sink: sinkFromEnv(process.env),
  certs: createIotCertificateSource({ iot: new IoTClient({}), ttlMs }),
  namespace: process.env.METRICS_NAMESPACE ?? 'meterlink/Ingest',
  ...(lake ? { lake } : {}),
});

export const handler = (event: KinesisStreamEvent, context: Context) => ingest(event, context);
