import t from 'tap';
import { endAfterMqtt } from '../harness/exit.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { mqtt5 } from 'aws-iot-device-sdk-v2';
import type { Sample } from '../../cloud-contract/sample.js';
import {
  createBatchPublisher,
  type BatchEncoder,
  type BatchSource,
  type PublisherEvent,
} from '../../agent/publisher/batch-publisher.js';
import { createMqttConnection, type MqttConnection } from '../../agent/publisher/mqtt-connection.js';
import { startMosquitto, type Broker, type DeviceCredentials } from '../harness/mosquitto.js';
import { testClient, type TestClient } from '../harness/mqtt-client.js';
import { issueCert, makeCa, writeIssued } from '../harness/pki.js';
import { tempDir, type Teardown } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';
import { freePort } from '../harness/net.js';

const THING = 'apt-12-meterbox';
const TOPIC = `meterlink/v1/${THING}/batch`;

/** An in-memory BatchSource with the buffer's semantics (ack deletes a range, reads skip deleted seqs). */
function memorySource(n: number) {
  const rows = new Map<number, Sample>();
  for (let seq = 1; seq <= n; seq++) {
    rows.set(seq, {
      seq,
      meter: 'main',
      ts: 1_700_000_000_000 + seq * 1000,
      flags: 0,
      values: { power_w: { type: 'int', mantissa: seq, exponent: 0 } },
    });
  }
  const source: BatchSource = {
    async readOldest({ afterSeq, maxCount }) {
      const out: Sample[] = [];
      for (const [seq, s] of rows) {
        if (seq > afterSeq) out.push(s);
        if (out.length >= maxCount) break;
      }
      return out;
    },
    async ack(from, to) {
      for (let s = from; s <= to; s++) rows.delete(s);
    },
  };
  return { source, rows };
}

/** A stand-in batch encoding for these delivery tests: `seq,seq,...` padded to a size per sample. */
const testEncoder =
  (bytesPerSample = 40): BatchEncoder =>
  async (samples, maxBytes) => {
    const count = Math.min(samples.length, Math.floor(maxBytes / bytesPerSample));
    const body = samples
      .slice(0, count)
      .map((s) => String(s.seq).padEnd(bytesPerSample - 1, ' '))
      .join(',');
    return { payload: Buffer.from(body), count };
  };
const decodeTest = (payload: Buffer) =>
  payload
    .toString()
    .split(',')
    .map((x) => Number(x.trim()));

async function subscriber(
  t: Teardown & { same: (a: unknown, b: unknown) => void },
  broker: Broker,
  filter: string,
): Promise<TestClient> {
  const dev = await broker.deviceCert('cloud-subscriber');
  const sub = testClient({
    ...broker,
    caFile: broker.caFile,
    clientId: 'cloud-subscriber',
    certFile: dev.cert,
    keyFile: dev.key,
  });
  t.teardown(() => sub.close());
  // The broker keeps no sessions across a restart: subscribe again after every (re)connection.
  sub.client.on('connectionSuccess', () => void sub.subscribe(filter).catch(() => {}));
  t.same(await sub.connect(), { ok: true });
  await sub.subscribe(filter);
  return sub;
}

function connection(
  t: Teardown,
  broker: Broker,
  dev: DeviceCredentials,
  more: Partial<Parameters<typeof createMqttConnection>[0]> = {},
): MqttConnection {
  const conn = createMqttConnection({
    thing: dev.thing,
    endpoint: '127.0.0.1',
    port: broker.port,
    caFile: broker.caFile,
    certFile: dev.cert,
    keyFile: dev.key,
    minReconnectDelayMs: 50,
    maxReconnectDelayMs: 400,
    ackTimeoutSeconds: 10,
    ...more,
  });
  t.teardown(() => conn.stop());
  return conn;
}

/**
 * Mosquitto answers PUBACK "no matching subscribers" when our test subscriber is momentarily gone (it
 * reconnects after a broker restart too). IoT Core counts that as success, and so does the publisher; for
 * these tests it means "not observed", so this wrapper turns it into a failure and the batch is re-sent.
 */
function strict(conn: MqttConnection): MqttConnection {
  return new Proxy(conn, {
    get(target, prop, recv) {
      if (prop === 'publish') {
        return async (topic: string, payload: Uint8Array) => {
          const r = await target.publish(topic, payload);
          return r.ok && r.reasonCode === mqtt5.PubackReasonCode.NoMatchingSubscribers
            ? { ok: false, kind: 'failed', error: 'no subscriber yet', tooLarge: false }
            : r;
        };
      }
      return Reflect.get(target, prop, recv);
    },
  });
}

/** A publisher over an in-memory source of `n` samples on `conn`, started, stopped on teardown. */
function startPublishing(
  t: Teardown,
  conn: MqttConnection,
  n: number,
  opts: Omit<Parameters<typeof createBatchPublisher>[0], 'source' | 'connection' | 'encode'>,
  stopDeadlineMs: number,
) {
  const { source, rows } = memorySource(n);
  const events: PublisherEvent[] = [];
  const pub = createBatchPublisher({
    source,
    connection: conn,
    encode: testEncoder(),
    onEvent: (e) => events.push(e),
    ...opts,
  });
  conn.start();
  pub.start();
  t.teardown(() => pub.stop(stopDeadlineMs));
  return { rows, events, pub };
}

await t.test(
  'a backlog drains in order with a window in flight; the source is empty afterwards',
  async (t) => {
    const broker = await startMosquitto(t);
    const sub = await subscriber(t, broker, TOPIC);
    const dev = await broker.deviceCert(THING);
    const conn = connection(t, broker, dev);
    const { rows, events, pub } = startPublishing(
      t,
      strict(conn),
      3000,
      { topic: TOPIC, maxBytes: 4000, window: 4 },
      1000,
    );
    await pub.whenAcked(3000);
    await waitFor(() => sub.received.flatMap((m) => decodeTest(m.payload)).length >= 3000, {
      what: 'all samples at the subscriber',
    });
    const seqs = sub.received.flatMap((m) => decodeTest(m.payload));
    t.same(
      seqs,
      Array.from({ length: 3000 }, (_, i) => i + 1),
      'every sample once, in order',
    );
    t.equal(rows.size, 0, 'everything acknowledged was deleted');
    t.equal(pub.stats().batchesAcked, 30, '100 samples of 40 B per 4000 B batch');
    t.ok(events.every((e) => e.type === 'acked'));
  },
);

await t.test(
  'broker SIGKILLed and restarted mid-drain, 3 times: nothing lost, duplicates only of in-flight batches, order kept',
  async (t) => {
    const broker = await startMosquitto(t);
    const sub = await subscriber(t, broker, TOPIC);
    const dev = await broker.deviceCert(THING);
    const conn = connection(t, broker, dev);
    const N = 20_000;
    const { rows, events, pub } = startPublishing(
      t,
      strict(conn),
      N,
      { topic: TOPIC, maxBytes: 2000, window: 6, retryBaseMs: 20, retryMaxMs: 200 },
      1000,
    );

    for (let k = 1; k <= 3; k++) {
      const target = Math.floor((N * k) / 4);
      await waitFor(() => pub.stats().lastAckedSeq >= target, {
        what: `drain past ${target}`,
        timeout: 60_000,
      });
      await broker.kill();
      await broker.start();
    }
    await pub.whenAcked(N);
    await waitFor(() => new Set(sub.received.flatMap((m) => decodeTest(m.payload))).size >= N, {
      what: 'all seqs seen',
      timeout: 30_000,
    });

    const seqs = sub.received.flatMap((m) => decodeTest(m.payload));
    const seen = new Set(seqs);
    t.equal(seen.size, N, 'every sequence number arrived');
    t.equal(rows.size, 0, 'the source is empty: every range was acknowledged');

    const failedRanges = events.filter(
      (e): e is Extract<PublisherEvent, { type: 'failed' }> => e.type === 'failed',
    );
    t.ok(failedRanges.length > 0, 'the kills did interrupt publishes');
    const counts = new Map<number, number>();
    for (const s of seqs) counts.set(s, (counts.get(s) ?? 0) + 1);
    const dups = [...counts].filter(([, c]) => c > 1).map(([s]) => s);
    const inFailed = (s: number) => failedRanges.some((r) => s >= r.fromSeq && s <= r.toSeq);
    t.ok(
      dups.every(inFailed),
      `${dups.length} duplicates, all from batches that were in flight when the broker died`,
    );

    // Order: every message is in sequence order, and a sample only ever arrives after a later one when its
    // batch failed while in flight and was re-sent (a window of QoS 1 publishes cannot promise more).
    t.ok(
      sub.received.every((m) =>
        decodeTest(m.payload).every((s, i, a) => i === 0 || s > (a[i - 1] as number)),
      ),
      'each batch is in sequence order',
    );
    let maxSoFar = 0;
    const late: number[] = [];
    for (const s of seqs) {
      if (s < maxSoFar && !inFailed(s)) late.push(s);
      maxSoFar = Math.max(maxSoFar, s);
    }
    t.same(late, [], 'nothing arrives out of order except re-sends of failed in-flight batches');
  },
);

await t.test(
  'connection errors are clear and nothing is deleted: wrong CA, unknown CA, expired cert',
  async (t) => {
    const broker = await startMosquitto(t);
    const dir = await tempDir(t);
    const rogueCa = await makeCa('rogue');
    const rogue = await writeIssued(dir, 'rogue', await issueCert(rogueCa, { cn: THING }));
    const rogueCaFile = join(dir, 'rogue-ca.crt');
    await writeFile(rogueCaFile, rogueCa.certPem);
    const expired = await broker.deviceCert(THING, {
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const good = await broker.deviceCert(THING);

    const cases = [
      {
        name: 'device certificate from another CA',
        certFile: rogue.cert,
        keyFile: rogue.key,
        caFile: broker.caFile,
      },
      {
        name: 'endpoint CA unknown to the device',
        certFile: good.cert,
        keyFile: good.key,
        caFile: rogueCaFile,
      },
      {
        name: 'expired device certificate',
        certFile: expired.cert,
        keyFile: expired.key,
        caFile: broker.caFile,
      },
    ];
    for (const c of cases) {
      const conn = connection(t, broker, good, {
        certFile: c.certFile,
        keyFile: c.keyFile,
        caFile: c.caFile,
        diagnoseAfterMs: 1000,
      });
      const { source, rows } = memorySource(50);
      const pub = createBatchPublisher({ source, connection: conn, encode: testEncoder(), topic: TOPIC });
      const reasons: string[] = [];
      conn.on('connectFailed', (r) => reasons.push(r));
      conn.start();
      pub.start();
      await waitFor(() => reasons.length > 0, { what: `connect failure for ${c.name}` });
      await pub.stop(100);
      await conn.stop();
      t.match(reasons[0], /TLS|handshake|cert/i, `${c.name}: ${reasons[0]}`);
      t.equal(rows.size, 50, `${c.name}: nothing deleted from the buffer`);
    }
  },
);

await t.test('PUBACK "not authorized" pauses publishing and reports it; nothing is deleted', async (t) => {
  const aclDir = await tempDir(t);
  const acl = join(aclDir, 'acl');
  await writeFile(
    acl,
    'pattern write meterlink/v1/%u/#\npattern read meterlink/v1/%u/#\nuser cloud-subscriber\ntopic read #\n',
  );
  const broker = await startMosquitto(t, { extraConfig: [`acl_file ${acl}`] });
  const dev = await broker.deviceCert(THING);
  const conn = connection(t, broker, dev);
  const { rows, events, pub } = startPublishing(
    t,
    conn,
    100,
    { topic: 'meterlink/v1/someone-else/batch' },
    100,
  );
  await waitFor(() => events.some((e) => e.type === 'paused'), { what: 'pause after not authorized' });
  const rejected = events.find((e) => e.type === 'rejected');
  t.match(rejected, { type: 'rejected', reasonCode: 0x87 });
  t.ok(pub.stats().pausedUntil !== undefined, 'status shows the pause');
  t.equal(rows.size, 100, 'nothing deleted');
});

await t.test(
  'batches shrink to the maximum packet size the broker announces, and all are delivered',
  async (t) => {
    const broker = await startMosquitto(t, { extraConfig: ['max_packet_size 3000'] });
    const sub = await subscriber(t, broker, TOPIC);
    const dev = await broker.deviceCert(THING);
    const conn = connection(t, broker, dev);
    const { rows, events, pub } = startPublishing(
      t,
      strict(conn),
      400,
      { topic: TOPIC, maxBytes: 8000 },
      100,
    );
    await pub.whenAcked(400);
    const acked = events.filter((e) => e.type === 'acked');
    t.ok(acked.length >= 400 / 73, 'several small batches');
    t.ok(
      acked.every((e) => e.type === 'acked' && e.bytes + TOPIC.length + 25 <= 3000),
      'every batch fits the maximum packet size the broker announced',
    );
    t.equal(rows.size, 0);
    await waitFor(() => new Set(sub.received.flatMap((m) => decodeTest(m.payload))).size === 400, {
      what: 'all 400 delivered',
    });
  },
);

await t.test(
  'live samples: a batch is encoded when it may be full or at its deadline, not on every appended sample',
  async (t) => {
    const broker = await startMosquitto(t);
    const sub = await subscriber(t, broker, TOPIC);
    const dev = await broker.deviceCert(THING);
    const conn = connection(t, broker, dev);
    // Samples stamped now, appended one by one as a meter's readings are, each followed by notify().
    const rows = new Map<number, Sample>();
    let reads = 0;
    let encodes = 0;
    const source: BatchSource = {
      async readOldest({ afterSeq, maxCount }) {
        reads++;
        return [...rows.values()].filter((s) => s.seq > afterSeq).slice(0, maxCount);
      },
      async ack(from, to) {
        for (let s = from; s <= to; s++) rows.delete(s);
      },
    };
    const encode = testEncoder();
    const pub = createBatchPublisher({
      source,
      connection: strict(conn),
      encode: (samples, maxBytes) => {
        encodes++;
        return encode(samples, maxBytes);
      },
      topic: TOPIC,
      // 4000 B = 100 samples of 40 B; a batch is full past 90 %. The deadline is far: only fullness sends.
      maxBytes: 4000,
      maxDelayMs: 3_600_000,
    });
    conn.start();
    await waitFor(() => conn.connected, { what: 'connected' });
    pub.start();
    t.teardown(() => pub.stop(100));
    const N = 300;
    for (let seq = 1; seq <= N; seq++) {
      const power: Sample['values'][string] = { type: 'int', mantissa: seq, exponent: 0 };
      rows.set(seq, { seq, meter: 'main', ts: Date.now(), flags: 0, values: { power_w: power } });
      pub.notify();
      // Let the loop run between two readings, as it does between two polls.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => pub.stats().samplesAcked >= 273, { what: 'three full batches acknowledged' });
    await waitFor(() => sub.received.flatMap((m) => decodeTest(m.payload)).length >= 273, {
      what: 'three batches at the subscriber',
    });
    t.same(
      sub.received.flatMap((m) => decodeTest(m.payload)),
      Array.from({ length: 273 }, (_, i) => i + 1),
      'every sample once, in order',
    );
    t.same(
      sub.received.map((m) => decodeTest(m.payload).length),
      [91, 91, 91],
      'each batch was sent as soon as it was over 90 % of its budget (91 × 40 B > 3600 B)',
    );
    t.ok(encodes <= 20, `${encodes} encodes for 3 batches of 91 samples (one per appended sample: 273)`);
    t.ok(reads <= 60, `${reads} buffer reads for ${N} appended samples`);
    t.equal(pub.stats().samplesAcked, 273, 'the 27 left wait for their deadline (an hour)');
  },
);

await t.test('Basic Ingest topics ($aws/rules/...) work through the same publisher', async (t) => {
  const broker = await startMosquitto(t);
  const topic = `$aws/rules/meterlink_ingest/meterlink/v1/${THING}/batch`;
  const sub = await subscriber(t, broker, topic);
  const dev = await broker.deviceCert(THING);
  const conn = connection(t, broker, dev);
  const { pub } = startPublishing(t, strict(conn), 10, { topic, maxDelayMs: 0 }, 100);
  await pub.whenAcked(10);
  await waitFor(() => sub.received.length > 0);
  t.equal(sub.received[0]?.topic, topic);
});

await t.test(
  'port 443: the client offers ALPN x-amzn-mqtt-ca and speaks MQTT after the handshake',
  async (t) => {
    const dir = await tempDir(t);
    const ca = await makeCa('alpn test');
    const server = await issueCert(ca, {
      cn: 'localhost',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
      server: true,
    });
    const dev = await writeIssued(dir, 'dev', await issueCert(ca, { cn: THING }));
    const caFile = join(dir, 'ca.crt');
    await writeFile(caFile, ca.certPem);
    const port = await freePort();
    let offered: string[] = [];
    const firstByte = new Promise<number>((resolve) => {
      const srv = createTlsServer(
        {
          key: server.keyPem,
          cert: server.certPem,
          ca: ca.certPem,
          requestCert: true,
          rejectUnauthorized: true,
          ALPNCallback: ({ protocols }) => {
            offered = protocols;
            return protocols.includes('x-amzn-mqtt-ca') ? 'x-amzn-mqtt-ca' : undefined;
          },
        },
        (sock) => sock.once('data', (b: Buffer) => resolve(b[0] ?? -1)),
      );
      srv.listen(port, '127.0.0.1');
      t.teardown(() => srv.close());
    });
    const conn = createMqttConnection({
      thing: THING,
      endpoint: '127.0.0.1',
      port,
      caFile,
      certFile: dev.cert,
      keyFile: dev.key,
      minReconnectDelayMs: 1000,
    });
    t.teardown(() => conn.stop());
    conn.start();
    t.equal((await firstByte) >> 4, 1, 'the first packet after the TLS handshake is an MQTT CONNECT');
    t.ok(offered.includes('x-amzn-mqtt-ca'), `ALPN offered: ${offered.join(',')}`);
  },
);

await endAfterMqtt(t);
