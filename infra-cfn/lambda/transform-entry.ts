/** Lambda entry point of the Firehose transform (bundled by infra-cfn/build.ts to dist/transform/index.mjs). */
import { IoTClient } from '@aws-sdk/client-iot';
import type { FirehoseTransformationEvent } from 'aws-lambda';
import { createIotCertificateSource } from './certificates.js';
import { createTransformHandler } from './transform.js';

const ttlMs = Number(process.env.CERT_CACHE_TTL_SECONDS ?? '900') * 1000;
const transform = createTransformHandler({
  certs: createIotCertificateSource({ iot: new IoTClient({}), ttlMs }),
  namespace: process.env.METRICS_NAMESPACE ?? 'meterlink/Transform',
});

export const handler = (event: FirehoseTransformationEvent) => transform(event);
