/**
 * A real Mosquitto 2 broker standing in for AWS IoT Core: TLS only, mutual TLS required, the client
 * certificate's CN becomes the MQTT username (as the thing name does at IoT Core), MQTT 5 available.
 * Each broker gets its own throwaway CA, server certificate and config in a temp dir, a free loopback port,
 * and can be killed (SIGKILL) and restarted on the same port to test delivery through broker outages.
 * The broker itself is `meterlink demo`'s (agent/demo/mosquitto.ts); this wires it to the test's teardown.
 */
import { startMosquittoBroker, type Broker } from '../../agent/demo/mosquitto.js';
import { tempDir, type Teardown } from './tmp.js';

export type { Broker, DeviceCredentials } from '../../agent/demo/mosquitto.js';

export interface BrokerOptions {
  /** Extra mosquitto.conf lines. */
  extraConfig?: string[];
}

export async function startMosquitto(t: Teardown, opts: BrokerOptions = {}): Promise<Broker> {
  const dir = await tempDir(t, 'meterlink-mqtt-');
  const broker = await startMosquittoBroker({
    dir,
    caName: 'meterlink test broker CA',
    ...(opts.extraConfig ? { extraConfig: opts.extraConfig } : {}),
  });
  t.teardown(() => broker.kill());
  return broker;
}
