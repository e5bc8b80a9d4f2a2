/**
 * The lake path against its limits, for the worst batches the agent sends (test/infra/worst-batches.ts:
 * SDM630 and EM340, live and backlog, and a flat EM340 backlog at the decoder's item limit).
 *
 * - **Direct PUT (now)**: the real ingest handler (verify → rows → lake hand-off) on one Kinesis event of
 *   each batch, PutRecordBatch to a loopback stand-in that records every call. Per invocation: request bytes
 *   (Lambda: 6 MB), response bytes (6 MB), and per PutRecordBatch call its bytes (4 MiB) and records (500),
 *   per Firehose record its bytes (1,000 KiB) and rows (500, de-aggregation); samples/s and GB-s per million
 *   samples at the function's MemorySize from ingest.yaml.
 * - **Firehose transform (before)**: the removed transform's work rebuilt from the same row code — verify,
 *   one JSON row per sample, base64 — on what one invocation received with the 1 MB processing buffer;
 *   its response against Lambda's 6 MB.
 *
 *   npm run bench:lake
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { IoTClient } from '@aws-sdk/client-iot';
import type { KinesisStreamEvent } from 'aws-lambda';
import { parse } from 'yaml';
import { createIotCertificateSource, type CertificateSource } from '../infra-cfn/lambda/certificates.js';
import { createIngestHandler } from '../infra-cfn/lambda/ingest.js';
import {
  FIREHOSE_MAX_BYTES_PER_CALL,
  FIREHOSE_MAX_RECORD_BYTES,
  FIREHOSE_MAX_RECORDS_PER_CALL,
  MAX_ROWS_PER_RECORD,
  createFirehoseWriter,
  createLakeHandoff,
} from '../infra-cfn/lambda/lake.js';
import { sampleRows } from '../infra-cfn/lambda/rows.js';
import { noneSink } from '../infra-cfn/lambda/sinks/sink.js';
import { verifyRecord } from '../infra-cfn/lambda/verify.js';
import { makeCa } from '../test/harness/pki.js';
import { startFakeFirehose } from '../test/infra/fake-firehose.js';
import { registerDevice, ruleRecord } from '../test/infra/fixtures.js';
import { startMotoValidCerts } from '../test/infra/moto-iot.js';
import { worstBatches } from '../test/infra/worst-batches.js';

const LAMBDA_MAX_PAYLOAD = 6 * 1024 * 1024;
const KINESIS_MAX_RECORD = 1024 * 1024;
/** The removed transform's processing buffer (BufferSizeInMBs 1) and MemorySize (1024). */
const TRANSFORM_BUFFER_BYTES = 1024 * 1024;
const TRANSFORM_MEMORY_MB = 1024;
/** Samples per measured Direct PUT invocation (enough for a stable rate, short enough to run here). */
const SAMPLES_PER_RUN = 120_000;

const cleanups: (() => unknown)[] = [];
const teardown = { teardown: (fn: () => unknown) => void cleanups.push(fn) };

function kinesisEvent(datas: Buffer[], thing: string): KinesisStreamEvent {
  return {
    Records: datas.map((d, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: thing,
        sequenceNumber: String(i + 1),
        data: d.toString('base64'),
        approximateArrivalTimestamp: Date.now() / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${i + 1}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/ingest',
      awsRegion: 'eu-west-1',
      eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/batches',
    })),
  };
}

/** The removed Firehose transform's work on one invocation, from the same verification and row code. */
async function transformInvocation(records: Buffer[], certs: CertificateSource) {
  const event = {
    invocationId: 'inv',
    deliveryStreamArn: 'arn:aws:firehose:eu-west-1:123456789012:deliverystream/meterlink-lake',
    region: 'eu-west-1',
    records: records.map((d, i) => ({
      recordId: `r${i}`,
      approximateArrivalTimestamp: Date.now(),
      data: d.toString('base64'),
    })),
  };
  const t0 = performance.now();
  const out = [];
  let samples = 0;
  for (const rec of event.records) {
    const o = await verifyRecord(new Uint8Array(Buffer.from(rec.data, 'base64')), certs);
    if (o.kind !== 'accepted') throw new Error(`bench batch not accepted: ${o.kind}`);
    const rows = sampleRows(o.batch, o.kid, o.envelope.receivedAt);
    samples += rows.length;
    out.push({
      recordId: rec.recordId,
      result: 'Ok',
      data: Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n').toString('base64'),
      metadata: { partitionKeys: { dt: new Date(o.batch.samples[0]!.ts).toISOString().slice(0, 10) } },
    });
  }
  const response = JSON.stringify({ records: out });
  const ms = performance.now() - t0;
  return { requestBytes: JSON.stringify(event).length, responseBytes: response.length, samples, ms };
}

async function main() {
  const ingestYaml = parse(
    await readFile(join(import.meta.dirname, '..', 'infra-cfn', 'templates', 'ingest.yaml'), 'utf8'),
    { logLevel: 'silent' },
  ) as {
    Resources: {
      Function: { Properties: { MemorySize: number; Timeout: number } };
      EventSource: { Properties: { BatchSize: number } };
    };
  };
  const memoryMb = ingestYaml.Resources.Function.Properties.MemorySize;
  const timeoutS = ingestYaml.Resources.Function.Properties.Timeout;
  const batchSize = ingestYaml.Resources.EventSource.Properties.BatchSize;

  const moto = await startMotoValidCerts(teardown);
  const iot = new IoTClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
  cleanups.push(() => iot.destroy());
  const dev = await registerDevice(iot, await makeCa(), 'apt-12-meterbox');
  const certs = createIotCertificateSource({ iot });
  const fake = await startFakeFirehose(teardown);
  const firehose = new FirehoseClient({
    endpoint: fake.endpoint,
    region: 'eu-west-1',
    credentials: moto.credentials,
  });
  cleanups.push(() => firehose.destroy());

  const results = [];
  for (const w of worstBatches(dev)) {
    const envelope = ruleRecord(dev, [], { payload: w.message, receivedAt: Date.now() });
    await verifyRecord(envelope, certs); // certificate cache warm for both paths

    // Before: what one transform invocation received with the 1 MB processing buffer. Its response grows
    // linearly with the batches in it; the small-batch invocations would need gigabytes here, so they are
    // measured on up to SAMPLES_PER_RUN samples' worth and scaled.
    const perInvocation = Math.max(1, Math.floor(TRANSFORM_BUFFER_BYTES / envelope.length));
    const measured = Math.min(perInvocation, Math.max(1, Math.round(SAMPLES_PER_RUN / w.samples)));
    const part = await transformInvocation(Array(measured).fill(envelope) as Buffer[], certs);
    const scale = perInvocation / measured;
    const before = {
      requestBytes: Math.round(part.requestBytes * scale),
      responseBytes: Math.round(part.responseBytes * scale),
      samples: part.samples * scale,
      ms: part.ms * scale,
    };

    // Now: the ingest handler on one Kinesis event of these batches.
    const copies = Math.max(1, Math.round(SAMPLES_PER_RUN / w.samples));
    const event = kinesisEvent(Array(copies).fill(envelope) as Buffer[], dev.thing);
    const rows = createFirehoseWriter({ client: firehose, stream: 'lake' });
    const archive = createFirehoseWriter({ client: firehose, stream: 'raw' });
    const handler = createIngestHandler({
      sink: noneSink,
      certs,
      lake: createLakeHandoff({ rows, archive }),
      log: () => {},
    });
    fake.accepted.clear();
    const t0 = performance.now();
    const res = await handler(event);
    const ms = performance.now() - t0;
    if (res.batchItemFailures.length > 0) throw new Error('bench invocation handed records back');
    const lakeRecords = fake.accepted.get('lake') ?? [];
    const maxRows = Math.max(...lakeRecords.map((r) => r.toString().trimEnd().split('\n').length));
    const samples = handler.last().lakeRows;
    const rate = (samples / ms) * 1000;
    // The largest Kinesis event Lambda hands one invocation: BatchSize records, within 6 MB.
    const eventRecordBytes = JSON.stringify(kinesisEvent([envelope], dev.thing).Records[0]).length;
    const worstRecords = Math.min(batchSize, Math.floor(LAMBDA_MAX_PAYLOAD / eventRecordBytes));
    const worstSamples = worstRecords * w.samples;
    // The handler starts no record once less than its reserve (20 s) remains: invocations to drain that event.
    const perInvocationSamples = Math.max(w.samples, (timeoutS - 20) * rate);
    const invocations = Math.ceil(worstSamples / perInvocationSamples);
    results.push({
      batch: w.name,
      samplesPerBatch: w.samples,
      signedBytes: w.message.length,
      kinesisRecordBytes: envelope.length,
      jsonBytesPerSample: Math.round(rows.stats.bytes / samples),
      before: {
        batchesPerInvocation: perInvocation,
        requestBytes: before.requestBytes,
        responseBytes: before.responseBytes,
        responseOverLimit: before.responseBytes > LAMBDA_MAX_PAYLOAD,
        samplesPerSec: Math.round((before.samples / before.ms) * 1000),
        gbSecondsPerMillionSamples: +(
          ((before.ms / 1000) * (TRANSFORM_MEMORY_MB / 1024) * 1e6) /
          before.samples
        ).toFixed(3),
      },
      now: {
        measuredBatches: copies,
        requestBytes: JSON.stringify(kinesisEvent(Array(worstRecords).fill(envelope) as Buffer[], dev.thing))
          .length,
        responseBytes: JSON.stringify(res).length,
        putRecordBatchCalls: rows.stats.calls + archive.stats.calls,
        largestCallBytes: Math.max(rows.stats.largestCallBytes, archive.stats.largestCallBytes),
        largestCallRecords: Math.max(rows.stats.largestCallRecords, archive.stats.largestCallRecords),
        largestRecordBytes: Math.max(rows.stats.largestRecordBytes, archive.stats.largestRecordBytes),
        largestRecordRows: maxRows,
        samplesPerSec: Math.round(rate),
        gbSecondsPerMillionSamples: +(((ms / 1000) * (memoryMb / 1024) * 1e6) / samples).toFixed(3),
        worstInvocation: {
          records: worstRecords,
          samples: worstSamples,
          projectedSeconds: +(worstSamples / rate).toFixed(1),
          timeoutSeconds: timeoutS,
          invocations,
        },
      },
    });
  }

  const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(
    `lake path, worst batches (ingest MemorySize ${memoryMb} MB, Timeout ${timeoutS} s, Kinesis BatchSize ${batchSize})`,
  );
  console.log('');
  console.log('Firehose transform Lambda (before): one invocation with the 1 MB processing buffer');
  console.log(
    `${'batch'.padEnd(20)} ${'samples'.padStart(7)} ${'signed'.padStart(8)} ${'batches'.padStart(8)} ${'request'.padStart(10)} ${'response'.padStart(10)} ${'≤ 6 MB?'.padStart(8)} ${'samples/s'.padStart(10)} ${'GB-s/M'.padStart(7)}`,
  );
  for (const r of results)
    console.log(
      `${r.batch.padEnd(20)} ${String(r.samplesPerBatch).padStart(7)} ${String(r.signedBytes).padStart(8)} ${String(r.before.batchesPerInvocation).padStart(8)} ${mb(r.before.requestBytes).padStart(10)} ${mb(r.before.responseBytes).padStart(10)} ${(r.before.responseOverLimit ? 'NO' : 'yes').padStart(8)} ${String(r.before.samplesPerSec).padStart(10)} ${r.before.gbSecondsPerMillionSamples.toFixed(2).padStart(7)}`,
    );
  console.log('');
  console.log(
    `ingest Lambda → Firehose Direct PUT (now): limits per call ${FIREHOSE_MAX_RECORDS_PER_CALL} records / ${kib(FIREHOSE_MAX_BYTES_PER_CALL)}, per record ${kib(FIREHOSE_MAX_RECORD_BYTES)} / ${MAX_ROWS_PER_RECORD} rows, Kinesis record ${kib(KINESIS_MAX_RECORD)}`,
  );
  console.log(
    `${'batch'.padEnd(20)} ${'Kinesis'.padStart(8)} ${'B/row'.padStart(6)} ${'request'.padStart(9)} ${'resp'.padStart(5)} ${'call max'.padStart(9)} ${'recs'.padStart(5)} ${'rec max'.padStart(8)} ${'rows'.padStart(5)} ${'samples/s'.padStart(10)} ${'GB-s/M'.padStart(7)} ${'worst invocation'.padStart(24)}`,
  );
  for (const r of results)
    console.log(
      `${r.batch.padEnd(20)} ${kib(r.kinesisRecordBytes).padStart(8)} ${String(r.jsonBytesPerSample).padStart(6)} ${mb(r.now.requestBytes).padStart(9)} ${String(r.now.responseBytes).padStart(5)} ${kib(r.now.largestCallBytes).padStart(9)} ${String(r.now.largestCallRecords).padStart(5)} ${kib(r.now.largestRecordBytes).padStart(8)} ${String(r.now.largestRecordRows).padStart(5)} ${String(r.now.samplesPerSec).padStart(10)} ${r.now.gbSecondsPerMillionSamples.toFixed(2).padStart(7)} ${`${r.now.worstInvocation.records} × ${r.now.worstInvocation.projectedSeconds} s → ${r.now.worstInvocation.invocations}`.padStart(24)}`,
    );
  console.log('');
  console.log(
    'worst invocation: the most records of this batch one Kinesis event holds (BatchSize, 6 MB), the time they ' +
      'take at the measured rate, and the invocations that drain them when each stops 20 s before the Timeout.',
  );
  console.log(`RESULT ${JSON.stringify({ memoryMb, timeoutS, batchSize, batches: results })}`);
}

try {
  await main();
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
