/**
 * Ingest Lambda throughput on one core: one 10,000-record Kinesis batch (20 samples × 12 channels per record,
 * 100 devices) through the real handler — envelope parse, COSE decode, ES256 verify, mapping every sample to
 * its DynamoDB item — with the certificate cache cold (each device's certificate fetched from IoT, here
 * moto_server) and warm. Baseline, same run: decoding the same records without verifying (cloud-contract's
 * inspectBatchMessage), i.e. what verification costs.
 *
 *   npm run bench:lambda
 */
import { IoTClient } from '@aws-sdk/client-iot';
import type { KinesisStreamEvent } from 'aws-lambda';
import { inspectBatchMessage, f32Value, intValue, type Sample } from '../cloud-contract/index.js';
import { createIotCertificateSource } from '../infra-cfn/lambda/certificates.js';
import { parseRuleEnvelope } from '../infra-cfn/lambda/envelope.js';
import { createIngestHandler } from '../infra-cfn/lambda/ingest.js';
import { sampleItem } from '../infra-cfn/lambda/sinks/dynamodb.js';
import type { SampleSink } from '../infra-cfn/lambda/sinks/sink.js';
import { makeCa } from '../test/harness/pki.js';
import { registerDevice, ruleRecord, type TestDevice } from '../test/infra/fixtures.js';
import { startMotoValidCerts } from '../test/infra/moto-iot.js';

const RECORDS = 10_000;
const DEVICES = 100;
const SAMPLES_PER_RECORD = 20;
const CHANNELS = [
  'voltage_l1_v',
  'voltage_l2_v',
  'voltage_l3_v',
  'current_l1_a',
  'current_l2_a',
  'current_l3_a',
  'power_l1_w',
  'power_l2_w',
  'power_l3_w',
  'power_w',
  'frequency_hz',
  'energy_import_kwh',
];

const cleanups: (() => unknown)[] = [];
const teardown = { teardown: (fn: () => unknown) => void cleanups.push(fn) };

function samplesFor(record: number): Sample[] {
  const t0 = Date.UTC(2025, 0, 1) + record * SAMPLES_PER_RECORD * 1000;
  return Array.from({ length: SAMPLES_PER_RECORD }, (_, i) => {
    const values: Record<string, Sample['values'][string]> = {};
    CHANNELS.forEach(
      (c, k) =>
        (values[c] =
          c === 'energy_import_kwh'
            ? intValue(12_345_678 + record * 20 + i, -3)
            : f32Value(230 + k + i * 0.25)),
    );
    return { meter: 'main', ts: t0 + i * 1000, seq: record * SAMPLES_PER_RECORD + i + 1, flags: 0, values };
  });
}

async function main() {
  const moto = await startMotoValidCerts(teardown);
  const iot = new IoTClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
  cleanups.push(() => iot.destroy());
  const ca = await makeCa();
  const devices: TestDevice[] = [];
  for (let d = 0; d < DEVICES; d++)
    devices.push(await registerDevice(iot, ca, `box-${String(d).padStart(4, '0')}`));

  const t0 = performance.now();
  const event: KinesisStreamEvent = {
    Records: Array.from({ length: RECORDS }, (_, r) => {
      const dev = devices[r % DEVICES] as TestDevice;
      return {
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: dev.thing,
          sequenceNumber: String(r + 1),
          data: ruleRecord(dev, samplesFor(r)).toString('base64'),
          approximateArrivalTimestamp: 1,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `shard:${r}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/ingest',
        awsRegion: 'eu-west-1',
        eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/bench',
      };
    }),
  };
  const buildMs = performance.now() - t0;
  const totalSamples = RECORDS * SAMPLES_PER_RECORD;
  const recordBytes = event.Records.reduce((n, r) => n + r.kinesis.data.length * 0.75, 0) / RECORDS;

  // The mapping stage of the DynamoDB sink, without the network: every sample becomes its item.
  let mapped = 0;
  const mappingSink: SampleSink = {
    kind: 'dynamodb',
    write: async (batches) => {
      for (const b of batches) for (const s of b.samples) if (sampleItem(b.device, s, 90)) mapped++;
      return { written: batches.reduce((n, b) => n + b.samples.length, 0), rejected: 0 };
    },
  };

  // Baseline: parse + decode every record without signature verification or certificates.
  const b0 = performance.now();
  let baselineSamples = 0;
  for (const r of event.Records) {
    const env = parseRuleEnvelope(Buffer.from(r.kinesis.data, 'base64'));
    if (!env.ok) throw new Error(env.detail);
    const d = inspectBatchMessage(env.envelope.payload);
    if (!d.ok) throw new Error(d.detail);
    baselineSamples += d.batch.samples.length;
  }
  const baselineMs = performance.now() - b0;

  const certs = createIotCertificateSource({ iot });
  const handler = createIngestHandler({ sink: mappingSink, certs, log: () => {} });
  const run = async () => {
    const s = performance.now();
    const res = await handler(event);
    const ms = performance.now() - s;
    const last = handler.last();
    if (res.batchItemFailures.length > 0 || last.accepted !== RECORDS)
      throw new Error(`bench run failed: ${JSON.stringify(last)}`);
    return ms;
  };
  const coldMs = await run();
  const coldLookups = certs.stats.misses;
  const warm: number[] = [];
  for (let i = 0; i < 3; i++) warm.push(await run());
  const warmMs = Math.min(...warm);
  if (mapped !== totalSamples * 4) throw new Error(`mapped ${mapped}`);

  const rate = (ms: number, n = totalSamples) => Math.round((n / ms) * 1000);
  const rows = [
    ['baseline: decode, no verify', baselineMs, rate(baselineMs, baselineSamples)],
    ['handler, certificate cache cold', coldMs, rate(coldMs)],
    ['handler, certificate cache warm', warmMs, rate(warmMs)],
  ] as const;
  console.log(
    `ingest handler, one ${RECORDS}-record Kinesis batch: ${DEVICES} devices, ${SAMPLES_PER_RECORD} samples × ${CHANNELS.length} channels per record, ~${Math.round(recordBytes)} B/record (built in ${buildMs.toFixed(0)} ms)`,
  );
  console.log('');
  console.log(
    `${'case'.padEnd(34)} ${'ms'.padStart(9)} ${'samples/s'.padStart(11)} ${'records/s'.padStart(10)}`,
  );
  for (const [name, ms, r] of rows)
    console.log(
      `${name.padEnd(34)} ${ms.toFixed(0).padStart(9)} ${String(r).padStart(11)} ${String(Math.round((RECORDS / ms) * 1000)).padStart(10)}`,
    );
  console.log('');
  console.log(
    `cold run: ${coldLookups} IoT DescribeCertificate calls (moto on loopback); verify overhead vs baseline: ×${(warmMs / baselineMs).toFixed(2)}`,
  );
  console.log(
    `RESULT ${JSON.stringify({
      records: RECORDS,
      samples: totalSamples,
      devices: DEVICES,
      baselineSamplesPerSec: rate(baselineMs, baselineSamples),
      coldSamplesPerSec: rate(coldMs),
      warmSamplesPerSec: rate(warmMs),
      coldMs: Math.round(coldMs),
      warmMs: Math.round(warmMs),
      baselineMs: Math.round(baselineMs),
      coldCertificateLookups: coldLookups,
    })}`,
  );
}

try {
  await main();
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
