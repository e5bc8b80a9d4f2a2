import t from 'tap';
import { endAfterMqtt } from '../harness/exit.js';
import { spawnMeterlink } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';
import { startRig } from './helpers.js';

const KEY = '000102030405060708090a0b0c0d0e0f';

await t.test(
  'encrypted P1: `meterlink simulate dsmr --encrypt-key` on a pty → meterlink run with key → Mosquitto → subscriber',
  async (t) => {
    const p1 = await startPtyPair(t);
    const sim = spawnMeterlink([
      'simulate',
      'dsmr',
      '--port',
      p1.a,
      '--flavour',
      '5',
      '--interval',
      '200ms',
      '--encrypt-key',
      KEY,
      '--serial',
      '4530303331303033303031363939353135',
      '--quiet',
    ]);
    t.teardown(() => sim.kill('SIGKILL'));
    const rig = await startRig(t, {
      extraMeters: `  - { id: lux, driver: dsmr, port: ${p1.b}, version: smarty, key: '${KEY}' }`,
    });
    const agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    const lux = () => rig.cloud.samples.filter((s) => s.meter === 'lux');
    await waitFor(() => lux().length >= 5, { what: '5 decrypted DSMR samples', timeout: 60_000 }).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${agent.output().slice(-3000)}\n${sim.output().slice(-1000)}`);
      },
    );
    for (const s of lux()) {
      t.equal(s.flags, 0, `seq ${s.seq} clean`);
      t.equal(s.values.power_w?.type, 'int');
      t.equal(s.values.energy_import_t1_kwh?.exponent, -3);
    }
    t.same(rig.cloud.rejected, []);
  },
);

await endAfterMqtt(t);
