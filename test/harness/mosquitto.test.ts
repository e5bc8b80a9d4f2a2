import t from 'tap';
import { endAfterMqtt } from './exit.js';
import { once } from 'node:events';
import { mqtt5 } from 'aws-iot-device-sdk-v2';
import { startMosquitto } from './mosquitto.js';
import { testClient } from './mqtt-client.js';
import { issueCert, makeCa, writeIssued } from './pki.js';
import { tempDir } from './tmp.js';
import { canConnect, freePort } from './net.js';
import { createServer, type AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { startMosquittoBroker } from '../../agent/demo/mosquitto.js';

await t.test(
  'a device with a valid certificate connects over MQTT 5 and round-trips a QoS 1 message',
  async (t) => {
    const broker = await startMosquitto(t);
    const dev = await broker.deviceCert('apt-12-meterbox');
    const c = testClient({
      ...broker,
      caFile: broker.caFile,
      clientId: dev.thing,
      certFile: dev.cert,
      keyFile: dev.key,
    });
    t.teardown(() => c.close());
    t.same(await c.connect(), { ok: true }, 'connected with mutual TLS');

    await c.subscribe('meterlink/v1/apt-12-meterbox/#');
    const got = once(c.client, 'messageReceived');
    const puback = await c.client.publish({
      topicName: 'meterlink/v1/apt-12-meterbox/health',
      payload: Buffer.from('{"ok":true}'),
      qos: mqtt5.QoS.AtLeastOnce,
    });
    t.equal(puback?.type, mqtt5.PacketType.Puback, 'QoS 1 publish was PUBACKed');
    t.equal((puback as mqtt5.PubackPacket).reasonCode, mqtt5.PubackReasonCode.Success);
    await got;
    t.equal(c.received[0]?.topic, 'meterlink/v1/apt-12-meterbox/health');
    t.equal(c.received[0]?.payload.toString(), '{"ok":true}');
    t.match(broker.log(), /as apt-12-meterbox/, 'broker took the certificate CN as the identity');
  },
);

await t.test('a certificate from another CA is refused', async (t) => {
  const broker = await startMosquitto(t);
  const dir = await tempDir(t);
  const rogueCa = await makeCa('rogue CA');
  const rogue = await writeIssued(dir, 'rogue', await issueCert(rogueCa, { cn: 'apt-12-meterbox' }));
  const c = testClient({
    ...broker,
    caFile: broker.caFile,
    clientId: 'apt-12-meterbox',
    certFile: rogue.cert,
    keyFile: rogue.key,
  });
  t.teardown(() => c.close());
  const outcome = await c.connect();
  t.equal(outcome.ok, false, 'connection refused');
});

await t.test('a client without a certificate is refused', async (t) => {
  const broker = await startMosquitto(t);
  const c = testClient({ ...broker, caFile: broker.caFile, clientId: 'nobody' });
  t.teardown(() => c.close());
  const outcome = await c.connect();
  t.equal(outcome.ok, false, 'connection refused');
});

await t.test('the broker can be killed and restarted on the same port', async (t) => {
  const broker = await startMosquitto(t);
  const dev = await broker.deviceCert('box-1');
  await broker.kill();
  t.equal(broker.running, false);
  t.equal(await canConnect(broker.port), false, 'port closed while the broker is down');
  await broker.start();
  t.equal(broker.running, true);
  const c = testClient({
    ...broker,
    caFile: broker.caFile,
    clientId: dev.thing,
    certFile: dev.cert,
    keyFile: dev.key,
  });
  t.teardown(() => c.close());
  t.same(await c.connect(), { ok: true }, 'connects after restart');
});

await t.test('a port taken between choosing and binding: the broker chooses again', async (t) => {
  // Someone else listens on the first port the broker is offered (as a process could between our check and
  // Mosquitto's bind); the broker must move to the next one instead of failing the test that needed it.
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const takenPort = (taken.address() as AddressInfo).port;
  const offered: number[] = [];
  const dir = await tempDir(t, 'meterlink-mqtt-');
  const broker = await startMosquittoBroker({
    dir,
    choosePort: async () => {
      const p = offered.length === 0 ? takenPort : await freePort();
      offered.push(p);
      return p;
    },
  });
  t.teardown(() => broker.kill());
  t.equal(offered.length, 2, 'a second port was chosen');
  t.equal(broker.port, offered[1], 'the broker listens on the second one');
  t.ok(await canConnect(broker.port));
  t.match(broker.log(), /address already in use/i, 'the failed first start is in the log');
});

await t.test('a port the caller named and that is taken is a clear start failure', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as AddressInfo).port;
  const dir = await tempDir(t, 'meterlink-mqtt-');
  await t.rejects(startMosquittoBroker({ dir, port }), {
    code: 'START_FAILED',
    message: /address already in use/i,
  });
});

await t.test('freePort: below the ephemeral range, bindable, and not the same twice in a row', async (t) => {
  const [lo] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'))
    .trim()
    .split(/\s+/)
    .map(Number);
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  for (const p of ports) t.ok(p >= 20_000 && p < (lo as number), `${p} below ${lo}`);
  t.ok(new Set(ports).size >= 18, 'random, not one port handed to everyone');
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(ports[0], '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  t.pass('the port could be bound');
});

await endAfterMqtt(t);
