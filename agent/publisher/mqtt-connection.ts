/**
 * The device's MQTT 5 connection to AWS IoT Core (or Mosquitto in tests), on aws-iot-device-sdk-v2.
 *
 * Mutual TLS from key/cert files, a pinned CA, client id = thing name, keep-alive, the SDK's reconnect with
 * exponential backoff and full jitter (capped at 30 s: `RECONNECT_DEFAULTS`), and the SDK's IoT Core flow control (512 KB/s, 100 publishes/s per
 * connection) so we never trip IoT Core's throttling. Port 443 works too: the SDK's IoT builder offers ALPN
 * `x-amzn-mqtt-ca`, which IoT Core requires for MQTT on 443.
 *
 * This module knows nothing of batches: it publishes bytes and reports, per publish, whether the broker
 * acknowledged it with success, refused it with a reason code, or whether it never got there.
 *
 * The builder and client come straight from aws-crt's `iot` and `mqtt5` modules, which are the very objects
 * aws-iot-device-sdk-v2 re-exports: importing the SDK's index also loads its Greengrass IPC, shadow, jobs,
 * identity and event-stream clients, 2.3 MiB of V8 heap on a box that uses none of them at run time
 * (aws-crt's two modules: 0.7 MiB).
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
  /** Reconnect backoff (default `RECONNECT_DEFAULTS`). */
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** `full` (default) spreads each delay over [0, backoff]; `none` makes them exact (tests of timing). */
  reconnectJitter?: 'full' | 'none';
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

/**
 * What a failed or dropped connection says about its likely cause, from what the client observed:
 * - `refused`: TCP connection refused — nothing listens (the endpoint is down or restarting, or a wrong port);
 * - `unreachable`: no route, no DNS answer, a timeout — the network, DNS or a firewall;
 * - `tls`: the TLS handshake failed — CA, certificate or key;
 * - `connack`: the broker answered CONNECT with a refusal (reason code) — thing name, IoT policy;
 * - `closed`: TCP and TLS worked, then the endpoint closed the connection during CONNECT without a CONNACK,
 *   which is how AWS IoT Core answers a CONNECT its policy denies;
 * - `dropped`: an established connection ended (the network or the endpoint went away, or a DISCONNECT);
 * - `other`: anything else, named as aws-crt names it.
 */
export type FailureKind = 'refused' | 'unreachable' | 'tls' | 'connack' | 'closed' | 'dropped' | 'other';

export interface ConnectionObservation {
  readonly kind: FailureKind;
  /** aws-crt's error name (e.g. AWS_IO_SOCKET_CONNECTION_REFUSED). */
  readonly name: string;
  /** The CONNACK or DISCONNECT reason code from the broker, when there was one. */
  readonly reasonCode?: number;
  /** One line for logs and status: the cause, what was seen, the fix. */
  readonly message: string;
}

const connectReasonName = (code: number): string =>
  (mqtt5.ConnectReasonCode as unknown as Record<number, string>)[code] ?? `0x${code.toString(16)}`;
const disconnectReasonName = (code: number): string =>
  (mqtt5.DisconnectReasonCode as unknown as Record<number, string>)[code] ?? `0x${code.toString(16)}`;
const hex = (code: number) => `0x${code.toString(16).padStart(2, '0')}`;

/**
 * Classifies what aws-crt reported: `phase` is `connect` for a failed attempt, `dropped` for the end of an
 * established connection. `endpoint` (host:port) and `thing` go into the message.
 */
export function observeFailure(
  err: unknown,
  phase: 'connect' | 'dropped',
  where: { endpoint: string; thing: string },
  packet?: { reasonCode?: number } | undefined,
): ConnectionObservation {
  const e = err as { error_name?: string; message?: string } | undefined;
  const name = e?.error_name ?? '';
  const detail = e?.message ?? String(err);
  const at = where.endpoint;
  const code = packet?.reasonCode;
  const make = (kind: FailureKind, message: string): ConnectionObservation => ({
    kind,
    name,
    ...(code !== undefined ? { reasonCode: code } : {}),
    message: `${name ? `${name}: ` : ''}${message}`,
  });
  if (/TLS|SSL|X509|CERT|PKCS|PEM/i.test(name))
    return make(
      'tls',
      `TLS handshake with ${at} failed — check that cloud.ca is the CA of the endpoint, and that the device certificate is active, unexpired and signed by a CA the endpoint trusts (${detail})`,
    );
  if (/CONNACK/i.test(name) || (phase === 'connect' && code !== undefined))
    return make(
      'connack',
      `${at} refused the MQTT connection (CONNACK ${code === undefined ? 'refusal' : `${connectReasonName(code)} ${hex(code)}`}) — check the thing name (client id ${where.thing}) and the IoT policy attached to the certificate`,
    );
  if (/CONNECTION_REFUSED/i.test(name))
    return make(
      'refused',
      `${at} refused the TCP connection: nothing accepts connections there — the endpoint is down or restarting (reconnecting with backoff), or cloud.endpoint/cloud.port is wrong`,
    );
  if (/DNS|NO_ROUTE|NETWORK_DOWN|TIMEOUT|TIMED_OUT|UNREACHABLE|INVALID_ADDRESS/i.test(name))
    return make(
      'unreachable',
      `cannot reach ${at} (${detail}) — check the box's network and DNS, cloud.endpoint and cloud.port (443 if a firewall blocks 8883)`,
    );
  if (phase === 'dropped')
    return make(
      'dropped',
      code !== undefined
        ? `${at} ended the connection (DISCONNECT ${disconnectReasonName(code)} ${hex(code)})${code === 0x8e ? ' — another connection with client id ' + where.thing + ' took over' : ''}; reconnecting with backoff`
        : `the connection to ${at} dropped (${detail}) — the network or the endpoint went away; reconnecting with backoff`,
    );
  if (/CLOSED|RESET|UNEXPECTED_HANGUP/i.test(name))
    return make(
      'closed',
      `${at} closed the connection during MQTT CONNECT, after TCP and TLS succeeded — at AWS IoT Core this is how a CONNECT the IoT policy denies is answered: check the policy allows iot:Connect for client id ${where.thing}, and that no other device uses that thing name`,
    );
  return make('other', detail);
}

/** Turns a CRT error (or anything) into one readable line, with the hint an installer needs. */
export function describeCrtError(err: unknown): string {
  return observeFailure(err, 'connect', { endpoint: 'the endpoint', thing: '(the thing name)' }).message;
}

/**
 * What the connection says when it has not connected for a while and a plain TLS handshake (`probeTls`) has
 * been tried: the probe's own finding when it fails, else what the client last observed. A probe that
 * succeeds after refused or dropped attempts means the endpoint is back and the client connects at its next
 * attempt; only a CONNACK refusal or a close during CONNECT points at the IoT policy.
 */
export function diagnose(
  probe: { ok: true } | { ok: false; message: string },
  last: ConnectionObservation | undefined,
  where: { endpoint: string; maxReconnectDelayMs: number },
): string {
  if (!probe.ok) return probe.message;
  if (last?.kind === 'connack' || last?.kind === 'closed')
    return `the TLS handshake with ${where.endpoint} succeeds but MQTT does not connect: ${last.message}`;
  const wait = `within ${Math.round(where.maxReconnectDelayMs / 1000)} s`;
  if (last === undefined)
    return `the TLS handshake with ${where.endpoint} succeeds but the MQTT client has not connected yet; it retries ${wait}`;
  return `${where.endpoint} accepts TLS connections again; the client reconnects at its next attempt (${wait}); its last attempt: ${last.message}`;
}

/**
 * Reconnect backoff: exponential from 1 s, full jitter, capped at 30 s. The cap bounds how long the box stays
 * offline after an outage ends: with full jitter each attempt comes anywhere within [0, min(cap, 1 s × 2^n)],
 * so by the end of a long outage the wait is uniform over [0, cap]. At 120 s, a 60 s broker outage ended in
 * an 83 s wait (one draw; up to 2 minutes possible); at 30 s the box is back within 30 s, 15 s on average.
 * The cap still spreads a fleet's reconnects after a regional outage: 3,000 boxes over 30 s make 100
 * CONNECTs/s, the lowest of IoT Core's per-account connect rates (500/s in the large regions).
 */
export const RECONNECT_DEFAULTS = Object.freeze({ minDelayMs: 1_000, maxDelayMs: 30_000 });

export function createMqttConnection(opts: MqttConnectionOptions): MqttConnection {
  const maxReconnectDelayMs = opts.maxReconnectDelayMs ?? RECONNECT_DEFAULTS.maxDelayMs;
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
    .withRetryJitterMode(
      opts.reconnectJitter === 'none' ? mqtt5.RetryJitterType.None : mqtt5.RetryJitterType.Full,
    )
    .withMinReconnectDelayMs(opts.minReconnectDelayMs ?? RECONNECT_DEFAULTS.minDelayMs)
    .withMaxReconnectDelayMs(maxReconnectDelayMs)
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
  const where = { endpoint: `${opts.endpoint}:${opts.port}`, thing: opts.thing };
  let connected = false;
  let started = false;
  let maximumPacketSize: number | undefined;
  let diagnoseTimer: NodeJS.Timeout | undefined;
  /** What the last failed attempt or dropped connection showed (cleared on connect). */
  let lastFailure: ConnectionObservation | undefined;
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
            diagnose(r, lastFailure, { endpoint: where.endpoint, maxReconnectDelayMs }),
          );
          scheduleDiagnosis();
        }
      });
    }, diagnoseAfterMs);
    diagnoseTimer.unref();
  };

  client.on('connectionSuccess', (e) => {
    connected = true;
    lastFailure = undefined;
    clearTimeout(diagnoseTimer);
    maximumPacketSize = e.settings.maximumPacketSizeToServer;
    emitter.emit('connected');
  });
  client.on('connectionFailure', (e) => {
    lastFailure = observeFailure(e.error, 'connect', where, e.connack);
    emitter.emit('connectFailed', lastFailure.message);
  });
  client.on('disconnection', (e) => {
    const was = connected;
    connected = false;
    if (was) {
      lastFailure = observeFailure(e.error, 'dropped', where, e.disconnect);
      emitter.emit('disconnected', lastFailure.message);
      scheduleDiagnosis();
    }
  });
  // Serious client errors are reported through the connection events; keep the emitter from throwing.
  client.on('error', (e) => emitter.emit('connectFailed', observeFailure(e, 'connect', where).message));

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
