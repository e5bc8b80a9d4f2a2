/**
 * The lake hand-off (infra-cfn/lambda/lake.ts) of the ingest Lambda: rows in exactly the Glue table's
 * columns and types; the template's dt query run in jq 1.6 (Firehose's engine) against real rows; the
 * agent's worst batches within every Lambda, Firehose and Kinesis limit; records Firehose refuses retried,
 * then the Kinesis record handed back, never written off (a local PutRecordBatch stand-in, since moto never
 * refuses); and the esbuild bundle's handler running with its lake configuration against moto.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { IoTClient } from '@aws-sdk/client-iot';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { parse } from 'yaml';
import { inspectBatchMessage } from '../../cloud-contract/index.js';
import { buildLambdas } from '../../infra-cfn/build.js';
import { createIotCertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { MAX_ENVELOPE_BYTES } from '../../infra-cfn/lambda/envelope.js';
import { createIngestHandler } from '../../infra-cfn/lambda/ingest.js';
import {
  DT_QUERY,
  FIREHOSE_MAX_BYTES_PER_CALL,
  FIREHOSE_MAX_RECORD_BYTES,
  FIREHOSE_MAX_RECORDS_PER_CALL,
  MAX_ROWS_PER_RECORD,
  archiveLine,
  createFirehoseWriter,
  createLakeHandoff,
  lakeRecords,
  planCalls,
  rowDate,
} from '../../infra-cfn/lambda/lake.js';
import { noneSink } from '../../infra-cfn/lambda/sinks/sink.js';
import { makeCa } from '../harness/pki.js';
import { tempDir } from '../harness/tmp.js';
import { startFakeFirehose } from './fake-firehose.js';
import { makeSamples, registerDevice, ruleRecord } from './fixtures.js';
import { startMotoValidCerts } from './moto-iot.js';
import { worstBatches } from './worst-batches.js';

const templates = join(import.meta.dirname, '..', '..', 'infra-cfn', 'templates');
/** Kinesis: one record's data blob, at most 1 MiB. */
const KINESIS_MAX_RECORD_BYTES = 1024 * 1024;
/** Lambda: a synchronous invocation's request and response, at most 6 MB each. */
const LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

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

export function kinesisEvent(datas: Buffer[], thing = 'apt-12-meterbox'): KinesisStreamEvent {
  return {
    Records: datas.map((d, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: thing,
        sequenceNumber: String(i + 1),
        data: d.toString('base64'),
        approximateArrivalTimestamp: Date.UTC(2026, 11, 2, 8) / 1000,
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

const rowsOf = (records: readonly Buffer[]) =>
  records.flatMap((r) =>
    r
      .toString()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );

t.test('lake hand-off', async (t) => {
  const moto = await startMotoValidCerts(t);
  const iot = new IoTClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
  t.teardown(() => iot.destroy());
  const ca = await makeCa();
  const box = await registerDevice(iot, ca, 'apt-12-meterbox');
  const lake = parse(await readFile(join(templates, 'lake.yaml'), 'utf8'), { logLevel: 'silent' }) as {
    Resources: Record<string, { Properties: Record<string, unknown> }>;
  };

  t.test('rows match the Glue table schema in lake.yaml, packed newline-delimited', async (t) => {
    const table = lake.Resources.SamplesTable?.Properties as {
      TableInput: { StorageDescriptor: { Columns: GlueColumn[] } };
    };
    const columns = table.TableInput.StorageDescriptor.Columns;
    const samples = makeSamples(30, 1, Date.UTC(2025, 2, 1, 23, 59, 50));
    const payload = JSON.parse(ruleRecord(box, samples).toString()) as { payload: string };
    const d = inspectBatchMessage(Buffer.from(payload.payload, 'base64'));
    if (!d.ok) throw new Error(d.detail);
    const envelope = {
      payload: Buffer.from(payload.payload, 'base64'),
      thing: box.thing,
      principal: box.id,
      receivedAt: Date.UTC(2025, 2, 2),
      topic: `meterlink/v1/${box.thing}/batch`,
    };
    const records = lakeRecords({ envelope, batch: d.batch, kid: box.id });
    t.equal(records.length, 1, '30 rows fit one record');
    t.ok(records[0]?.toString().endsWith('\n'), 'every row ends its line');
    const rows = rowsOf(records);
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
      received_at: Date.UTC(2025, 2, 2),
    });
    const line = archiveLine(envelope);
    t.equal(line.indexOf(0x0a), line.length - 1, 'an archive line holds exactly one newline, at its end');
  });

  t.test("the template's dt query, run by jq 1.6, puts each row in its sample's UTC date", async (t) => {
    const stream = lake.Resources.DeliveryStream?.Properties as {
      ExtendedS3DestinationConfiguration: {
        Prefix: string;
        ProcessingConfiguration: {
          Processors: { Type: string; Parameters: { ParameterName: string; ParameterValue: string }[] }[];
        };
      };
    };
    const s3 = stream.ExtendedS3DestinationConfiguration;
    const extraction = s3.ProcessingConfiguration.Processors.find((p) => p.Type === 'MetadataExtraction');
    const param = (n: string) => extraction?.Parameters.find((p) => p.ParameterName === n)?.ParameterValue;
    t.equal(param('MetadataExtractionQuery'), DT_QUERY, 'lake.yaml runs lake.ts DT_QUERY');
    t.equal(param('JsonParsingEngine'), 'JQ-1.6');
    t.match(s3.Prefix, /dt=!\{partitionKeyFromQuery:dt\}\//);
    const deagg = s3.ProcessingConfiguration.Processors.find((p) => p.Type === 'RecordDeAggregation');
    t.same(deagg?.Parameters, [{ ParameterName: 'SubRecordType', ParameterValue: 'JSON' }]);

    const version = spawnSync('jq', ['--version'], { encoding: 'utf8' });
    t.equal(version.stdout.trim(), 'jq-1.6', 'the jq Firehose documents');
    // Around midnight UTC, and the last millisecond of a day.
    const samples = makeSamples(40, 1, Date.UTC(2026, 11, 31, 23, 59, 40));
    samples[5] = { ...samples[5]!, ts: Date.UTC(2026, 11, 31, 23, 59, 59, 999) };
    const payload = JSON.parse(ruleRecord(box, samples).toString()) as { payload: string };
    const d = inspectBatchMessage(Buffer.from(payload.payload, 'base64'));
    if (!d.ok) throw new Error(d.detail);
    const input = lakeRecords({
      envelope: {
        payload: Buffer.from(payload.payload, 'base64'),
        thing: box.thing,
        principal: box.id,
        receivedAt: 1,
        topic: 'x',
      },
      batch: d.batch,
      kid: box.id,
    });
    const jq = spawnSync('jq', ['-c', DT_QUERY], { input: Buffer.concat(input), encoding: 'utf8' });
    t.equal(jq.status, 0, jq.stderr);
    const got = jq.stdout
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { dt: string }).dt);
    t.same(
      got,
      samples.map((s) => rowDate(s.ts)),
      'jq and rowDate agree on every row',
    );
    t.same([...new Set(got)], ['2026-12-31', '2027-01-01'], 'a batch across midnight lands in two dates');
    t.equal(got[5], '2026-12-31');
  });

  t.test('the worst batches the agent sends stay within every limit on the path', async (t) => {
    const fake = await startFakeFirehose(t);
    const firehose = new FirehoseClient({
      endpoint: fake.endpoint,
      region: 'eu-west-1',
      credentials: moto.credentials,
    });
    t.teardown(() => firehose.destroy());
    const rows = createFirehoseWriter({ client: firehose, stream: 'lake' });
    const archive = createFirehoseWriter({ client: firehose, stream: 'raw' });
    const handler = createIngestHandler({
      sink: noneSink,
      certs: createIotCertificateSource({ iot }),
      lake: createLakeHandoff({ rows, archive }),
      log: () => {},
    });
    let total = 0;
    for (const w of worstBatches(box)) {
      total += w.samples;
      const envelope = ruleRecord(box, [], { payload: w.message });
      t.ok(envelope.length <= MAX_ENVELOPE_BYTES, `${w.name}: envelope ${envelope.length} B`);
      t.ok(envelope.length <= KINESIS_MAX_RECORD_BYTES, `${w.name}: Kinesis record ≤ 1 MiB`);
      const before = fake.calls.length;
      const event = kinesisEvent([envelope]);
      t.ok(JSON.stringify(event).length <= LAMBDA_MAX_PAYLOAD_BYTES, `${w.name}: Lambda request ≤ 6 MB`);
      const res = await handler(event);
      t.same(res, { batchItemFailures: [] });
      t.ok(JSON.stringify(res).length <= LAMBDA_MAX_PAYLOAD_BYTES, `${w.name}: Lambda response ≤ 6 MB`);
      t.equal(handler.last().lakeRows, w.samples, `${w.name}: ${w.samples} rows handed off`);
      const calls = fake.calls.slice(before);
      for (const c of calls) {
        t.ok(c.records <= FIREHOSE_MAX_RECORDS_PER_CALL, `${w.name}: ${c.records} records in a call`);
        t.ok(c.bytes <= FIREHOSE_MAX_BYTES_PER_CALL, `${w.name}: ${c.bytes} B in a call`);
      }
      const lakeCalls = calls.filter((c) => c.stream === 'lake');
      t.comment(
        `${w.name}: ${w.samples} samples, ${w.message.length} B signed → ${lakeCalls.length} PutRecordBatch ` +
          `calls, largest ${Math.max(...lakeCalls.map((c) => c.bytes))} B`,
      );
    }
    t.ok(rows.stats.largestRecordBytes <= FIREHOSE_MAX_RECORD_BYTES, 'every row record ≤ 1,000 KiB');
    t.ok(archive.stats.largestRecordBytes <= FIREHOSE_MAX_RECORD_BYTES, 'every archive line ≤ 1,000 KiB');
    const delivered = rowsOf(fake.accepted.get('lake') ?? []);
    t.equal(delivered.length, total, 'every row delivered');
    for (const r of fake.accepted.get('lake') ?? []) {
      const n = r.toString().trimEnd().split('\n').length;
      if (n > MAX_ROWS_PER_RECORD) t.fail(`a record holds ${n} rows; Firehose de-aggregates at most 500`);
    }
    t.equal(fake.accepted.get('raw')?.length, 5, 'one archive line per batch');
  });

  t.test('planCalls cuts at 500 records and at 4 MiB', async (t) => {
    const small = Array.from({ length: 1201 }, () => Buffer.alloc(10));
    t.same(
      planCalls(small).map((c) => c.length),
      [500, 500, 201],
    );
    const big = Array.from({ length: 9 }, () => Buffer.alloc(FIREHOSE_MAX_RECORD_BYTES));
    const calls = planCalls(big);
    t.same(
      calls.map((c) => c.length),
      [4, 4, 1],
    );
    t.throws(() => planCalls([Buffer.alloc(FIREHOSE_MAX_RECORD_BYTES + 1)]), { code: 'LAKE_REJECTED' });
  });

  t.test(
    'records Firehose refuses are sent again; when it keeps refusing, the record goes back',
    async (t) => {
      const fake = await startFakeFirehose(t);
      const firehose = new FirehoseClient({
        endpoint: fake.endpoint,
        region: 'eu-west-1',
        credentials: moto.credentials,
        maxAttempts: 1,
      });
      t.teardown(() => firehose.destroy());
      const slept: number[] = [];
      const writer = (stream: string) =>
        createFirehoseWriter({
          client: firehose,
          stream,
          attempts: 4,
          backoff: (a) => a * 100,
          sleep: async (ms) => void slept.push(ms),
        });
      const logs: string[] = [];
      const handler = createIngestHandler({
        sink: noneSink,
        certs: createIotCertificateSource({ iot }),
        lake: createLakeHandoff({ rows: writer('lake'), archive: writer('raw') }),
        log: (l) => logs.push(l),
        samplesPerWrite: 600,
      });
      // Three batches of 600 samples: 2 row records each, one flush per batch.
      const event = kinesisEvent(
        [0, 1, 2].map((i) =>
          ruleRecord(box, makeSamples(600, 1 + i * 600, Date.UTC(2026, 11, 2) + i * 600_000)),
        ),
      );

      // First call of each stream: records 0 and 1 refused (FailedPutCount 2), then all accepted.
      fake.plan = (call) => (call < 2 ? { fail: (i) => i < 2 } : { fail: () => false });
      t.same(await handler(event), { batchItemFailures: [] }, 'partial failures retried inside the call');
      t.same(slept, [100, 100], 'one backoff per stream');
      const resent = fake.calls.filter((c) => c.failed === 0 && c.records <= 2);
      t.ok(resent.length >= 2, 'only the refused records were sent again');
      const rows = rowsOf(fake.accepted.get('lake') ?? []);
      t.equal(rows.length, 1800, 'every row once');
      t.equal(new Set(rows.map((r) => r.seq)).size, 1800);
      t.equal(fake.accepted.get('raw')?.length, 3, 'every batch archived once');

      // From the 2nd batch on, Firehose throttles every call: the 2nd record goes back to Lambda.
      fake.accepted.clear();
      const from = fake.calls.length;
      fake.plan = (call) => (call < from + 2 ? { fail: () => false } : { throttle: true });
      const res = await handler(event);
      t.same(res, { batchItemFailures: [{ itemIdentifier: '2' }] }, 'handed back from the failed batch on');
      t.match(handler.last(), { accepted: 2, retried: 2 });
      t.ok(
        logs.some((l) => l.includes('LAKE_UNAVAILABLE') && l.includes('"sequenceNumber":"2"')),
        'logged with its code',
      );
      // Lambda retries from record 2 once Firehose recovers: everything arrives.
      fake.plan = () => ({ fail: () => false });
      const retry = { Records: event.Records.slice(1) };
      t.same(await handler(retry), { batchItemFailures: [] });
      const seqs = new Set(rowsOf(fake.accepted.get('lake') ?? []).map((r) => r.seq));
      t.equal(seqs.size, 1800, 'no row lost across the failure');
    },
  );

  t.test('near the function timeout, the records not yet started go back to Lambda', async (t) => {
    const fake = await startFakeFirehose(t);
    const firehose = new FirehoseClient({
      endpoint: fake.endpoint,
      region: 'eu-west-1',
      credentials: moto.credentials,
    });
    t.teardown(() => firehose.destroy());
    const handler = createIngestHandler({
      sink: noneSink,
      certs: createIotCertificateSource({ iot }),
      lake: createLakeHandoff({
        rows: createFirehoseWriter({ client: firehose, stream: 'lake' }),
        archive: createFirehoseWriter({ client: firehose, stream: 'raw' }),
      }),
      log: () => {},
      reserveMs: 20_000,
    });
    const event = kinesisEvent(
      [0, 1, 2, 3].map((i) =>
        ruleRecord(box, makeSamples(50, 1 + i * 50, Date.UTC(2026, 11, 2) + i * 50_000)),
      ),
    );
    // Lambda's clock: plenty of time for the first two records, then less than the reserve.
    let asked = 0;
    const clock = { getRemainingTimeInMillis: () => (++asked >= 2 ? 19_999 : 60_000) };
    t.same(await handler(event, clock), { batchItemFailures: [{ itemIdentifier: '3' }] });
    t.match(handler.last(), { accepted: 2, retried: 2, lakeRows: 100 });
    t.equal(rowsOf(fake.accepted.get('lake') ?? []).length, 100, 'what was started is delivered');
    t.same(await handler({ Records: event.Records.slice(2) }), { batchItemFailures: [] });
    t.equal(rowsOf(fake.accepted.get('lake') ?? []).length, 200, 'the rest on the retry');
  });

  t.test('the esbuild bundle builds and its handler runs with the lake configured (moto)', async (t) => {
    const out = await tempDir(t, 'meterlink-bundle-');
    const built = await buildLambdas(out);
    t.same(
      built.map((b) => b.name),
      ['ingest', 'provisioning-hook'],
    );
    for (const b of built)
      t.ok(b.bytes > 10_000 && b.bytes < 5_000_000, `${b.name} bundle is ${b.bytes} bytes`);
    const fake = await startFakeFirehose(t);
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_REGION: moto.region,
      AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
      AWS_ENDPOINT_URL_IOT: moto.endpoint,
      AWS_ENDPOINT_URL_FIREHOSE: fake.endpoint,
      HOT_STORE: 'none',
      LAKE_DELIVERY_STREAM: 'meterlink-lake',
      ARCHIVE_DELIVERY_STREAM: 'meterlink-raw',
    });
    const log = console.log;
    const lines: string[] = [];
    console.log = (l: string) => lines.push(l);
    t.teardown(() => {
      console.log = log;
      process.env = saved;
    });
    const ingest = (await import(pathToFileURL(join(out, 'ingest', 'index.mjs')).href)) as {
      handler: (e: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>;
    };
    const samples = makeSamples(30);
    t.same(await ingest.handler(kinesisEvent([ruleRecord(box, samples), Buffer.from('{}')])), {
      batchItemFailures: [],
    });
    t.ok(
      lines.some((l) => l.includes('"AcceptedRecords":1') && l.includes('"RejectedRecords":1')),
      'bundled ingest verified one, rejected one',
    );
    t.equal(rowsOf(fake.accepted.get('meterlink-lake') ?? []).length, 30, 'rows through the bundle');
    t.equal(fake.accepted.get('meterlink-raw')?.length, 1, 'archive line through the bundle');
  });
});
