/**
 * The Firehose transform against moto's IoT: verified batches become one JSON row per sample whose columns
 * and types are exactly the Glue table's in lake.yaml; rejected records become ProcessingFailed. And the
 * esbuild bundles: both build, and their handlers run (ingest and transform) against moto.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IoTClient } from '@aws-sdk/client-iot';
import type {
  FirehoseTransformationEvent,
  FirehoseTransformationResult,
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
} from 'aws-lambda';
import { parse } from 'yaml';
import { buildLambdas } from '../../infra-cfn/build.js';
import { createIotCertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { createTransformHandler } from '../../infra-cfn/lambda/transform.js';
import { makeCa } from '../harness/pki.js';
import { tempDir } from '../harness/tmp.js';
import { makeSamples, registerDevice, ruleRecord } from './fixtures.js';
import { startMotoValidCerts } from './moto-iot.js';

const lake = join(import.meta.dirname, '..', '..', 'infra-cfn', 'templates', 'lake.yaml');

interface GlueColumn {
  Name: string;
  Type: string;
}

function matchesGlueType(type: string, v: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'bigint':
    case 'int':
      return Number.isSafeInteger(v) && (type === 'bigint' || Math.abs(v as number) < 2 ** 31);
    case 'timestamp': // HiveJsonSerDe with TimestampFormats: [millis]
      return Number.isSafeInteger(v) && (v as number) > 0;
    case 'array<string>':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'map<string,double>':
      return (
        typeof v === 'object' &&
        v !== null &&
        !Array.isArray(v) &&
        Object.values(v).every((x) => typeof x === 'number' && Number.isFinite(x))
      );
    default:
      return false;
  }
}

const firehoseEvent = (datas: Buffer[]): FirehoseTransformationEvent => ({
  invocationId: 'inv-1',
  deliveryStreamArn: 'arn:aws:firehose:eu-west-1:123456789012:deliverystream/meterlink-lake',
  sourceKinesisStreamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/meterlink-batches',
  region: 'eu-west-1',
  records: datas.map((d, i) => ({
    recordId: `r${i}`,
    approximateArrivalTimestamp: Date.now(),
    data: d.toString('base64'),
  })),
});

t.test('transform and bundles', async (t) => {
  const moto = await startMotoValidCerts(t);
  const iot = new IoTClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
  t.teardown(() => iot.destroy());
  const ca = await makeCa();
  const box = await registerDevice(iot, ca, 'apt-12-meterbox');
  const other = await registerDevice(iot, ca, 'apt-13-meterbox');
  const samples = makeSamples(30, 1, Date.UTC(2025, 2, 1, 23, 59, 50));
  const event = firehoseEvent([
    ruleRecord(box, samples),
    ruleRecord(box, makeSamples(2, 100), { signer: other }),
    Buffer.from('garbage'),
  ]);

  t.test('rows match the Glue table schema in lake.yaml', async (t) => {
    const template = parse(await readFile(lake, 'utf8'), { logLevel: 'silent' }) as {
      Resources: {
        SamplesTable: { Properties: { TableInput: { StorageDescriptor: { Columns: GlueColumn[] } } } };
      };
    };
    const columns = template.Resources.SamplesTable.Properties.TableInput.StorageDescriptor.Columns;
    const logs: string[] = [];
    const h = createTransformHandler({
      certs: createIotCertificateSource({ iot }),
      log: (l) => logs.push(l),
    });
    const out = await h(event);
    t.same(
      out.records.map((r) => r.result),
      ['Ok', 'ProcessingFailed', 'ProcessingFailed'],
    );
    const ok = out.records[0];
    t.same(ok?.metadata?.partitionKeys, { dt: '2025-03-01' }, 'dt = UTC date of the first sample');
    t.equal(
      out.records[1]?.data,
      event.records[1]?.data,
      'a failed record keeps its original data for the error prefix',
    );
    const rows = Buffer.from(ok?.data ?? '', 'base64')
      .toString()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    t.equal(rows.length, 30, 'one row per sample');
    for (const row of rows) {
      t.same(Object.keys(row).sort(), columns.map((c) => c.Name).sort(), 'row keys = Glue columns');
      for (const c of columns)
        t.ok(
          matchesGlueType(c.Type, row[c.Name]),
          `${c.Name}: ${JSON.stringify(row[c.Name])} is a ${c.Type}`,
        );
    }
    t.match(rows[3], {
      device: box.thing,
      meter: 'pv',
      seq: 4,
      flags: 1,
      missing: ['current_l1_a'],
      kid: box.id,
      readings: { energy_import_kwh: 12345.681 },
    });
    t.ok(logs.some((l) => l.includes('PRINCIPAL_MISMATCH')));
  });

  t.test('the esbuild bundles build and their handlers run', async (t) => {
    const out = await tempDir(t, 'meterlink-bundle-');
    const built = await buildLambdas(out);
    t.same(
      built.map((b) => b.name),
      ['ingest', 'transform'],
    );
    for (const b of built)
      t.ok(b.bytes > 10_000 && b.bytes < 5_000_000, `${b.name} bundle is ${b.bytes} bytes`);
    // The bundles read their configuration from the Lambda environment; point the SDK at moto.
    Object.assign(process.env, {
      AWS_REGION: moto.region,
      AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
      AWS_ENDPOINT_URL_IOT: moto.endpoint,
      HOT_STORE: 'none',
    });
    const log = console.log;
    const lines: string[] = [];
    console.log = (l: string) => lines.push(l);
    t.teardown(() => {
      console.log = log;
    });
    const ingest = (await import(pathToFileURL(join(out, 'ingest', 'index.mjs')).href)) as {
      handler: (e: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>;
    };
    const kEvent: KinesisStreamEvent = {
      Records: [ruleRecord(box, samples), Buffer.from('{}')].map((d, i) => ({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: box.thing,
          sequenceNumber: String(i + 1),
          data: d.toString('base64'),
          approximateArrivalTimestamp: 1,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `s:${i}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/x',
        awsRegion: 'eu-west-1',
        eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/x',
      })),
    };
    t.same(await ingest.handler(kEvent), { batchItemFailures: [] });
    t.ok(
      lines.some((l) => l.includes('"AcceptedRecords":1') && l.includes('"RejectedRecords":1')),
      'bundled ingest verified one, rejected one',
    );
    const transform = (await import(pathToFileURL(join(out, 'transform', 'index.mjs')).href)) as {
      handler: (e: FirehoseTransformationEvent) => Promise<FirehoseTransformationResult>;
    };
    const res = await transform.handler(event);
    t.same(
      res.records.map((r) => r.result),
      ['Ok', 'ProcessingFailed', 'ProcessingFailed'],
    );
  });
});
