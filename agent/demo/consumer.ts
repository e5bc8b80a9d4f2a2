/**
 * The demo's stand-in for the cloud: an MQTT 5 client (aws-crt, its own certificate) subscribed to the
 * thing's topics, which decodes every batch with cloud-contract and verifies its ES256 signature against
 * the device certificate — what the ingest Lambda does — and keeps the figures the live view shows.
 */
import { once } from 'node:events';
import * as iot from 'aws-crt/dist/native/iot.js';
import * as mqtt5 from 'aws-crt/dist/native/mqtt5.js';
import { decodeBatchMessage, parseEvent, valueToNumber } from '../../cloud-contract/index.js';

/** AWS IoT Core meters messages in 5 KB increments (AWS IoT Core pricing: "metered in 5 KB increments"). */
export const billableUnitBytes = 5 * 1024;

export function billableUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / billableUnitBytes));
}

export interface MeterView {
  samples: number;
  lastTs: number;
  /** Latest value of every channel (numbers, in the channel's unit). */
  values: Record<string, number>;
}

export interface ConsumerStats {
  connected: boolean;
  /** Batch messages received, verified, and rejected (with the last reason). */
  batches: number;
  verified: number;
  rejected: number;
  lastRejection: string | null;
  /** Samples in verified batches, and the verified batches' bytes on the wire. */
  samples: number;
  bytes: number;
  billableUnits: number;
  lastBatch: { firstSeq: number; lastSeq: number; samples: number; bytes: number; at: number } | null;
  meters: Map<string, MeterView>;
  events: number;
  lastEvent: { at: number; event: string; message: string } | null;
  healthReports: number;
}

export interface ConsumerOptions {
  host: string;
  port: number;
  caFile: string;
  certFile: string;
  keyFile: string;
  clientId: string;
  thing: string;
  /** PEM of the device certificate batches must be signed with (the cloud's registry, in miniature). */
  deviceCertPem: string;
}

export interface Consumer {
  readonly stats: ConsumerStats;
  /** Waits until every message received so far is decoded. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export async function startConsumer(opts: ConsumerOptions): Promise<Consumer> {
  const config = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
    opts.host,
    opts.certFile,
    opts.keyFile,
  )
    .withCertificateAuthorityFromPath(undefined, opts.caFile)
    .withPort(opts.port)
    .withConnectProperties({ clientId: opts.clientId, keepAliveIntervalSeconds: 30 })
    .withMinReconnectDelayMs(200)
    .withMaxReconnectDelayMs(2_000)
    .build();
  const client = new mqtt5.Mqtt5Client(config);
  const stats: ConsumerStats = {
    connected: false,
    batches: 0,
    verified: 0,
    rejected: 0,
    lastRejection: null,
    samples: 0,
    bytes: 0,
    billableUnits: 0,
    lastBatch: null,
    meters: new Map(),
    events: 0,
    lastEvent: null,
    healthReports: 0,
  };
  const filter = `meterlink/v1/${opts.thing}/#`;
  const subscribe = () =>
    client.subscribe({ subscriptions: [{ topicFilter: filter, qos: mqtt5.QoS.AtLeastOnce }] });

  // Verifying is async; a chain keeps the figures in arrival order.
  let chain = Promise.resolve();
  const onBatch = async (payload: Buffer) => {
    stats.batches++;
    const r = await decodeBatchMessage(payload, {
      resolveKey: () => opts.deviceCertPem,
      expectedDevice: opts.thing,
    });
    if (!r.ok) {
      stats.rejected++;
      stats.lastRejection = `${r.reason}: ${r.detail}`;
      return;
    }
    const { batch } = r;
    stats.verified++;
    stats.samples += batch.samples.length;
    stats.bytes += payload.length;
    stats.billableUnits += billableUnits(payload.length);
    stats.lastBatch = {
      firstSeq: batch.firstSeq,
      lastSeq: batch.lastSeq,
      samples: batch.samples.length,
      bytes: payload.length,
      at: Date.now(),
    };
    for (const s of batch.samples) {
      let m = stats.meters.get(s.meter);
      if (!m) stats.meters.set(s.meter, (m = { samples: 0, lastTs: 0, values: {} }));
      m.samples++;
      if (s.ts >= m.lastTs) {
        m.lastTs = s.ts;
        for (const [ch, v] of Object.entries(s.values)) m.values[ch] = valueToNumber(v);
      }
    }
  };
  client.on('messageReceived', (e) => {
    const topic = e.message.topicName;
    const payload = e.message.payload ? Buffer.from(e.message.payload as ArrayBuffer) : Buffer.alloc(0);
    chain = chain.then(async () => {
      if (topic.endsWith('/batch')) await onBatch(payload);
      else if (topic.endsWith('/event')) {
        const r = parseEvent(payload);
        if (r.ok) {
          stats.events++;
          stats.lastEvent = {
            at: r.message.ts,
            event: r.message.event,
            message: r.message.message ?? '',
          };
        }
      } else if (topic.endsWith('/health')) stats.healthReports++;
    });
  });
  client.on('connectionSuccess', () => {
    stats.connected = true;
    // The broker keeps no sessions: subscribe again after every reconnect.
    void subscribe().catch(() => {});
  });
  client.on('disconnection', () => {
    stats.connected = false;
  });

  const success = once(client, 'connectionSuccess').then(() => undefined);
  const failure = once(client, 'connectionFailure').then(([e]) => {
    throw new Error(`consumer cannot connect: ${String((e as mqtt5.ConnectionFailureEvent).error ?? e)}`);
  });
  client.start();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    const stopped = once(client, 'stopped');
    client.stop();
    await stopped;
    // aws-crt keeps a native handle per listener alive (awslabs/aws-crt-nodejs#600): drop them first.
    client.removeAllListeners();
    client.close();
  };
  try {
    await Promise.race([success, failure]);
    await subscribe();
  } catch (err) {
    await close();
    throw err;
  }
  return {
    stats,
    settle: () => chain,
    close,
  };
}
