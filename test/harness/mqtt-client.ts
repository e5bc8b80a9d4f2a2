/**
 * A small MQTT 5 test client on aws-iot-device-sdk-v2 (aws-crt), for harness proof tests and for test
 * subscribers that watch what the agent publishes. It is deliberately not the agent's publisher.
 */
import { once } from 'node:events';
import { iot, io, mqtt5 } from 'aws-iot-device-sdk-v2';

export interface TestClientOptions {
  host: string;
  port: number;
  caFile: string;
  clientId: string;
  /** Client certificate and key files; omit both to connect with TLS but no client certificate. */
  certFile?: string;
  keyFile?: string;
}

export type ConnectOutcome = { ok: true } | { ok: false; error: string };

export interface TestClient {
  readonly client: mqtt5.Mqtt5Client;
  /** Resolves once connected, or with the first failure (the client is then stopped). */
  connect(): Promise<ConnectOutcome>;
  /** Messages received so far, and an event per message. */
  readonly received: { topic: string; payload: Buffer }[];
  subscribe(topicFilter: string): Promise<void>;
  close(): Promise<void>;
}

export function testClient(opts: TestClientOptions): TestClient {
  let config: mqtt5.Mqtt5ClientConfig;
  if (opts.certFile && opts.keyFile) {
    config = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
      opts.host,
      opts.certFile,
      opts.keyFile,
    )
      .withCertificateAuthorityFromPath(undefined, opts.caFile)
      .withPort(opts.port)
      .withConnectProperties({ clientId: opts.clientId, keepAliveIntervalSeconds: 30 })
      .withMinReconnectDelayMs(100)
      .withMaxReconnectDelayMs(500)
      .build();
  } else {
    // TLS without a client certificate: the broker must refuse this.
    const tls = new io.TlsContextOptions();
    tls.override_default_trust_store_from_path(undefined, opts.caFile);
    config = {
      hostName: opts.host,
      port: opts.port,
      tlsCtx: new io.ClientTlsContext(tls),
      connectProperties: { clientId: opts.clientId, keepAliveIntervalSeconds: 30 },
    };
  }
  const client = new mqtt5.Mqtt5Client(config);
  const received: { topic: string; payload: Buffer }[] = [];
  client.on('messageReceived', (e) => {
    const payload = e.message.payload;
    received.push({
      topic: e.message.topicName,
      payload: payload ? Buffer.from(payload as ArrayBuffer) : Buffer.alloc(0),
    });
  });
  let closed = false;
  let running = false;
  const stop = async () => {
    if (!running) return;
    running = false;
    const stopped = once(client, 'stopped');
    client.stop();
    await stopped;
  };
  return {
    client,
    received,
    async connect() {
      const success = once(client, 'connectionSuccess').then(() => ({ ok: true }) as const);
      const failure = once(client, 'connectionFailure').then(([e]) => ({
        ok: false as const,
        error: String((e as mqtt5.ConnectionFailureEvent).error ?? e),
      }));
      running = true;
      client.start();
      const outcome = await Promise.race([success, failure]);
      if (!outcome.ok) await stop();
      return outcome;
    },
    async subscribe(topicFilter) {
      await client.subscribe({ subscriptions: [{ topicFilter, qos: mqtt5.QoS.AtLeastOnce }] });
    },
    async close() {
      if (closed) return;
      closed = true;
      await stop();
      // aws-crt keeps a native handle per event listener alive (awslabs/aws-crt-nodejs#600), which keeps the
      // process running for seconds after close(): drop the listeners first.
      client.removeAllListeners();
      client.close();
    },
  };
}
