/**
 * Plays the cloud for end-to-end tests: subscribes to a thing's batch, event and health topics on the test
 * broker, decodes and verifies every batch with cloud-contract against the device certificate, and keeps
 * what arrived. Re-subscribes after a broker restart (the broker keeps no sessions).
 */
import {
  decodeBatchMessage,
  parseEvent,
  parseHealth,
  type EventV1,
  type HealthV1,
  type Sample,
} from '../../cloud-contract/index.js';
import type { Broker } from './mosquitto.js';
import { testClient, type TestClient } from './mqtt-client.js';
import type { Teardown } from './tmp.js';

export interface CloudSubscriber {
  readonly client: TestClient;
  /** Every sample of every verified batch, in arrival order (duplicates included). */
  readonly samples: Sample[];
  readonly batches: { firstSeq: number; lastSeq: number; bytes: number }[];
  readonly events: EventV1[];
  readonly health: HealthV1[];
  /** Payloads that failed to decode or verify, with the reason (must stay empty). */
  readonly rejected: string[];
  /** Distinct sequence numbers seen. */
  seqs(): Set<number>;
}

export async function startCloudSubscriber(
  t: Teardown,
  broker: Broker,
  thing: string,
  deviceCertPem: () => string,
): Promise<CloudSubscriber> {
  const creds = await broker.deviceCert('cloud-subscriber');
  const client = testClient({
    ...broker,
    caFile: broker.caFile,
    clientId: 'cloud-subscriber',
    certFile: creds.cert,
    keyFile: creds.key,
  });
  t.teardown(() => client.close());
  const filter = `meterlink/v1/${thing}/#`;
  const out: CloudSubscriber = {
    client,
    samples: [],
    batches: [],
    events: [],
    health: [],
    rejected: [],
    seqs: () => new Set(out.samples.map((s) => s.seq)),
  };
  // Decode in arrival order (a verify is async; keep the order of `samples` the order of arrival).
  let chain = Promise.resolve();
  client.client.on('messageReceived', (e) => {
    const topic = e.message.topicName;
    const payload = e.message.payload ? Buffer.from(e.message.payload as ArrayBuffer) : Buffer.alloc(0);
    chain = chain.then(async () => {
      if (topic.endsWith('/batch')) {
        const r = await decodeBatchMessage(payload, {
          resolveKey: () => deviceCertPem(),
          expectedDevice: thing,
        });
        if (!r.ok) {
          out.rejected.push(`${r.reason}: ${r.detail}`);
          return;
        }
        out.samples.push(...r.batch.samples);
        out.batches.push({ firstSeq: r.batch.firstSeq, lastSeq: r.batch.lastSeq, bytes: payload.length });
      } else if (topic.endsWith('/event')) {
        const r = parseEvent(payload);
        if (r.ok) out.events.push(r.message);
        else out.rejected.push(`event ${r.reason}: ${r.detail}`);
      } else if (topic.endsWith('/health')) {
        const r = parseHealth(payload);
        if (r.ok) out.health.push(r.message);
        else out.rejected.push(`health ${r.reason}: ${r.detail}`);
      }
    });
  });
  client.client.on('connectionSuccess', () => void client.subscribe(filter).catch(() => {}));
  const c = await client.connect();
  if (!c.ok) throw new Error(`cloud subscriber cannot connect: ${c.error}`);
  await client.subscribe(filter);
  return out;
}
