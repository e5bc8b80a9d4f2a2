/** Lambda entry point of the ingest function (bundled by infra-cfn/build.ts to dist/ingest/index.mjs). */
import { IoTClient } from '@aws-sdk/client-iot';
import type { KinesisStreamEvent } from 'aws-lambda';
import { createIotCertificateSource } from './certificates.js';
import { createIngestHandler } from './ingest.js';
import { sinkFromEnv } from './sinks/from-env.js';

const ttlMs = Number(process.env.CERT_CACHE_TTL_SECONDS ?? '900') * 1000;
// Built once per container: the certificate cache and the SDK clients' connections outlive invocations.
const ingest = createIngestHandler({
  sink: sinkFromEnv(process.env),
  certs: createIotCertificateSource({ iot: new IoTClient({}), ttlMs }),
  namespace: process.env.METRICS_NAMESPACE ?? 'meterlink/Ingest',
});

export const handler = (event: KinesisStreamEvent) => ingest(event);
