/**
 * The publisher end to end with the real parts, wired as the agent wires them: a LevelDB buffer on disk read
 * with `readStored` (values left in their stored bytes) → createBatchPublisher with the real stored-sample
 * batch encoder (values decoded straight into cloud-contract BatchBuilder's columns, deflate, COSE_Sign1
 * ES256) → Mosquitto with mutual TLS and the
 * SDK's IoT Core flow control on → a cloud-side subscriber that decodes AND verifies every batch against the
 * device certificate. Values come from the simulator's apartment model through the real Modbus register codec
 * (an Eastron SDM630 with float32 registers and a Carlo Gavazzi EM340 with scaled integers on one box).
 */
import t, { type Test } from 'tap';
import { endAfterMqtt } from '../harness/exit.js';
import { mqtt5 } from 'aws-iot-device-sdk-v2';
import { encodeSample, openLevelBuffer, type ReadingBuffer, type StoredSample } from '../../buffer/index.js';
import { decodeHead } from '../../buffer/sample-codec.js';
import {
  batchTopic,
  decodeBatchMessage,
  kidFromCertificate,
  kidToHex,
  QualityFlag,
  type Sample,
  type SampleInput,
  type Value,
} from '../../cloud-contract/index.js';
import { createBatchEncoder, createStoredBatchEncoder } from '../../agent/publisher/batch-encoder.js';
import {
  createBatchPublisher,
  type BatchEncoder,
  type BatchSource,
  type PublisherEvent,
} from '../../agent/publisher/batch-publisher.js';
import { createMqttConnection, type MqttConnection } from '../../agent/publisher/mqtt-connection.js';
import { createApartmentModel } from '../../drivers/simulator/apartment-model.js';
import { decodeRegister, encodeRegister } from '../../drivers/modbus/codec.js';
import { eastronSdm630 } from '../../drivers/profiles/eastron-sdm630.js';
import { carloGavazziEm340 } from '../../drivers/profiles/carlo-gavazzi-em340.js';
import type { ModbusProfile } from '../../drivers/modbus/profile.js';
import { startMosquitto, type Broker, type DeviceCredentials } from '../harness/mosquitto.js';
import { testClient } from '../harness/mqtt-client.js';
import { issueCert, makeCa } from '../harness/pki.js';
import { tempDir, type Teardown } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

const THING = 'apt-7-meterbox';
const TOPIC = batchTopic(THING);

/** One poll of a simulated meter, as the Modbus driver would decode it from the registers. */
function poll(profile: ModbusProfile, channels: Record<string, number>): Record<string, Value> {
  const values: Record<string, Value> = {};
  for (const reg of profile.registers) {
    const d = decodeRegister(reg, encodeRegister(reg, channels[reg.channel] ?? 0));
    if (d.ok) values[reg.channel] = d.value;
  }
  return values;
}

/**
 * `n` samples of a box with two meters: `main` (SDM630, float32) every second and `pv` (EM340, integers)
 * every 5 s; every 97th main sample is a partial read (two channels missing, flagged).
 */
function backlog(n: number, start = Date.UTC(2025, 2, 3, 6)): SampleInput[] {
  const main = createApartmentModel(11, { start });
  const pv = createApartmentModel(12, { start, pvPeakW: 800 });
  const out: SampleInput[] = [];
  for (let i = 0; out.length < n; i++) {
    const ts = start + i * 1000 + ((i * 7) % 5) - 2;
    main.advanceTo(start + i * 1000);
    const values = poll(eastronSdm630, main.channels());
    if (i % 97 === 5) {
      delete values.current_n_a;
      delete values.power_factor_l2;
      out.push({
        meter: 'main',
        ts,
        values,
        flags: QualityFlag.partial,
        missing: ['current_n_a', 'power_factor_l2'],
      });
    } else out.push({ meter: 'main', ts, values, flags: 0 });
    if (i % 5 === 0 && out.length < n) {
      pv.advanceTo(start + i * 1000);
      out.push({ meter: 'pv', ts: ts + 40, values: poll(carloGavazziEm340, pv.channels()), flags: 0 });
    }
  }
  return out;
}

/** Appends in groups, as a busy agent would; returns the samples as stored (with their seqs). */
async function fill(buf: ReadingBuffer, inputs: readonly SampleInput[]): Promise<Map<number, Sample>> {
  const stored = new Map<number, Sample>();
  for (let i = 0; i < inputs.length; i += 2000) {
    const part = inputs.slice(i, i + 2000);
    const r = await buf.append(part);
    if (r === null) throw new Error('append of a non-empty group gave null');
    part.forEach((s, k) => stored.set(r.first + k, { ...s, seq: r.first + k }));
  }
  return stored;
}

/** Same sample, bit for bit: meter, ts, flags, missing, and every Value (type, exponent, mantissa bits). */
function sameSample(a: Sample, b: Sample): string | undefined {
  if (a.meter !== b.meter || a.ts !== b.ts || a.flags !== b.flags) return 'meter/ts/flags';
  if (JSON.stringify(a.missing ?? []) !== JSON.stringify(b.missing ?? [])) return 'missing';
  const ka = Object.keys(a.values).sort();
  const kb = Object.keys(b.values).sort();
  if (ka.join() !== kb.join()) return `channels ${ka.join()} vs ${kb.join()}`;
  for (const k of ka) {
    const x = a.values[k] as Value;
    const y = b.values[k] as Value;
    if (x.type !== y.type || x.exponent !== y.exponent || !Object.is(x.mantissa, y.mantissa))
      return `${k}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`;
  }
  return undefined;
}

interface Cloud {
  /** Decoded, verified batches in arrival order: their sample seqs. */
  batches: number[][];
  /** Every verified sample by seq (the last copy). */
  samples: Map<number, Sample>;
  rejected: string[];
}

/** The cloud side: subscribes with its own certificate and decodes + verifies each batch as it arrives. */
async function cloudSubscriber(t: Teardown, broker: Broker, device: DeviceCredentials): Promise<Cloud> {
  const creds = await broker.deviceCert('cloud-ingest');
  const sub = testClient({
    ...broker,
    clientId: 'cloud-ingest',
    certFile: creds.cert,
    keyFile: creds.key,
  });
  t.teardown(() => sub.close());
  const kidHex = kidToHex(kidFromCertificate(device.certDer));
  const cloud: Cloud = { batches: [], samples: new Map(), rejected: [] };
  let chain = Promise.resolve();
  sub.client.on('messageReceived', (e) => {
    const bytes = new Uint8Array(e.message.payload as ArrayBuffer).slice();
    // Decode in arrival order.
    chain = chain.then(async () => {
      const r = await decodeBatchMessage(bytes, {
        resolveKey: (_kid, hex) => (hex === kidHex ? device.certDer : undefined),
      });
      if (!r.ok) {
        cloud.rejected.push(`${r.reason}: ${r.detail}`);
        return;
      }
      if (r.batch.device !== THING) cloud.rejected.push(`device ${r.batch.device}`);
      cloud.batches.push(r.batch.samples.map((s) => s.seq));
      for (const s of r.batch.samples) cloud.samples.set(s.seq, s);
    });
  });
  // The broker keeps no sessions across a restart: subscribe again after every (re)connection.
  sub.client.on('connectionSuccess', () => void sub.subscribe(TOPIC).catch(() => {}));
  const c = await sub.connect();
  if (!c.ok) throw new Error(`cloud subscriber did not connect: ${c.error}`);
  await sub.subscribe(TOPIC);
  return cloud;
}

/**
 * Mosquitto answers PUBACK "no matching subscribers" while our subscriber is reconnecting after a broker
 * restart. IoT Core (and the publisher) count that as success; here it means "not observed", so the batch
 * is failed and re-sent.
 */
function strict(conn: MqttConnection): MqttConnection {
  return new Proxy(conn, {
    get(target, prop, recv) {
      if (prop !== 'publish') return Reflect.get(target, prop, recv);
      return async (topic: string, payload: Uint8Array) => {
        const r = await target.publish(topic, payload);
        return r.ok && r.reasonCode === mqtt5.PubackReasonCode.NoMatchingSubscribers
          ? { ok: false, kind: 'failed', error: 'no subscriber yet', tooLarge: false }
          : r;
      };
    },
  });
}

/**
 * Wraps the encoder, the connection and the buffer so that every `ack` (= delete) the publisher makes is
 * checked against the batches the broker acknowledged with success: the range deleted must be exactly the
 * range of a PUBACKed batch.
 */
function audited(buf: ReadingBuffer, encode: BatchEncoder<StoredSample>, conn: MqttConnection) {
  const ranges = new WeakMap<Uint8Array, string>();
  const pubacked = new Set<string>();
  const audit = { deletes: 0, unacknowledgedDeletes: [] as string[] };
  const source: BatchSource<StoredSample> = {
    readOldest: (o) => buf.readStored(o),
    async ack(from, to) {
      audit.deletes++;
      if (!pubacked.has(`${from}-${to}`)) audit.unacknowledgedDeletes.push(`${from}-${to}`);
      await buf.ack(from, to);
    },
  };
  const enc: BatchEncoder<StoredSample> = async (samples, maxBytes) => {
    const r = await encode(samples, maxBytes);
    if (r.count > 0) ranges.set(r.payload, `${samples[0]!.seq}-${samples[r.count - 1]!.seq}`);
    return r;
  };
  const strictConn = strict(conn);
  const connection = new Proxy(strictConn, {
    get(target, prop, recv) {
      if (prop !== 'publish') return Reflect.get(target, prop, recv);
      return async (topic: string, payload: Uint8Array) => {
        const r = await target.publish(topic, payload);
        const range = ranges.get(payload);
        if (r.ok && range !== undefined) pubacked.add(range);
        return r;
      };
    },
  });
  return { source, encode: enc, connection, audit };
}

async function setup(t: Teardown, n: number) {
  const stops: (() => Promise<unknown>)[] = [];
  const broker = await startMosquitto(t);
  const device = await broker.deviceCert(THING);
  const cloud = await cloudSubscriber(t, broker, device);
  const buf = await openLevelBuffer({ path: await tempDir(t), maxSize: Infinity });
  stops.push(() => buf.close());
  const expected = await fill(buf, backlog(n));
  const conn = createMqttConnection({
    thing: THING,
    endpoint: '127.0.0.1',
    port: broker.port,
    caFile: broker.caFile,
    certFile: device.cert,
    keyFile: device.key,
    minReconnectDelayMs: 50,
    maxReconnectDelayMs: 400,
    ackTimeoutSeconds: 20,
  });
  stops.push(() => conn.stop());
  const unencodable: number[] = [];
  const encode = createStoredBatchEncoder({
    device: THING,
    privateKey: device.keyPem,
    certDer: device.certDer,
    onUnencodable: (seq) => unencodable.push(seq),
  });
  // tap runs teardowns last-registered first: this one runs before the harness stops the subscriber and
  // kills the broker — publisher, then connection, then buffer.
  t.teardown(async () => {
    for (const stop of stops.reverse()) await stop();
  });
  const onStop = (stop: () => Promise<unknown>) => stops.push(stop);
  return { broker, device, cloud, buf, expected, conn, unencodable, onStop, ...audited(buf, encode, conn) };
}

function checkValues(
  t: Test,
  cloud: Cloud,
  expected: Map<number, Sample>,
  audit: { deletes: number; unacknowledgedDeletes: string[] },
): void {
  t.ok(audit.deletes > 0, `${audit.deletes} ranges deleted from the buffer`);
  t.same(audit.unacknowledgedDeletes, [], 'each deleted range is exactly a batch the broker PUBACKed');
  t.equal(cloud.rejected.length, 0, `no batch rejected by the cloud decoder ${cloud.rejected.join('; ')}`);
  t.equal(cloud.samples.size, expected.size, 'every sample arrived');
  const bad: string[] = [];
  for (const [seq, want] of expected) {
    const got = cloud.samples.get(seq);
    const why = got === undefined ? 'absent' : sameSample(got, want);
    if (why !== undefined && bad.length < 5) bad.push(`seq ${seq}: ${why}`);
  }
  t.same(bad, [], 'every value bit-exact (type, exponent, mantissa bits), ts, flags, missing');
}

await t.test(
  'a backlog drains through the real buffer, encoder and broker; the cloud verifies every batch',
  async (t) => {
    const N = 24_000;
    const s = await setup(t, N);
    const events: PublisherEvent[] = [];
    const pub = createBatchPublisher({
      source: s.source,
      connection: s.connection,
      encode: s.encode,
      topic: TOPIC,
      readCount: 16_384,
      onEvent: (e) => events.push(e),
    });
    s.conn.start();
    pub.start();
    s.onStop(() => pub.stop(1000));
    const last = Math.max(...s.expected.keys());
    // Fails when the drain stops advancing for 20 s, not when a busy machine drains slowly.
    const ackedSeq = () => pub.stats().lastAckedSeq;
    await waitFor(() => ackedSeq() >= last, { what: 'all acked', timeout: 20_000, progress: ackedSeq });
    await pub.whenAcked(last);
    await waitFor(() => s.cloud.samples.size >= N || s.cloud.rejected.length > 0, {
      what: 'all samples at the cloud',
      timeout: 20_000,
      progress: () => s.cloud.samples.size,
    });
    checkValues(t, s.cloud, s.expected, s.audit);
    t.equal(s.buf.stats().count, 0, 'the buffer is empty: every batch was acknowledged and deleted');
    const seqs = s.cloud.batches.flat();
    t.same(seqs, [...s.expected.keys()], 'each sample once, in sequence order');
    const acked = events.filter((e) => e.type === 'acked');
    t.equal(acked.length, s.cloud.batches.length, 'one PUBACK per batch');
    t.ok(
      acked.every((e) => e.type === 'acked' && e.bytes <= 128_000),
      'every batch within the 128 KB budget',
    );
    t.same(s.unencodable, [], 'no sample was unencodable');
    const st = pub.stats();
    t.comment(
      `${st.batchesAcked} batches, ${(st.bytesAcked / st.samplesAcked).toFixed(1)} B/sample, ` +
        `${Math.round(st.bytesAcked / st.batchesAcked)} B/batch`,
    );
  },
);

await t.test(
  'broker SIGKILLed and restarted 3 times mid-drain with the real parts: nothing lost, duplicates only of in-flight batches, order kept',
  async (t) => {
    const N = 30_000;
    const s = await setup(t, N);
    const events: PublisherEvent[] = [];
    const pub = createBatchPublisher({
      source: s.source,
      connection: s.connection,
      encode: s.encode,
      topic: TOPIC,
      // Small batches: more of them, so each kill catches several in flight.
      maxBytes: 12_000,
      window: 6,
      retryBaseMs: 20,
      retryMaxMs: 200,
      onEvent: (e) => events.push(e),
    });
    s.conn.start();
    pub.start();
    s.onStop(() => pub.stop(1000));
    const last = Math.max(...s.expected.keys());
    for (let k = 1; k <= 3; k++) {
      const target = Math.floor((last * k) / 4);
      await waitFor(() => pub.stats().lastAckedSeq >= target, {
        what: `drain past ${target}`,
        timeout: 20_000,
        progress: () => pub.stats().lastAckedSeq,
      });
      await s.broker.kill();
      await s.broker.start();
    }
    // Fails when the drain stops advancing for 20 s, not when a busy machine drains slowly.
    const ackedSeq = () => pub.stats().lastAckedSeq;
    await waitFor(() => ackedSeq() >= last, { what: 'all acked', timeout: 20_000, progress: ackedSeq });
    await pub.whenAcked(last);
    await waitFor(() => s.cloud.samples.size >= N || s.cloud.rejected.length > 0, {
      what: 'all samples at the cloud',
      timeout: 20_000,
      progress: () => s.cloud.samples.size,
    });
    checkValues(t, s.cloud, s.expected, s.audit);
    t.equal(s.buf.stats().count, 0, 'the buffer is empty at the end');

    const failed = events.filter(
      (e): e is Extract<PublisherEvent, { type: 'failed' }> => e.type === 'failed',
    );
    t.ok(failed.length > 0, 'the kills interrupted publishes in flight');
    const inFailed = (seq: number) => failed.some((r) => seq >= r.fromSeq && seq <= r.toSeq);
    const seqs = s.cloud.batches.flat();
    const counts = new Map<number, number>();
    for (const q of seqs) counts.set(q, (counts.get(q) ?? 0) + 1);
    const dups = [...counts].filter(([, c]) => c > 1).map(([q]) => q);
    t.ok(dups.every(inFailed), `${dups.length} duplicates, all from batches in flight at a kill`);
    t.ok(
      s.cloud.batches.every((b) => b.every((q, i) => i === 0 || q > (b[i - 1] as number))),
      'each batch is in sequence order',
    );
    let maxSoFar = 0;
    const late: number[] = [];
    for (const q of seqs) {
      if (q < maxSoFar && !inFailed(q)) late.push(q);
      maxSoFar = Math.max(maxSoFar, q);
    }
    t.same(late, [], 'nothing arrives out of order except re-sends of failed in-flight batches');
  },
);

await t.test(
  'the encoder reports only what the message carries; unencodable samples are reported',
  async (t) => {
    const ca = await makeCa('encoder test CA');
    const dev = await issueCert(ca, { cn: THING });
    const told: number[] = [];
    const encode = createBatchEncoder({
      device: THING,
      privateKey: dev.keyPem,
      certDer: dev.certDer,
      onUnencodable: (seq) => told.push(seq),
    });
    const samples: Sample[] = backlog(3000).map((s, i) => ({ ...s, seq: i + 1 }));
    // A budget that holds only part of the range: the count is what the message carries, and it verifies.
    const part = await encode(samples, 4096);
    t.ok(part.count > 0 && part.count < samples.length, `${part.count} samples in a 4 KiB batch`);
    t.ok(part.payload.length <= 4096);
    const r = await decodeBatchMessage(part.payload, { resolveKey: () => dev.certDer });
    t.equal(r.ok && r.batch.samples.length, part.count, 'the message carries exactly `count` samples');
    // An invalid sample ends the batch before it and is then reported on its own.
    const bad = {
      ...samples[3],
      values: { 'Bad Name': { type: 'int', mantissa: 1, exponent: 0 } },
    } as Sample;
    const withBad = [...samples.slice(0, 3), bad, ...samples.slice(4, 10)];
    t.equal((await encode(withBad, 128_000)).count, 3, 'the batch stops before the invalid sample');
    t.same(await encode(withBad.slice(3), 128_000), { payload: new Uint8Array(0), count: 0 });
    t.same(told, [4], 'the invalid sample was reported');
    // Nothing to encode, or a budget below any batch: nothing taken.
    t.equal((await encode([], 128_000)).count, 0);
    t.equal((await encode(samples, 100)).count, 0);

    // The agent's encoder, on stored bytes: the same counts, the same samples, the same refusals.
    const storedTold: number[] = [];
    const storedEncode = createStoredBatchEncoder({
      device: THING,
      privateKey: dev.keyPem,
      certDer: dev.certDer,
      onUnencodable: (seq) => storedTold.push(seq),
    });
    const asStored = (xs: readonly Sample[]) => xs.map((x) => decodeHead(x.seq, encodeSample(x)));
    const stored = asStored(samples);
    for (const budget of [4096, 50_000, 128_000]) {
      const a = await encode(samples, budget);
      const b = await storedEncode(stored, budget);
      t.equal(b.count, a.count, `${budget}: stored encoder takes as many samples (${a.count})`);
      t.ok(b.payload.length <= budget);
      const ra = await decodeBatchMessage(a.payload, { resolveKey: () => dev.certDer });
      const rb = await decodeBatchMessage(b.payload, { resolveKey: () => dev.certDer });
      t.ok(
        ra.ok && rb.ok && JSON.stringify(rb.batch.samples) === JSON.stringify(ra.batch.samples),
        `${budget}: and the very same samples`,
      );
    }
    // The buffer stores exponents the contract cannot carry (±64): such a sample ends the batch before it and
    // is then reported on its own.
    const far = {
      ...samples[3]!,
      values: { power_w: { type: 'int', mantissa: 1, exponent: 100 } },
    } as Sample;
    const storedBad = asStored([...samples.slice(0, 3), far, ...samples.slice(4, 10)]);
    t.equal((await storedEncode(storedBad, 128_000)).count, 3, 'the batch stops before the sample');
    t.same(await storedEncode(storedBad.slice(3), 128_000), { payload: new Uint8Array(0), count: 0 });
    t.same(storedTold, [4], 'and it was reported');
    t.equal((await storedEncode(stored, 100)).count, 0);
  },
);

await endAfterMqtt(t);
