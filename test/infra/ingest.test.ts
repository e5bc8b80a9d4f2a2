/**
 * The ingest handler against emulated AWS: device certificates registered in moto's IoT, records put on and
 * read back from moto's Kinesis, samples written to moto's DynamoDB. Hostile records are rejected and
 * counted without failing the batch; lookup and store outages hand records back for retry.
 */
import t from 'tap';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { IoTClient } from '@aws-sdk/client-iot';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { encodeBatch } from '../../cloud-contract/index.js';
import { createIotCertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { buildRuleEnvelope, parseRuleEnvelope } from '../../infra-cfn/lambda/envelope.js';
import { createIngestHandler } from '../../infra-cfn/lambda/ingest.js';
import { createDynamoDbSink } from '../../infra-cfn/lambda/sinks/dynamodb.js';
import { freePort } from '../harness/net.js';
import { issueCert, makeCa } from '../harness/pki.js';
import {
  createStream,
  makeSamples,
  putRecords,
  readEvent,
  registerDevice,
  ruleRecord,
  createSamplesTable,
} from './fixtures.js';
import { startMotoValidCerts } from './moto-iot.js';

t.test('ingest handler', async (t) => {
  const moto = await startMotoValidCerts(t);
  const cfg = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
  const iot = new IoTClient(cfg);
  // moto speaks HTTP/1.1; the Kinesis client defaults to HTTP/2 (for SubscribeToShard).
  const kinesis = new KinesisClient({ ...cfg, requestHandler: new NodeHttpHandler() });
  const ddb = new DynamoDBClient(cfg);
  t.teardown(() => [iot, kinesis, ddb].forEach((c) => c.destroy()));
  await createSamplesTable(ddb);
  const ca = await makeCa();
  const box = await registerDevice(iot, ca, 'apt-12-meterbox');
  const other = await registerDevice(iot, ca, 'apt-13-meterbox');
  const disabled = await registerDevice(iot, ca, 'apt-14-meterbox', 'INACTIVE');
  // Never registered in IoT: its kid matches the connection's principal, but IoT does not know it.
  const g = await issueCert(ca, { cn: 'ghost' });
  const ghost = {
    thing: 'ghost',
    keyPem: g.keyPem,
    certPem: g.certPem,
    certDer: g.certDer,
    id: g.fingerprint,
  };

  const stream = 'batches';
  const streamArn = await createStream(kinesis, stream);
  const certs = createIotCertificateSource({ iot });
  const logs: string[] = [];
  const sink = createDynamoDbSink({ client: ddb, table: 'samples', retentionDays: 30 });
  const handler = createIngestHandler({ sink, certs, log: (l) => logs.push(l), samplesPerWrite: 50 });

  const good1 = makeSamples(40, 1);
  const good2 = makeSamples(40, 41, Date.UTC(2025, 0, 15, 13));
  const tampered = Buffer.from(ruleRecord(box, makeSamples(5, 500)));
  const env = JSON.parse(tampered.toString()) as { payload: string };
  const bytes = Buffer.from(env.payload, 'base64');
  bytes[bytes.length - 70] = (bytes[bytes.length - 70] ?? 0) ^ 0x01; // a payload byte, before the signature
  env.payload = bytes.toString('base64');

  await putRecords(kinesis, stream, [
    { thing: box.thing, data: ruleRecord(box, good1) },
    { thing: box.thing, data: Buffer.from(JSON.stringify(env)) },
    // unsigned: the bare CBOR document, no COSE_Sign1 around it
    {
      thing: box.thing,
      data: ruleRecord(box, [], {
        payload: encodeBatch({ device: box.thing, samples: makeSamples(3, 600) }),
      }),
    },
    // signed by another box's key, sent over box's connection
    { thing: box.thing, data: ruleRecord(box, makeSamples(3, 700), { signer: other }) },
    // box's own signature, but the batch claims another device
    { thing: box.thing, data: ruleRecord(box, makeSamples(3, 800), { device: other.thing }) },
    // box's valid, ACTIVE certificate signing for another thing, on that thing's topic: not attached to it
    {
      thing: other.thing,
      data: ruleRecord(box, makeSamples(3, 1100), { thing: other.thing, device: other.thing }),
    },
    { thing: disabled.thing, data: ruleRecord(disabled, makeSamples(3, 900)) },
    { thing: ghost.thing, data: ruleRecord(ghost, makeSamples(3, 1000)) },
    { thing: box.thing, data: Buffer.from('{"payload": 12') },
    { thing: box.thing, data: Buffer.from('[]') },
    { thing: box.thing, data: ruleRecord(box, good2) },
  ]);
  const event = await readEvent(kinesis, stream, streamArn);
  t.equal(event.Records.length, 11, 'records read back from Kinesis');

  const scan = async () => {
    const out = await ddb.send(new ScanCommand({ TableName: 'samples' }));
    return (out.Items ?? []).map((i) => JSON.stringify(i)).sort();
  };

  t.test(
    'accepts the good batches, rejects and counts every hostile one, never fails the batch',
    async (t) => {
      const res = await handler(event);
      t.same(res.batchItemFailures, [], 'no record handed back');
      const s = handler.last();
      t.equal(s.accepted, 2);
      t.equal(s.rejected, 9);
      t.same(s.rejectedByReason, {
        BAD_SIGNATURE: 1,
        TOO_DEEP: 1, // the bare CBOR document is deeper than a COSE_Sign1 envelope may be
        PRINCIPAL_MISMATCH: 1,
        DEVICE_MISMATCH: 1,
        CERT_NOT_ACTIVE: 1,
        CERT_NOT_ATTACHED: 1,
        UNKNOWN_KID: 1,
        BAD_ENVELOPE: 2,
      });
      t.equal(s.samplesWritten, 80);
      const items = await scan();
      t.equal(items.length, 80, 'every good sample stored once, nothing from the rejected ones');
      const metric = logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => '_aws' in l && 'RejectedRecords' in l);
      t.match(metric, { RejectedRecords: 9, AcceptedRecords: 2, SamplesWritten: 80 }, 'EMF metrics line');
      t.ok(
        logs.some((l) => l.includes('"reason":"PRINCIPAL_MISMATCH"') && l.includes(box.thing)),
        'rejection logged with reason and thing',
      );
    },
  );

  t.test('a re-delivered batch changes nothing; the certificate cache is warm', async (t) => {
    const before = await scan();
    const misses = certs.stats.misses;
    const res = await handler(event);
    t.same(res.batchItemFailures, []);
    t.same(await scan(), before, 'table unchanged');
    t.equal(certs.stats.misses, misses, 'no new IoT lookups');
    t.ok(certs.stats.hits > 0);
  });

  t.test('an IoT outage hands the record back (retry), not a rejection', async (t) => {
    const deadIot = new IoTClient({
      ...cfg,
      endpoint: `http://127.0.0.1:${await freePort()}`,
      maxAttempts: 1,
    });
    t.teardown(() => deadIot.destroy());
    const h = createIngestHandler({
      sink,
      certs: createIotCertificateSource({ iot: deadIot }),
      log: () => {},
    });
    const res = await h(event);
    t.same(
      res.batchItemFailures,
      [{ itemIdentifier: event.Records[0]?.kinesis.sequenceNumber }],
      'checkpoint before the first record',
    );
    t.equal(h.last().retried, 11);
  });

  t.test('a store outage hands back the first record of the failed write', async (t) => {
    const h = createIngestHandler({
      sink: createDynamoDbSink({ client: ddb, table: 'missing', retentionDays: 1 }),
      certs,
      log: () => {},
    });
    const res = await h(event);
    t.same(res.batchItemFailures, [{ itemIdentifier: event.Records[0]?.kinesis.sequenceNumber }]);
    const reject = createIngestHandler({
      sink: { kind: 'none', write: async () => ({ written: 0, rejected: 3, rejections: ['bad'] }) },
      certs,
      log: () => {},
    });
    t.same((await reject(event)).batchItemFailures, [], 'store-side rejections are counted, not retried');
    t.equal(reject.last().samplesRejectedByStore, 3);
  });

  t.test('envelopes are checked field by field', async (t) => {
    const ok = {
      payload: 'AAAA',
      thing: 'a',
      principal: box.id,
      receivedAt: 1,
      topic: 'meterlink/v1/a/batch',
    };
    const bad = (o: object) => parseRuleEnvelope(Buffer.from(JSON.stringify({ ...ok, ...o })));
    t.ok(bad({}).ok);
    for (const o of [
      { payload: 'A' },
      { thing: 'a/b' },
      { principal: 'thing/a' },
      { receivedAt: -1 },
      { topic: 'meterlink/v1/b/batch' },
    ])
      t.notOk(bad(o).ok, JSON.stringify(o));
    t.notOk(parseRuleEnvelope(Buffer.alloc(300 * 1024, 0x20)).ok, 'oversized');
    t.notOk(parseRuleEnvelope(Buffer.from('null')).ok);
    t.ok(
      parseRuleEnvelope(
        buildRuleEnvelope({
          payload: new Uint8Array([1, 2]),
          thing: 'a',
          principal: box.id,
          receivedAt: 5,
          topic: 'meterlink/v1/a/batch',
        }),
      ).ok,
    );
  });
});
