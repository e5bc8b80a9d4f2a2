/**
 * Draining a backlog while the buffer's disk is full, with the real parts: a LevelDB buffer on a small tmpfs,
 * the publisher with the stored-sample encoder, Mosquitto with mutual TLS, a cloud subscriber that verifies
 * every batch. Acks are writes, so they fail; the buffer closes its store to reopen it; reads then fail too.
 * The publisher must not end (an uncaught error here once made the agent exit 1): it reports, backs off,
 * and once space returns it finishes the drain by itself with every sample delivered.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createStoredBatchEncoder } from '../../agent/publisher/batch-encoder.js';
import { createBatchPublisher, type PublisherEvent } from '../../agent/publisher/batch-publisher.js';
import { createMqttConnection } from '../../agent/publisher/mqtt-connection.js';
import { openLevelBuffer } from '../../buffer/index.js';
import { batchTopic } from '../../cloud-contract/index.js';
import { fillUp, smallDisk } from '../buffer/small-disk.js';
import { samplesFrom } from '../buffer/fixtures.js';
import { startCloudSubscriber } from '../harness/cloud-subscriber.js';
import { endAfterMqtt } from '../harness/exit.js';
import { startMosquitto } from '../harness/mosquitto.js';
import { waitFor } from '../harness/wait.js';

const THING = 'apt-3-meterbox';
const N = 20_000;

await t.test(
  'a drain on a full disk: no crash, the publisher waits, and finishes once space returns',
  async (t) => {
    const broker = await startMosquitto(t);
    const device = await broker.deviceCert(THING);
    const cloud = await startCloudSubscriber(t, broker, THING, () => device.certPem);
    const disk = await smallDisk(t, '24m');
    const buf = await openLevelBuffer({ path: join(disk, 'buffer'), maxSize: Infinity });
    for (let i = 0; i < N; i += 1000) await buf.append(samplesFrom(i, 1000));
    await fillUp(join(disk, 'filler'));

    const conn = createMqttConnection({
      thing: THING,
      endpoint: '127.0.0.1',
      port: broker.port,
      caFile: broker.caFile,
      certFile: device.cert,
      keyFile: device.key,
    });
    const events: PublisherEvent[] = [];
    const publisher = createBatchPublisher({
      source: { readOldest: (o) => buf.readStored(o), ack: (a, b) => buf.ack(a, b) },
      connection: conn,
      encode: createStoredBatchEncoder({ device: THING, privateKey: device.keyPem, certDer: device.certDer }),
      topic: batchTopic(THING),
      maxDelayMs: 200,
      // Small batches: many acks, so the drain is still going when they start failing.
      maxBytes: 8 * 1024,
      window: 2,
      onEvent: (e) => events.push(e),
    });
    t.teardown(async () => {
      await publisher.stop(1000);
      await conn.stop();
      await buf.close();
    });
    conn.start();
    publisher.start();

    const failed = await waitFor(() => events.find((e) => e.type === 'source-failed'), {
      what: `the publisher meeting the full disk: ${JSON.stringify(events.slice(-3))}`,
      timeout: 30_000,
    });
    t.match(failed, { type: 'source-failed', error: /full/ }, 'reported, not thrown');
    t.ok(buf.stats().count > 0, `${buf.stats().count} samples still stored, waiting`);

    await rm(join(disk, 'filler'));
    await waitFor(() => buf.stats().count === 0 && cloud.seqs().size === N, {
      what: `the drain finished after space returned (${cloud.seqs().size} of ${N} at the cloud)`,
      timeout: 60_000,
    });
    const seqs = cloud.seqs();
    t.equal(seqs.size, N, 'every sample delivered (duplicates only from rewinds)');
    t.ok([...seqs].every((s) => s >= 1 && s <= N));
    t.same(cloud.rejected, [], 'every batch verified');
  },
);

await endAfterMqtt(t);
