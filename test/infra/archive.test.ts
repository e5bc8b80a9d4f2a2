/**
 * The system of record, through emulated AWS (moto: IoT, Kinesis, Firehose with S3 destinations, S3):
 * batches on Kinesis → the ingest handler with its lake hand-off built from the Lambda environment →
 * rows under samples/, each accepted batch's exact envelope under raw/dt=<day>/, each rejected record under
 * rejected/dt=<day>/<reason>/. Then `lake:rebuild` reads the archive back (GZIP too), verifies every
 * signature again, and sends the same rows to a Firehose stream; a tampered archive line is refused.
 *
 * moto's Firehose writes one S3 object per PutRecordBatch call and does not expand `!{timestamp:...}`
 * prefixes; the raw stream here is created with the prefix real Firehose resolves for today's arrivals.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { CreateDeliveryStreamCommand, FirehoseClient } from '@aws-sdk/client-firehose';
import { IoTClient } from '@aws-sdk/client-iot';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { encodeBatch } from '../../cloud-contract/index.js';
import { HELP, rebuildLake } from '../../infra-cfn/lake-rebuild.js';
import { archiveLines, archivePrefix, daysBetween } from '../../infra-cfn/lambda/archive.js';
import { createIotCertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { createIngestHandler } from '../../infra-cfn/lambda/ingest.js';
import { lakeFromEnv } from '../../infra-cfn/lambda/lake-env.js';
import { createFirehoseWriter } from '../../infra-cfn/lambda/lake.js';
import { noneSink } from '../../infra-cfn/lambda/sinks/sink.js';
import { repoRoot, tsNodeArgs } from '../harness/cli.js';
import { makeCa } from '../harness/pki.js';
import { createStream, makeSamples, putRecords, readEvent, registerDevice, ruleRecord } from './fixtures.js';
import { startMotoValidCerts } from './moto-iot.js';

const BUCKET = 'meterlink-lake';

t.test('raw archive and lake rebuild', async (t) => {
  const moto = await startMotoValidCerts(t);
  const cfg = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
  const iot = new IoTClient(cfg);
  const kinesis = new KinesisClient({ ...cfg, requestHandler: new NodeHttpHandler() });
  const firehose = new FirehoseClient(cfg);
  const s3 = new S3Client({ ...cfg, forcePathStyle: true });
  t.teardown(() => [iot, kinesis, firehose, s3].forEach((c) => c.destroy()));

  const today = new Date().toISOString().slice(0, 10);
  await s3.send(
    new CreateBucketCommand({
      Bucket: BUCKET,
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
    }),
  );
  const stream = async (name: string, prefix: string) =>
    firehose.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: name,
        DeliveryStreamType: 'DirectPut',
        ExtendedS3DestinationConfiguration: {
          BucketARN: `arn:aws:s3:::${BUCKET}`,
          RoleARN: 'arn:aws:iam::123456789012:role/firehose',
          Prefix: prefix,
        },
      }),
    );
  await stream('meterlink-lake', 'samples/');
  await stream('meterlink-raw', archivePrefix(today));
  await stream('rebuilt', 'rebuilt/');

  const ca = await makeCa();
  const box = await registerDevice(iot, ca, 'apt-12-meterbox');
  const box2 = await registerDevice(iot, ca, 'apt-13-meterbox');
  const good = [
    ruleRecord(box, makeSamples(120, 1, Date.UTC(2026, 11, 1, 23, 59))),
    ruleRecord(box2, makeSamples(40, 1)),
    ruleRecord(box, makeSamples(60, 121, Date.UTC(2026, 11, 2, 0, 1))),
  ];
  const tampered = JSON.parse(ruleRecord(box, makeSamples(5, 500)).toString()) as { payload: string };
  const bytes = Buffer.from(tampered.payload, 'base64');
  bytes[bytes.length - 70] = (bytes[bytes.length - 70] ?? 0) ^ 0x01;
  tampered.payload = bytes.toString('base64');
  const tamperedRecord = Buffer.from(JSON.stringify(tampered));
  const unsigned = ruleRecord(box, [], {
    payload: encodeBatch({ device: box.thing, samples: makeSamples(3, 600) }),
  });

  const streamArn = await createStream(kinesis, 'batches');
  await putRecords(kinesis, 'batches', [
    { thing: box.thing, data: good[0] as Buffer },
    { thing: box.thing, data: tamperedRecord },
    { thing: box2.thing, data: good[1] as Buffer },
    { thing: box.thing, data: unsigned },
    { thing: box.thing, data: good[2] as Buffer },
  ]);
  const event = await readEvent(kinesis, 'batches', streamArn);

  const lake = lakeFromEnv(
    { LAKE_DELIVERY_STREAM: 'meterlink-lake', ARCHIVE_DELIVERY_STREAM: 'meterlink-raw', LAKE_BUCKET: BUCKET },
    { firehose: () => firehose, s3: () => s3 },
  );
  if (!lake) throw new Error('lake not configured');
  const handler = createIngestHandler({
    sink: noneSink,
    certs: createIotCertificateSource({ iot }),
    lake,
    log: () => {},
  });

  const objects = async (prefix: string) => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    const got = [];
    for (const o of out.Contents ?? []) {
      const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.Key }));
      got.push({ key: o.Key as string, body: Buffer.from(await r.Body!.transformToByteArray()) });
    }
    return got;
  };
  const rowsUnder = async (prefix: string) =>
    (await objects(prefix))
      .flatMap((o) => archiveLines(o.body))
      .map((l) => l.toString())
      .sort();

  t.test('ingest: rows, the exact accepted envelopes, and each rejection with its reason', async (t) => {
    t.same(await handler(event), { batchItemFailures: [] });
    t.match(handler.last(), { accepted: 3, rejected: 2, rejectedStored: 2, lakeRows: 220 });

    const rejected = await objects('rejected/');
    t.same(
      rejected.map((o) => o.key.split('/').slice(0, 3).join('/')).sort(),
      [`rejected/dt=${today}/BAD_SIGNATURE`, `rejected/dt=${today}/TOO_DEEP`],
      'under the error prefix, by date and reason',
    );
    const sig = JSON.parse(rejected.find((o) => o.key.includes('BAD_SIGNATURE'))!.body.toString()) as {
      reason: string;
      thing: string;
      data: string;
    };
    t.equal(sig.reason, 'BAD_SIGNATURE');
    t.equal(sig.thing, box.thing);
    t.ok(Buffer.from(sig.data, 'base64').equals(tamperedRecord), 'the record exactly as it arrived');

    const raw = (await objects(archivePrefix(today))).flatMap((o) => archiveLines(o.body));
    t.equal(raw.length, 3, 'one archive line per accepted batch, none for the rejected');
    t.same(
      raw.map((l) => l.toString()).sort(),
      good.map((g) => g.toString()).sort(),
      'each line is the envelope IoT Core put on the stream, byte for byte',
    );

    const rows = await rowsUnder('samples/');
    t.equal(rows.length, 220, 'one row per accepted sample');
  });

  t.test('lake:rebuild re-verifies the archive and sends the same rows again', async (t) => {
    // The same records again (a Lambda retry): the archive now holds every batch twice.
    t.same(await handler(event), { batchItemFailures: [] });
    // A GZIP copy, as real Firehose writes it, and a line whose signed bytes were altered in the bucket.
    const first = (await objects(archivePrefix(today)))[0]!;
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: `${archivePrefix(today)}copy.gz`,
        Body: gzipSync(first.body),
      }),
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: `${archivePrefix(today)}altered`,
        Body: Buffer.concat([tamperedRecord, Buffer.from('\n')]),
      }),
    );

    const progress: string[] = [];
    const certs = createIotCertificateSource({ iot });
    const dry = await rebuildLake(
      { bucket: BUCKET, from: today, to: today, dryRun: true },
      { s3, certs, progress: (l) => progress.push(l) },
    );
    t.match(dry, { days: 1, verified: 3, rows: 220 });
    t.ok(dry.duplicates >= 3, `${dry.duplicates} duplicate archive lines sent once`);
    t.same(
      dry.rejected.map((r) => r.reason),
      ['BAD_SIGNATURE'],
      'the altered line fails verification',
    );
    t.match(progress, [new RegExp(`^${today}: \\d+ objects, \\d+ batches, 220 rows \\(dry run`)]);
    t.same(await objects('rebuilt/'), [], 'a dry run sends nothing');

    const sent = await rebuildLake(
      { bucket: BUCKET, from: today, to: today, dryRun: false },
      { s3, certs, rows: createFirehoseWriter({ client: firehose, stream: 'rebuilt' }) },
    );
    t.match(sent, { verified: 3, rows: 220 });
    const ingested = await rowsUnder('samples/');
    t.equal(ingested.length, 440, 'ingest ran twice: its rows repeat');
    t.same(
      await rowsUnder('rebuilt/'),
      [...new Set(ingested)],
      'rebuilt rows = the rows ingest sent, each once',
    );

    const other = await rebuildLake(
      { bucket: BUCKET, from: '2026-01-01', to: '2026-01-03', dryRun: true },
      { s3, certs },
    );
    t.match(other, { days: 3, objects: 0, rows: 0 }, 'days without archive objects');
  });

  t.test('lake:rebuild on the command line', async (t) => {
    const cli = (args: string[]) =>
      spawnSync(process.execPath, [...tsNodeArgs(), `${repoRoot}infra-cfn/lake-rebuild.ts`, ...args], {
        encoding: 'utf8',
        env: {
          ...process.env,
          AWS_ENDPOINT_URL: moto.endpoint,
          AWS_REGION: moto.region,
          AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        },
        timeout: 60_000,
      });
    const help = cli(['--help']);
    t.equal(help.status, 0);
    t.equal(help.stdout, HELP);
    t.match(help.stdout, /Example:\n {2}npm run lake:rebuild -- --bucket/);
    const missing = cli(['--from', today]);
    t.equal(missing.status, 2);
    t.match(missing.stderr, /missing --bucket, --delivery-stream \(or --dry-run\)/);
    const dry = cli(['--bucket', BUCKET, '--from', today, '--dry-run']);
    t.equal(dry.status, 1, 'exit 1: a batch failed verification');
    t.match(dry.stdout, new RegExp(`${today}: \\d+ objects`));
    t.match(dry.stdout, /3 verified, 1 rejected, 220 rows in \d+ Firehose records — dry run, nothing sent/);
    t.match(dry.stderr, /rejected BAD_SIGNATURE in raw\/dt=.*altered/);
  });

  t.test('date ranges', async (t) => {
    t.same(daysBetween('2026-12-30', '2027-01-02'), ['2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02']);
    t.throws(() => daysBetween('2026-12-02', '2026-12-01'), RangeError);
    t.throws(() => daysBetween('2026-12', '2026-12-01'), RangeError);
  });
});
