import t from 'tap';
import { endAfterMqtt } from './exit.js';
import { once } from 'node:events';
import { mqtt5 } from 'aws-iot-device-sdk-v2';
import { startMosquitto } from './mosquitto.js';
import { testClient } from './mqtt-client.js';
import { issueCert, makeCa, writeIssued } from './pki.js';
import { tempDir } from './tmp.js';
import { canConnect } from './net.js';

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

await endAfterMqtt(t);
