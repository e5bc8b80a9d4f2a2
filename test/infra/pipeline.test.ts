/**
 * The pipeline: signed batches published over mutual-TLS MQTT 5 to Mosquitto → a small forwarder playing the
 * IoT topic rule (subscribes to meterlink/v1/+/batch, adds thing, principal and receive time, puts the
 * envelope on Kinesis with partition key = thing) → moto Kinesis → ingest handler → DynamoDB → read back:
 * every sample there once, values equal, a re-published batch harmless; and the lake hand-off through moto's
 * Firehose into S3: a row per sample, each batch's envelope archived exactly as it crossed the stream.
 * The first test signs batches with cloud-contract's signBatch (and re-sends one); the second runs the real
 * agent (`meterlink run` reading a simulated SDM630 over a pty) as the box.
 */
import t from 'tap';
import { endAfterMqtt } from '../harness/exit.js';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  AttachThingPrincipalCommand,
  CreateThingCommand,
  IoTClient,
  ListThingPrincipalsCommand,
  RegisterCertificateWithoutCACommand,
} from '@aws-sdk/client-iot';
import { CreateDeliveryStreamCommand, FirehoseClient } from '@aws-sdk/client-firehose';
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { mqtt5 } from 'aws-iot-device-sdk-v2';
import { parseTopic, signBatch, valueToNumber } from '../../cloud-contract/index.js';
import { createIotCertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { archiveLines } from '../../infra-cfn/lambda/archive.js';
import { buildRuleEnvelope } from '../../infra-cfn/lambda/envelope.js';
import { createIngestHandler } from '../../infra-cfn/lambda/ingest.js';
import { createFirehoseWriter, createLakeHandoff } from '../../infra-cfn/lambda/lake.js';
import { createDynamoDbSink } from '../../infra-cfn/lambda/sinks/dynamodb.js';
import { startMosquitto, type Broker } from '../harness/mosquitto.js';
import type { Teardown } from '../harness/tmp.js';
import { testClient } from '../harness/mqtt-client.js';
import { waitFor } from '../harness/wait.js';
import { createStream, makeSamples, readEvent, createSamplesTable } from './fixtures.js';
import { spawnMeterlink } from '../harness/cli.js';
import { startRig, THING } from '../e2e/helpers.js';
import { startMotoValidCerts } from './moto-iot.js';

/**
 * The forwarder: what the batch topic rule does at IoT Core. principal() is the certificate the thing
 * connected with; Mosquitto does not expose it to subscribers, so look it up as IoT knows it.
 */
async function startForwarder(t: Teardown, broker: Broker, iot: IoTClient, kinesis: KinesisClient) {
  const fwdCert = await broker.deviceCert('rule-forwarder');
  const fwd = testClient({
    host: broker.host,
    port: broker.port,
    caFile: broker.caFile,
    clientId: 'rule-forwarder',
    certFile: fwdCert.cert,
    keyFile: fwdCert.key,
  });
  t.teardown(() => fwd.close());
  const c = await fwd.connect();
  if (!c.ok) throw new Error(`forwarder cannot connect: ${c.error}`);
  let forwarded = 0;
  const pending: Promise<unknown>[] = [];
  fwd.client.on('messageReceived', (e) => {
    const topic = parseTopic(e.message.topicName);
    if (!topic || topic.kind !== 'batch') return;
    const payload = new Uint8Array(e.message.payload as ArrayBuffer);
    pending.push(
      (async () => {
        const principals = await iot.send(new ListThingPrincipalsCommand({ thingName: topic.thing }));
        const principal = principals.principals?.[0]?.split('/').pop() as string;
        const data = buildRuleEnvelope({
          payload,
          thing: topic.thing,
          principal,
          receivedAt: Date.now(),
          topic: e.message.topicName,
        });
        await kinesis.send(
          new PutRecordCommand({ StreamName: 'batches', PartitionKey: topic.thing, Data: data }),
        );
        forwarded++;
      })(),
    );
  });
  await fwd.subscribe('meterlink/v1/+/batch');
  return { forwarded: () => forwarded, settled: () => Promise.all(pending) };
}

await t.test('Mosquitto → forwarder → Kinesis → ingest → DynamoDB', async (t) => {
  const [moto, broker] = await Promise.all([startMotoValidCerts(t), startMosquitto(t)]);
  const cfg = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
  const iot = new IoTClient(cfg);
  const kinesis = new KinesisClient({ ...cfg, requestHandler: new NodeHttpHandler() });
  const ddb = new DynamoDBClient(cfg);
  const firehose = new FirehoseClient(cfg);
  const s3 = new S3Client({ ...cfg, forcePathStyle: true });
  t.teardown(() => [iot, kinesis, ddb, firehose, s3].forEach((c) => c.destroy()));
  await createSamplesTable(ddb);
  const streamArn = await createStream(kinesis, 'batches');
  await s3.send(
    new CreateBucketCommand({
      Bucket: 'lake',
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
    }),
  );
  for (const [name, prefix] of [
    ['meterlink-lake', 'samples/'],
    ['meterlink-raw', 'raw/'],
  ])
    await firehose.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: name,
        DeliveryStreamType: 'DirectPut',
        ExtendedS3DestinationConfiguration: {
          BucketARN: 'arn:aws:s3:::lake',
          RoleARN: 'arn:aws:iam::123456789012:role/firehose',
          Prefix: prefix,
        },
      }),
    );

  // The box: a certificate from the broker's CA, registered in IoT and attached to its thing.
  const thing = 'apt-12-meterbox';
  const dev = await broker.deviceCert(thing);
  const reg = await iot.send(
    new RegisterCertificateWithoutCACommand({ certificatePem: dev.certPem, status: 'ACTIVE' }),
  );
  t.equal(reg.certificateId, dev.fingerprint, 'certificate id = SHA-256 of the DER = kid');
  await iot.send(new CreateThingCommand({ thingName: thing }));
  await iot.send(new AttachThingPrincipalCommand({ thingName: thing, principal: reg.certificateArn }));

  const fwd = await startForwarder(t, broker, iot, kinesis);

  // The box publishes five signed batches of 60 samples, and re-sends the third (PUBACK lost, say).
  const box = testClient({
    host: broker.host,
    port: broker.port,
    caFile: broker.caFile,
    clientId: thing,
    certFile: dev.cert,
    keyFile: dev.key,
  });
  t.teardown(() => box.close());
  t.match(await box.connect(), { ok: true });
  const samples = makeSamples(300);
  const batches = [0, 1, 2, 3, 4].map((i) =>
    signBatch(
      { device: thing, samples: samples.slice(i * 60, i * 60 + 60) },
      { privateKey: dev.keyPem, certDer: dev.certDer },
    ),
  );
  for (const b of [...batches, batches[2] as Uint8Array])
    await box.client.publish({
      topicName: `meterlink/v1/${thing}/batch`,
      payload: b,
      qos: mqtt5.QoS.AtLeastOnce,
    });
  await waitFor(() => fwd.forwarded() === 6, { what: 'six batches forwarded to Kinesis', timeout: 30_000 });
  await fwd.settled();

  const handler = createIngestHandler({
    sink: createDynamoDbSink({ client: ddb, table: 'samples', retentionDays: 30 }),
    certs: createIotCertificateSource({ iot }),
    lake: createLakeHandoff({
      rows: createFirehoseWriter({ client: firehose, stream: 'meterlink-lake' }),
      archive: createFirehoseWriter({ client: firehose, stream: 'meterlink-raw' }),
    }),
    log: () => {},
  });
  const event = await readEvent(kinesis, 'batches', streamArn);
  t.equal(event.Records.length, 6);
  t.same(await handler(event), { batchItemFailures: [] });
  t.match(handler.last(), { accepted: 6, rejected: 0 });

  const items = (await ddb.send(new ScanCommand({ TableName: 'samples' }))).Items ?? [];
  t.equal(items.length, 300, 'every sample there once');
  const bySeq = new Map(items.map((i) => [Number(i.seq?.N), i]));
  for (const s of samples) {
    const it = bySeq.get(s.seq);
    t.ok(it, `seq ${s.seq} stored`);
    const values = Object.fromEntries(Object.entries(it?.values?.M ?? {}).map(([k, v]) => [k, Number(v.N)]));
    const want = Object.fromEntries(Object.entries(s.values).map(([k, v]) => [k, valueToNumber(v)]));
    if (
      JSON.stringify(values) !== JSON.stringify(want) ||
      Number(it?.ts?.N) !== s.ts ||
      it?.meter?.S !== s.meter
    )
      t.fail(`seq ${s.seq} differs`);
  }

  const lines = async (prefix: string) => {
    const out = [];
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: prefix }));
    for (const o of list.Contents ?? []) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'lake', Key: o.Key }));
      out.push(...archiveLines(await got.Body!.transformToByteArray()));
    }
    return out;
  };
  const rows = (await lines('samples/')).map((l) => JSON.parse(l.toString()) as { seq: number; ts: number });
  t.equal(rows.length, 360, 'a row per sample delivered, the re-sent batch twice');
  t.same(
    [...new Set(rows.map((r) => r.seq))].sort((a, b) => a - b),
    samples.map((s) => s.seq),
    'every sample in the lake',
  );
  const archived = (await lines('raw/')).map((l) => l.toString()).sort();
  t.same(
    archived,
    event.Records.map((r) => Buffer.from(r.kinesis.data, 'base64').toString()).sort(),
    'each batch archived exactly as it crossed the stream',
  );
});

await t.test(
  'the real agent: meterlink run → Mosquitto → forwarder → Kinesis → ingest → DynamoDB',
  async (t) => {
    const rig = await startRig(t, { frozenAt: Date.UTC(2026, 0, 15, 12), maxDelay: '300ms' });
    const moto = await startMotoValidCerts(t);
    const cfg = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
    const iot = new IoTClient(cfg);
    const kinesis = new KinesisClient({ ...cfg, requestHandler: new NodeHttpHandler() });
    const ddb = new DynamoDBClient(cfg);
    t.teardown(() => [iot, kinesis, ddb].forEach((c) => c.destroy()));
    await createSamplesTable(ddb);
    const streamArn = await createStream(kinesis, 'batches');
    const reg = await iot.send(
      new RegisterCertificateWithoutCACommand({ certificatePem: rig.device.certPem, status: 'ACTIVE' }),
    );
    await iot.send(new CreateThingCommand({ thingName: THING }));
    await iot.send(new AttachThingPrincipalCommand({ thingName: THING, principal: reg.certificateArn }));
    const fwd = await startForwarder(t, rig.broker, iot, kinesis);

    const agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    await waitFor(() => fwd.forwarded() >= 8, { what: 'eight batches from the agent', timeout: 60_000 });
    await agent.kill('SIGTERM');
    t.equal(agent.child.exitCode, 0);
    await fwd.settled();

    const handler = createIngestHandler({
      sink: createDynamoDbSink({ client: ddb, table: 'samples', retentionDays: 30 }),
      certs: createIotCertificateSource({ iot }),
      log: () => {},
    });
    const event = await readEvent(kinesis, 'batches', streamArn);
    t.equal(event.Records.length, fwd.forwarded());
    t.same(await handler(event), { batchItemFailures: [] });
    t.match(handler.last(), { rejected: 0 });
    // The same records again (a Lambda retry, or the device re-sending): nothing changes.
    t.same(await handler(event), { batchItemFailures: [] });

    const items = (await ddb.send(new ScanCommand({ TableName: 'samples' }))).Items ?? [];
    const seqs = items.map((i) => Number(i.seq?.N)).sort((a, b) => a - b);
    t.ok(seqs.length >= 8, `${seqs.length} samples stored`);
    t.same(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
      'every sample from seq 1 on, each once',
    );
    const expected = rig.sim.unit(1).expected();
    for (const it of items) {
      const values = Object.fromEntries(Object.entries(it.values?.M ?? {}).map(([k, v]) => [k, Number(v.N)]));
      for (const [ch, v] of Object.entries(values))
        if (ch in expected && expected[ch] !== v)
          t.fail(`seq ${it.seq?.N} ${ch}: stored ${v}, meter served ${expected[ch]}`);
      t.equal(it.meter?.S, 'main');
    }
    t.equal(Object.keys(items[0]?.values?.M ?? {}).length >= 15, true, 'the SDM630 channels are stored');
  },
);

await endAfterMqtt(t);
