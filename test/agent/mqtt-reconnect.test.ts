/**
 * What the MQTT connection says while it cannot connect, against a real Mosquitto and a closed port: the
 * message names the cause that was observed (TCP refused, TLS, CONNACK refusal, a dropped connection), and
 * a broker that comes back after an outage is reported as back, never as an IoT policy problem.
 */
import t from 'tap';
import {
  createMqttConnection,
  observeFailure,
  RECONNECT_DEFAULTS,
  type MqttConnectionOptions,
} from '../../agent/publisher/mqtt-connection.js';
import { endAfterMqtt } from '../harness/exit.js';
import { startMosquitto } from '../harness/mosquitto.js';
import { freePort } from '../harness/net.js';
import type { Teardown } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

function watch(t: Teardown, opts: MqttConnectionOptions) {
  const conn = createMqttConnection(opts);
  t.teardown(() => conn.stop());
  const log: { kind: 'connected' | 'disconnected' | 'connectFailed'; reason: string }[] = [];
  conn.on('connected', () => log.push({ kind: 'connected', reason: '' }));
  conn.on('disconnected', (reason) => log.push({ kind: 'disconnected', reason }));
  conn.on('connectFailed', (reason) => log.push({ kind: 'connectFailed', reason }));
  return { conn, log };
}

await t.test('a closed port: connection refused, said so, no word of a policy', async (t) => {
  const broker = await startMosquitto(t);
  const dev = await broker.deviceCert('apt-1');
  const port = await freePort();
  const { conn, log } = watch(t, {
    thing: 'apt-1',
    endpoint: '127.0.0.1',
    port,
    caFile: broker.caFile,
    certFile: dev.cert,
    keyFile: dev.key,
    minReconnectDelayMs: 100,
    maxReconnectDelayMs: 200,
    diagnoseAfterMs: 300,
  });
  conn.start();
  await waitFor(() => log.some((e) => /nothing listens on that host and port/.test(e.reason)), {
    what: 'the diagnosis',
  });
  t.ok(
    log.some((e) =>
      new RegExp(`CONNECTION_REFUSED: 127\\.0\\.0\\.1:${port} refused the TCP connection`).test(e.reason),
    ),
    'each attempt: TCP refused, with the endpoint',
  );
  t.same(
    log.filter((e) => /policy/i.test(e.reason)),
    [],
    'never the IoT policy',
  );
});

await t.test('a broker outage: dropped, refused, then "back", never "check the policy"', async (t) => {
  const broker = await startMosquitto(t);
  const dev = await broker.deviceCert('apt-1');
  // Exact 3 s between attempts, so the broker is back for a while before the client's next attempt: the
  // window in which the diagnosis sees TLS succeed although the client has not reconnected yet.
  const { conn, log } = watch(t, {
    thing: 'apt-1',
    endpoint: '127.0.0.1',
    port: broker.port,
    caFile: broker.caFile,
    certFile: dev.cert,
    keyFile: dev.key,
    minReconnectDelayMs: 3_000,
    maxReconnectDelayMs: 3_000,
    reconnectJitter: 'none',
    diagnoseAfterMs: 100,
  });
  conn.start();
  await waitFor(() => conn.connected, { what: 'the first connection' });
  await broker.kill();
  await waitFor(() => log.some((e) => e.kind === 'connectFailed' && /refused the TCP/.test(e.reason)), {
    what: 'a refused attempt during the outage',
  });
  const dropped = log.find((e) => e.kind === 'disconnected');
  t.match(dropped?.reason, /the connection to 127\.0\.0\.1:\d+ dropped .* reconnecting/);
  // Right after a refused attempt: the next one is 3 s away.
  const restartAt = log.length;
  await broker.start();
  await waitFor(() => conn.connected, { what: 'the reconnection', timeout: 20_000 });
  const meanwhile = log.slice(restartAt);
  t.ok(
    meanwhile.some((e) =>
      /accepts TLS connections again; the client reconnects at its next attempt/.test(e.reason),
    ),
    `the broker reported back: ${JSON.stringify(meanwhile.map((e) => e.reason))}`,
  );
  t.same(
    log.filter((e) => /policy/i.test(e.reason)),
    [],
    'never the IoT policy',
  );
});

await t.test('a CONNACK refusal names the reason code and the policy', async (t) => {
  // Mosquitto refuses client ids without this prefix with CONNACK "not authorized", as IoT Core refuses a
  // client id its policy does not allow.
  const broker = await startMosquitto(t, { extraConfig: ['clientid_prefixes allowed-'] });
  const dev = await broker.deviceCert('apt-1');
  const { conn, log } = watch(t, {
    thing: 'apt-1',
    endpoint: '127.0.0.1',
    port: broker.port,
    caFile: broker.caFile,
    certFile: dev.cert,
    keyFile: dev.key,
    minReconnectDelayMs: 100,
    maxReconnectDelayMs: 200,
    diagnoseAfterMs: 300,
  });
  conn.start();
  await waitFor(() => log.some((e) => /succeeds but MQTT does not connect/.test(e.reason)), {
    what: 'the diagnosis',
  });
  t.ok(
    log.some((e) =>
      /refused the MQTT connection \(CONNACK NotAuthorized 0x87\) — check the thing name \(client id apt-1\) and the IoT policy/.test(
        e.reason,
      ),
    ),
    'CONNACK reason and the fix',
  );
  t.notOk(conn.connected);
});

t.test('a close during CONNECT after TLS (how IoT Core denies a CONNECT) points at the policy', async (t) => {
  const where = { endpoint: 'x-ats.iot.eu-west-1.amazonaws.com:8883', thing: 'apt-1' };
  t.match(
    observeFailure({ error_name: 'AWS_IO_SOCKET_CLOSED', message: 'socket is closed.' }, 'connect', where),
    {
      kind: 'closed',
      message: /during MQTT CONNECT, after TCP and TLS succeeded .* iot:Connect for client id apt-1/,
    },
  );
  t.match(observeFailure({ error_name: 'AWS_IO_SOCKET_CLOSED', message: 'x' }, 'dropped', where), {
    kind: 'dropped',
  });
  t.match(observeFailure({ error_name: 'AWS_IO_SOCKET_CLOSED' }, 'dropped', where, { reasonCode: 0x8e }), {
    message: /SessionTakenOver 0x8e\) — another connection with client id apt-1 took over/,
  });
  t.ok(RECONNECT_DEFAULTS.maxDelayMs <= 30_000, 'the box is back within 30 s of an outage ending');
  t.end();
});

await endAfterMqtt(t);
