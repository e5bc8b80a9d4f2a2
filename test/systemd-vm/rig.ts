/**
 * The peers of the systemd VM test, run as root inside the VM by guest.sh (`node --import tsx rig.ts`):
 * Mosquitto with mutual TLS (the test CA, a device certificate), the Modbus RTU simulator answering on
 * /dev/ttyS2 (qemu wires it to /dev/ttyS1, the agent's port), and the cloud subscriber that verifies every
 * batch. It writes the device's credentials and /etc/meterlink/config.yaml, then, every 200 ms, what the
 * cloud has received to STATE (JSON, replaced atomically) for guest.sh to wait on. Runs until SIGTERM.
 *
 *   node --import tsx test/systemd-vm/rig.ts /run/vm-rig/state.json
 * (scripts/test-systemd-vm.sh bundles it to node_modules/.cache/meterlink-systemd-vm/rig.mjs for the guest)
 */
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { startModbusSimulator } from '../../drivers/index.js';
import { startCloudSubscriber } from '../harness/cloud-subscriber.js';
import { startMosquitto } from '../harness/mosquitto.js';

const THING = 'vm-meterbox';
const state = process.argv[2] ?? '/run/vm-rig/state.json';
const cleanups: (() => unknown)[] = [];
const t = { teardown: (fn: () => unknown) => void cleanups.push(fn) };

const broker = await startMosquitto(t);
const device = await broker.deviceCert(THING);
const cloud = await startCloudSubscriber(t, broker, THING, () => device.certPem);
await mkdir('/etc/meterlink', { recursive: true });
await copyFile(broker.caFile, '/etc/meterlink/ca.pem');
await copyFile(device.cert, '/etc/meterlink/device.crt');
await copyFile(device.key, '/etc/meterlink/device.key');
await writeFile(
  '/etc/meterlink/config.yaml',
  `thing: ${THING}
meters:
  - id: main
    driver: modbus-rtu
    port: /dev/ttyS1
    baud: 9600
    unit: 1
    profile: eastron-sdm630
    interval: 1s
cloud:
  endpoint: 127.0.0.1
  port: ${broker.port}
  ca: /etc/meterlink/ca.pem
  cert: /etc/meterlink/device.crt
  key: /etc/meterlink/device.key
buffer:
  path: /var/lib/meterlink/buffer
batch:
  maxDelay: 1s
time:
  source: trust
status:
  file: /run/meterlink/status.json
health:
  interval: 5s
log:
  level: info
`,
);
const sim = await startModbusSimulator({
  transport: { kind: 'rtu', path: '/dev/ttyS2', baud: 9600 },
  units: [{ unit: 1, profile: 'eastron-sdm630' }],
});
cleanups.push(() => sim.stop());

await mkdir(dirname(state), { recursive: true });
let writing = false;
const timer = setInterval(() => {
  if (writing) return; // one write at a time (the rename of one must not race the next)
  writing = true;
  const seqs = [...cloud.seqs()].sort((a, b) => a - b);
  const min = seqs[0] ?? 0;
  const max = seqs.at(-1) ?? 0;
  const snapshot = {
    samples: cloud.samples.length,
    distinct: seqs.length,
    minSeq: min,
    maxSeq: max,
    // seqs missing between the first and the last one seen (must stay 0)
    missing: seqs.length ? max - min + 1 - seqs.length : 0,
    rejected: cloud.rejected.length,
  };
  writeFile(`${state}.tmp`, JSON.stringify(snapshot))
    .then(() => rename(`${state}.tmp`, state))
    .catch((e: unknown) => console.error(`rig: state write failed: ${String(e)}`))
    .finally(() => (writing = false));
}, 200);

const stop = async () => {
  clearInterval(timer);
  for (const fn of cleanups.reverse()) await fn();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
console.log(`rig: broker 127.0.0.1:${broker.port} (mTLS), simulator on /dev/ttyS2, state ${state}`);
