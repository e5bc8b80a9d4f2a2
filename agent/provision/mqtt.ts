/**
 * A short-lived MQTT 5 session for provisioning (claim certificate, or proving a new certificate), on
 * aws-iot-device-sdk-v2 like the agent. Not the agent's publisher: no reconnect loop, it either connects
 * within the timeout or says why not.
 */
import { once } from 'node:events';
import { iot, mqtt5 } from 'aws-iot-device-sdk-v2';
import { healthTopic } from '../../cloud-contract/topics.js';
import { AMAZON_ROOT_CA_1_PEM } from './amazon-root-ca.js';
import { ProvisionError } from './errors.js';

export interface MqttTarget {
  endpoint: string;
  port: number;
  /** CA file to trust; default the bundled Amazon Root CA 1. */
  caFile?: string | undefined;
}

export interface MqttSessionOptions extends MqttTarget {
  certFile: string;
  keyFile: string;
  clientId: string;
  timeoutMs?: number;
}

export interface MqttSession {
  readonly client: mqtt5.Mqtt5Client;
  close(): Promise<void>;
}

function describe(err: unknown, where: string): string {
  const e = err as { error_name?: string; message?: string } | undefined;
  const name = e?.error_name ?? '';
  const msg = e?.message ?? String(err);
  if (/TLS|SSL|X509|CERT/i.test(name))
    return `TLS handshake with ${where} failed (${name}): check the CA, and that the certificate is active and unexpired`;
  if (/CONNACK|NOT_AUTHORIZED|BAD_USERNAME/i.test(name))
    return `${where} refused the connection (${name}): check the IoT policy attached to the certificate and the client id`;
  if (/SOCKET|DNS|CONNECTION_REFUSED|TIMEOUT|NETWORK/i.test(name))
    return `cannot reach ${where} (${name}): check the endpoint, the port and the network`;
  return `${where}: ${name || msg}`;
}

export async function openMqttSession(opts: MqttSessionOptions): Promise<MqttSession> {
  const where = `${opts.endpoint}:${opts.port}`;
  const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
    opts.endpoint,
    opts.certFile,
    opts.keyFile,
  );
  if (opts.caFile) builder.withCertificateAuthorityFromPath(undefined, opts.caFile);
  else builder.withCertificateAuthority(AMAZON_ROOT_CA_1_PEM);
  builder
    .withPort(opts.port)
    .withConnectProperties({ clientId: opts.clientId, keepAliveIntervalSeconds: 60 })
    .withSessionBehavior(mqtt5.ClientSessionBehavior.Clean)
    .withMinReconnectDelayMs(500)
    .withMaxReconnectDelayMs(2_000);
  const client = new mqtt5.Mqtt5Client(builder.build());
  let running = false;
  let closed = false;
  const stop = async () => {
    if (!running) return;
    running = false;
    const stopped = once(client, 'stopped');
    client.stop();
    await stopped;
  };
  const close = async () => {
    if (closed) return;
    await stop();
    closed = true;
    client.close();
  };
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await new Promise<{ ok: true } | { ok: false; error: string }>((resolve) => {
    client.once('connectionSuccess', () => resolve({ ok: true }));
    client.once('connectionFailure', (e: mqtt5.ConnectionFailureEvent) =>
      resolve({ ok: false, error: describe(e.error, where) }),
    );
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          error: `no answer from ${where} within ${timeoutMs} ms: check the endpoint and network`,
        }),
      timeoutMs,
    );
    running = true;
    client.start();
  });
  clearTimeout(timer);
  if (!outcome.ok) {
    await close();
    throw new ProvisionError('CONNECT_FAILED', outcome.error, { endpoint: opts.endpoint, port: opts.port });
  }
  return { client, close };
}

/**
 * Proves a certificate end to end: a QoS 1 health message to `meterlink/v1/{thing}/health`, PUBACKed.
 * (Topic from cloud-contract, the one place topics are built.)
 */
export async function publishHealth(
  session: MqttSession,
  thing: string,
  body: Record<string, unknown>,
): Promise<void> {
  const payload = JSON.stringify({ thing, ts: Date.now(), ...body });
  let res: mqtt5.PublishCompletionResult;
  try {
    res = await session.client.publish({
      topicName: healthTopic(thing),
      qos: mqtt5.QoS.AtLeastOnce,
      payload,
    });
  } catch (err) {
    throw new ProvisionError(
      'CONNECT_FAILED',
      `the health publish with the new certificate failed: ${describe(err, 'the broker')}`,
      {
        thing,
      },
      { cause: err },
    );
  }
  const code = res?.reasonCode ?? 0;
  if (code !== mqtt5.PubackReasonCode.Success && code !== mqtt5.PubackReasonCode.NoMatchingSubscribers)
    throw new ProvisionError(
      'CONNECT_FAILED',
      `the broker refused the health publish with the new certificate (PUBACK reason ${code}): check that the ` +
        'IoT policy lets the thing publish to its own topics',
      { thing, reasonCode: code },
    );
}
