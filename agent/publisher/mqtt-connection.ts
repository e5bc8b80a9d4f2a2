/**
 * The device's MQTT 5 connection to AWS IoT Core (or Mosquitto in tests), on aws-iot-device-sdk-v2.
 *
 * Mutual TLS from key/cert files, a pinned CA, client id = thing name, keep-alive, the SDK's reconnect with
 * exponential backoff and full jitter, and the SDK's IoT Core flow control (512 KB/s, 100 publishes/s per
 * connection) so we never trip IoT Core's throttling. Port 443 works too: the SDK's IoT builder offers ALPN
 * `x-amzn-mqtt-ca`, which IoT Core requires for MQTT on 443.
 *
 * This module knows nothing of batches: it publishes bytes and reports, per publish, whether the broker
 * acknowledged it with success, refused it with a reason code, or whether it never got there.
 *
 * The builder and client come straight from aws-crt's `iot` and `mqtt5` modules, which are the very objects
 * aws-iot-device-sdk-v2 re-exports: importing the SDK's index also loads its Greengrass IPC, shadow, jobs,
 * identity and event-stream clients, 2.3 MiB of V8 heap on a box that uses none of them at run time
 * (aws-crt's two modules: 0.7 MiB; issue 12).
 */
import { EventEmitter } from 'node:events';
import * as iot from 'aws-crt/dist/native/iot.js';
import * as mqtt5 from 'aws-crt/dist/native/mqtt5.js';
import { probeTls } from './tls-probe.js';

export interface MqttConnectionOptions {
  /** AWS IoT thing name; used as the MQTT client id (IoT policies match on it). */
  thing: string;
  endpoint: string;
  /** 8883 (MQTT over TLS) or 443 (ALPN x-amzn-mqtt-ca). */
  port: number;
  /** CA bundle to trust (Amazon Root CA 1 in production); omit to use the system store. */
  caFile?: string;
  certFile: string;
  keyFile: string;
  keepAliveSeconds?: number;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** IoT Core flow control (512 KB/s, 100 TPS). On by default; off only for tests of raw behaviour. */
  flowControl?: boolean;
  /** How long an unacknowledged QoS 1 publish may wait for its PUBACK before it counts as failed. */
  ackTimeoutSeconds?: number;
  /**
   * Not connected after this long (default 20 s): run a plain TLS handshake to explain why, and report it as
   * `connectFailed`. aws-crt stays silent on some TLS failures (a server that does not chain to cloud.ca).
   */
  diagnoseAfterMs?: number;
}

export type PublishResult =
  | { readonly ok: true; readonly reasonCode: number }
  /** The broker answered with a PUBACK carrying an error reason code. */
  | { readonly ok: false; readonly kind: 'rejected'; readonly reasonCode: number; readonly reason: string }
  /** The publish never got a PUBACK: disconnected, timed out, or refused by client-side validation. */
  | { readonly ok: false; readonly kind: 'failed'; readonly error: string; readonly tooLarge: boolean };

export interface ConnectionEvents {
  connected: [];
  disconnected: [reason: string];
  connectFailed: [reason: string];
}

export interface MqttConnection {
  start(): void;
  /** Disconnects cleanly and releases the native client. */
  stop(): Promise<void>;
  readonly connected: boolean;
  /** Publishes with QoS 1 and resolves with how it ended; never rejects. */
  publish(topic: string, payload: Uint8Array): Promise<PublishResult>;
  /** QoS 0 publish for best-effort messages; resolves false when not connected. */
  publishQos0(topic: string, payload: Uint8Array): Promise<boolean>;
  on<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): void;
  off<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): void;
  /** Negotiated maximum packet size, once connected (the broker may allow less than 128 KB). */
  readonly maximumPacketSize: number | undefined;
}

const successCodes = new Set<number>([
  mqtt5.PubackReasonCode.Success,
  mqtt5.PubackReasonCode.NoMatchingSubscribers,
]);

/** Names for PUBACK reason codes (MQTT 5.0 §3.4.2.1) for logs and status. */
export function pubackReasonName(code: number): string {
  const name = (mqtt5.PubackReasonCode as unknown as Record<number, string>)[code];
  return name ?? `0x${code.toString(16)}`;
}

/** Turns a CRT error (or anything) into one readable line, with the hint an installer needs. */
export function describeCrtError(err: unknown): string {
  const e = err as { error_name?: string; message?: string } | undefined;
  const name = e?.error_name ?? '';
  const msg = e?.message ?? String(err);
  if (/TLS|SSL|X509|CERT/i.test(name)) {
    return `${name}: TLS handshake failed — check that cloud.ca is the CA of the endpoint, and that the device certificate is active, unexpired and signed by a CA the endpoint trusts (${msg})`;
  }
  if (/CONNACK|NOT_AUTHORIZED|BAD_USERNAME/i.test(name)) {
    return `${name}: the broker refused the connection — check the thing name and the IoT policy attached to the certificate (${msg})`;
  }
  if (/SOCKET|DNS|CONNECTION_REFUSED|TIMEOUT/i.test(name)) {
    return `${name}: cannot reach the endpoint — check cloud.endpoint, cloud.port and the network (${msg})`;
  }
  return name ? `${name}: ${msg}` : msg;
}

export function createMqttConnection(opts: MqttConnectionOptions): MqttConnection {
  const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
    opts.endpoint,
    opts.certFile,
    opts.keyFile,
  );
  if (opts.caFile) builder.withCertificateAuthorityFromPath(undefined, opts.caFile);
  builder
    .withPort(opts.port)
    .withConnectProperties({ clientId: opts.thing, keepAliveIntervalSeconds: opts.keepAliveSeconds ?? 60 })
    // A clean session each time: the buffer, not the broker session, remembers what is undelivered.
    .withSessionBehavior(mqtt5.ClientSessionBehavior.Clean)
    .withRetryJitterMode(mqtt5.RetryJitterType.Full)
    .withMinReconnectDelayMs(opts.minReconnectDelayMs ?? 1_000)
    .withMaxReconnectDelayMs(opts.maxReconnectDelayMs ?? 120_000)
    .withAckTimeoutSeconds(opts.ackTimeoutSeconds ?? 60)
    // The buffer is the only queue. With FailAllOnDisconnect every publish not yet acknowledged fails as soon
    // as the connection drops, so the SDK's offline queue never holds the only copy of a batch: the batcher
    // sees the failure and re-reads that range from the buffer after reconnecting. (The default behaviour
    // would keep QoS 1 publishes queued in process memory, lost on a crash and invisible to our backpressure.)
    .withOfflineQueueBehavior(mqtt5.ClientOperationQueueBehavior.FailAllOnDisconnect);
  if (opts.flowControl !== false) {
    builder.withExtendedValidationAndFlowControlOptions(
      mqtt5.ClientExtendedValidationAndFlowControl.AwsIotCoreDefaults,
    );
  }
  const client = new mqtt5.Mqtt5Client(builder.build());
  const emitter = new EventEmitter();
  let connected = false;
  let started = false;
  let maximumPacketSize: number | undefined;
  let diagnoseTimer: NodeJS.Timeout | undefined;
  const diagnoseAfterMs = opts.diagnoseAfterMs ?? 20_000;
  const scheduleDiagnosis = () => {
    clearTimeout(diagnoseTimer);
    diagnoseTimer = setTimeout(() => {
      if (connected || !started) return;
      void probeTls({
        host: opts.endpoint,
        port: opts.port,
        certFile: opts.certFile,
        keyFile: opts.keyFile,
        ...(opts.caFile ? { caFile: opts.caFile } : {}),
        ...(opts.port === 443 ? { alpn: ['x-amzn-mqtt-ca'] } : {}),
      }).then((r) => {
        if (!connected && started) {
          emitter.emit(
            'connectFailed',
            r.ok
              ? 'TLS handshake succeeds but MQTT does not connect — check the IoT policy and thing name'
              : r.message,
          );
          scheduleDiagnosis();
        }
      });
    }, diagnoseAfterMs);
    diagnoseTimer.unref();
  };

  client.on('connectionSuccess', (e) => {
    connected = true;
    clearTimeout(diagnoseTimer);
    maximumPacketSize = e.settings.maximumPacketSizeToServer;
    emitter.emit('connected');
  });
  client.on('connectionFailure', (e) => emitter.emit('connectFailed', describeCrtError(e.error)));
  client.on('disconnection', (e) => {
    const was = connected;
    connected = false;
    if (was) {
      emitter.emit('disconnected', describeCrtError(e.error));
      scheduleDiagnosis();
    }
  });
  // Serious client errors are reported through the connection events; keep the emitter from throwing.
  client.on('error', (e) => emitter.emit('connectFailed', describeCrtError(e)));

  return {
    start() {
      if (started) return;
      started = true;
      client.start();
      scheduleDiagnosis();
    },
    async stop() {
      if (!started) {
        client.removeAllListeners();
        client.close();
        return;
      }
      started = false;
      clearTimeout(diagnoseTimer);
      // aws-crt does not always emit 'stopped' when stopped mid-TLS-handshake: do not wait forever.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        client.once('stopped', () => {
          clearTimeout(timer);
          resolve();
        });
        client.stop();
      });
      connected = false;
      // aws-crt keeps a native handle per event listener (awslabs/aws-crt-nodejs#600): drop them on close.
      client.removeAllListeners();
      client.close();
    },
    get connected() {
      return connected;
    },
    get maximumPacketSize() {
      return maximumPacketSize;
    },
    async publish(topic, payload) {
      // Fixed header (≤ 5) + topic (2 + length) + packet id (2) + properties (≤ 16): refuse locally what the
      // broker's maximum packet size cannot take, so the batcher splits instead of retrying forever.
      const packetBytes = payload.length + Buffer.byteLength(topic) + 25;
      if (maximumPacketSize !== undefined && packetBytes > maximumPacketSize) {
        return {
          ok: false,
          kind: 'failed',
          error: `packet of ${packetBytes} B exceeds the broker maximum ${maximumPacketSize} B`,
          tooLarge: true,
        };
      }
      try {
        const res = await client.publish({ topicName: topic, payload, qos: mqtt5.QoS.AtLeastOnce });
        const puback = res as mqtt5.PubackPacket | undefined;
        const code = puback?.reasonCode ?? mqtt5.PubackReasonCode.Success;
        if (successCodes.has(code)) return { ok: true, reasonCode: code };
        return {
          ok: false,
          kind: 'rejected',
          reasonCode: code,
          reason: puback?.reasonString ?? pubackReasonName(code),
        };
      } catch (err) {
        const error = describeCrtError(err);
        return {
          ok: false,
          kind: 'failed',
          error,
          tooLarge: /PACKET_TOO_LARGE|too large|exceeds/i.test(error),
        };
      }
    },
    async publishQos0(topic, payload) {
      if (!connected) return false;
      try {
        await client.publish({ topicName: topic, payload, qos: mqtt5.QoS.AtMostOnce });
        return true;
      } catch {
        return false;
      }
    },
    on(event, listener) {
      emitter.on(event, listener as (...a: unknown[]) => void);
    },
    off(event, listener) {
      emitter.off(event, listener as (...a: unknown[]) => void);
    },
  };
}
