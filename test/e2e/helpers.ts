/** Shared set-up for the end-to-end tests: a meter on a pty, a broker, a config, and the agent as a child. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startModbusSimulator, type ModbusSimulator } from '../../drivers/index.js';
import { startCloudSubscriber, type CloudSubscriber } from '../harness/cloud-subscriber.js';
import { startMosquitto, type Broker, type DeviceCredentials } from '../harness/mosquitto.js';
import { startPtyPair, type PtyPair } from '../harness/pty.js';
import { tempDir, type Teardown } from '../harness/tmp.js';

export const THING = 'apt-12-meterbox';

export interface Rig {
  dir: string;
  pty: PtyPair;
  sim: ModbusSimulator;
  broker: Broker;
  device: DeviceCredentials;
  cloud: CloudSubscriber;
  configFile: string;
  statusFile: string;
  bufferPath: string;
  syncFile: string;
}

export interface RigOptions {
  /** Freeze the simulated meter's values at this time. */
  frozenAt?: number;
  interval?: string;
  maxDelay?: string;
  /** Whether the clock counts as synchronised at start (the sync file exists); default true. */
  synced?: boolean;
  /** Extra meters (YAML list items, indented by 2 spaces) appended to `meters:`. */
  extraMeters?: string;
}

export async function startRig(t: Teardown, opts: RigOptions = {}): Promise<Rig> {
  const dir = await tempDir(t, 'meterlink-e2e-');
  const pty = await startPtyPair(t);
  const sim = await startModbusSimulator({
    transport: { kind: 'rtu', path: pty.a, baud: 9600 },
    units: [{ unit: 1, profile: 'eastron-sdm630' }],
    ...(opts.frozenAt !== undefined ? { now: () => opts.frozenAt as number } : {}),
  });
  t.teardown(() => sim.stop());
  const broker = await startMosquitto(t);
  const device = await broker.deviceCert(THING);
  const cloud = await startCloudSubscriber(t, broker, THING, () => device.certPem);
  const syncFile = join(dir, 'synchronized');
  if (opts.synced !== false) await writeFile(syncFile, '');
  const statusFile = join(dir, 'run', 'status.json');
  const bufferPath = join(dir, 'buffer');
  const configFile = join(dir, 'config.yaml');
  await writeFile(
    configFile,
    `thing: ${THING}
meters:
  - id: main
    driver: modbus-rtu
    port: ${pty.b}
    baud: 9600
    unit: 1
    profile: eastron-sdm630
    interval: ${opts.interval ?? '200ms'}
${opts.extraMeters ?? ''}
cloud:
  endpoint: 127.0.0.1
  port: ${broker.port}
  ca: ${broker.caFile}
  cert: ${device.cert}
  key: ${device.key}
buffer:
  path: ${bufferPath}
batch:
  maxDelay: ${opts.maxDelay ?? '500ms'}
time:
  syncFile: ${syncFile}
status:
  file: ${statusFile}
health:
  interval: 1s
log:
  level: info
`,
  );
  return { dir, pty, sim, broker, device, cloud, configFile, statusFile, bufferPath, syncFile };
}
