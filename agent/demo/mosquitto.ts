/**
 * A real Mosquitto 2 broker standing in for AWS IoT Core, for `meterlink demo` and the tests: TLS only,
 * mutual TLS required, the client certificate's CN becomes the MQTT username (as the thing name does at IoT
 * Core), MQTT 5 available. The broker gets its own throwaway CA, server certificate and config in `dir`, a
 * loopback port, and can be killed (SIGKILL) and restarted on the same port.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DemoError } from './errors.js';
import { issueCert, makeCa, writeIssued, type Ca, type CertFiles, type IssueOptions } from './pki.js';
import { canConnect, freePort, spawnKept, StopWaiting, waitUntil, type KeptProcess } from './process.js';

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

export interface MosquittoOptions {
  /** Directory for the CA, certificates and mosquitto.conf (the caller creates and removes it). */
  dir: string;
  /** Loopback port (default: a free one). */
  port?: number;
  /** Subject CN of the throwaway CA. */
  caName?: string;
  /** The mosquitto executable (default: `mosquitto` from PATH). */
  bin?: string;
  /** Extra mosquitto.conf lines. */
  extraConfig?: readonly string[];
  /** Picks a free loopback port when `port` is not given (default `freePort`). */
  choosePort?: () => Promise<number>;
}

export interface MosquittoConfigInput {
  port: number;
  caFile: string;
  certFile: string;
  keyFile: string;
  extraConfig?: readonly string[];
}

/** mosquitto.conf text for one mTLS listener on 127.0.0.1 that behaves like IoT Core where it matters. */
export function mosquittoConfig(c: MosquittoConfigInput): string {
  return [
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
    `listener ${c.port} 127.0.0.1`,
    'protocol mqtt',
    `cafile ${c.caFile}`,
    `certfile ${c.certFile}`,
    `keyfile ${c.keyFile}`,
    'require_certificate true',
    'use_identity_as_username true',
    'tls_version tlsv1.2',
    ...(c.extraConfig ?? []),
    '',
  ].join('\n');
}

/** Makes the PKI and config in `opts.dir` and starts Mosquitto; resolves once it accepts connections. */
export async function startMosquittoBroker(opts: MosquittoOptions): Promise<Broker> {
  const dir = opts.dir;
  const bin = opts.bin ?? 'mosquitto';
  const choosePort = opts.choosePort ?? freePort;
  let port = opts.port ?? (await choosePort());
  const ca = await makeCa(opts.caName ?? 'meterlink throwaway broker CA');
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, ca.certPem);
  const server = await writeIssued(
    dir,
    'server',
    await issueCert(ca, { cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'], server: true }),
  );
  const conf = join(dir, 'mosquitto.conf');
  const writeConf = () =>
    writeFile(
      conf,
      mosquittoConfig({
        port,
        caFile,
        certFile: server.cert,
        keyFile: server.key,
        ...(opts.extraConfig ? { extraConfig: opts.extraConfig } : {}),
      }),
    );
  await writeConf();

  let proc: KeptProcess | undefined;
  const oldLogs: string[] = [];

  const start = async () => {
    if (proc?.running) return;
    if (proc) oldLogs.push(proc.output());
    const p = spawnKept(bin, ['-c', conf]);
    proc = p;
    try {
      await waitUntil(
        async () => {
          if (!p.running)
            throw new StopWaiting(`mosquitto exited: ${p.output().trim() || 'is mosquitto installed?'}`);
          // Its own "running" line first: something else listening on the port would accept our probe too.
          return /^mosquitto version \S+ running$/m.test(p.output()) && canConnect(port);
        },
        { what: `mosquitto on 127.0.0.1:${port}`, timeout: 15_000 },
      );
    } catch (err) {
      await p.kill('SIGKILL');
      throw new DemoError('START_FAILED', (err as Error).message, { cause: err, context: { port, conf } });
    }
  };
  const kill = async () => {
    await proc?.kill('SIGKILL');
  };
  // A port we chose can still be taken by another process between our check and Mosquitto's bind: then choose
  // again (a caller's own port, and a restart, keep theirs: clients must find the broker where it was).
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      const taken = /address already in use/i.test(proc?.output() ?? '');
      if (!taken || opts.port !== undefined || attempt >= 5) throw err;
      oldLogs.push(proc?.output() ?? '');
      proc = undefined;
      port = await choosePort();
      await writeConf();
    }
  }

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
      return proc?.running ?? false;
    },
  };
}
