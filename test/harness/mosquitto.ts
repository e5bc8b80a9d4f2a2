/**
 * A real Mosquitto 2 broker standing in for AWS IoT Core: TLS only, mutual TLS required, the client
 * certificate's CN becomes the MQTT username (as the thing name does at IoT Core), MQTT 5 available.
 * Each broker gets its own throwaway CA, server certificate and config in a temp dir, a free loopback port,
 * and can be killed (SIGKILL) and restarted on the same port to test delivery through broker outages.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canConnect, freePort } from './net.js';
import { issueCert, makeCa, writeIssued, type Ca, type CertFiles, type IssueOptions } from './pki.js';
import { spawnLogged, type Spawned } from './process.js';
import { tempDir, type Teardown } from './tmp.js';
import { GiveUp, waitFor } from './wait.js';

export interface DeviceCredentials extends CertFiles {
  readonly thing: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly certDer: Buffer;
  readonly fingerprint: string;
}

export interface Broker {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** PEM file of the CA that signed the server certificate (what a client trusts). */
  readonly caFile: string;
  readonly ca: Ca;
  readonly dir: string;
  /** Issues a client certificate with CN = thing, signed by this broker's CA, written to files. */
  deviceCert(thing: string, opts?: Omit<IssueOptions, 'cn' | 'server'>): Promise<DeviceCredentials>;
  /** SIGKILLs the broker (no clean shutdown), as a crash or a network drop would look to clients. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same certificates; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Broker log so far (for failure messages). */
  log(): string;
  readonly running: boolean;
}

export interface BrokerOptions {
  /** Extra mosquitto.conf lines. */
  extraConfig?: string[];
}

export async function startMosquitto(t: Teardown, opts: BrokerOptions = {}): Promise<Broker> {
  const dir = await tempDir(t, 'meterlink-mqtt-');
  const port = await freePort();
  const ca = await makeCa('meterlink test broker CA');
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, ca.certPem);
  const server = await writeIssued(
    dir,
    'server',
    await issueCert(ca, { cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], server: true }),
  );
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    [
      'per_listener_settings false',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      'log_timestamp false',
      'allow_anonymous false',
      // Run as root (CI) mosquitto would drop to user "mosquitto", who cannot read our 0700 temp dir.
      'user root',
      // IoT Core takes messages up to 128 KB; a little room for the MQTT header and properties.
      'max_packet_size 132000',
      'max_inflight_messages 100',
      `listener ${port} 127.0.0.1`,
      'protocol mqtt',
      `cafile ${caFile}`,
      `certfile ${server.cert}`,
      `keyfile ${server.key}`,
      'require_certificate true',
      'use_identity_as_username true',
      'tls_version tlsv1.2',
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  );

  let proc: Spawned | undefined;
  const oldLogs: string[] = [];

  const start = async () => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) return;
    if (proc) oldLogs.push(proc.output());
    const p = spawnLogged('mosquitto', ['-c', conf]);
    proc = p;
    await waitFor(
      async () => {
        if (p.child.exitCode !== null)
          throw new GiveUp(`mosquitto exited: ${p.output() || 'is mosquitto installed?'}`);
        return canConnect(port);
      },
      { what: `mosquitto on 127.0.0.1:${port}`, timeout: 15_000 },
    );
  };
  const kill = async () => {
    await proc?.kill('SIGKILL');
  };
  await start();
  t.teardown(kill);

  return {
    host: '127.0.0.1',
    port,
    caFile,
    ca,
    dir,
    async deviceCert(thing, more = {}) {
      const item = await issueCert(ca, { ...more, cn: thing });
      const files = await writeIssued(dir, `device-${thing}-${item.fingerprint.slice(0, 8)}`, item);
      return { ...files, thing, ...item };
    },
    kill,
    start,
    log: () => [...oldLogs, proc?.output() ?? ''].join('\n--- restart ---\n'),
    get running() {
      return !!proc && proc.child.exitCode === null && proc.child.signalCode === null;
    },
  };
}
