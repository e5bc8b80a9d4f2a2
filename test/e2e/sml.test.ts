import t from 'tap';
import { intValue } from '../../cloud-contract/sample.js';
import { createSmlModel } from '../../drivers/simulator/sml-emitter.js';
import { endAfterMqtt } from '../harness/exit.js';
import { spawnMeterlink } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';
import { startRig } from './helpers.js';

await t.test(
  'SML: `meterlink simulate sml` on a pty (with bad CRCs, truncation, noise) → meterlink run → Mosquitto → subscriber, values exact',
  async (t) => {
    const ir = await startPtyPair(t);
    const interval = 200;
    const sim = spawnMeterlink([
      'simulate',
      'sml',
      '--port',
      ir.a,
      '--interval',
      String(interval),
      '--seed',
      '5',
      '--server-id',
      '0a01484c5902000424a0',
      '--bad-crc-every',
      '4',
      '--truncate-every',
      '7',
      '--noise-every',
      '3',
      '--quiet',
    ]);
    t.teardown(() => sim.kill('SIGKILL'));
    const rig = await startRig(t, { extraMeters: `  - { id: ehz, driver: sml, port: ${ir.b} }` });
    const agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    const sml = () => rig.cloud.samples.filter((s) => s.meter === 'ehz');
    await waitFor(() => sml().length >= 8, { what: '8 SML samples', timeout: 60_000 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${agent.output().slice(-3000)}\n${sim.output().slice(-1000)}`);
    });
    // The simulator's model is deterministic: file k carries snapshot k of createSmlModel(seed, interval).
    const model = createSmlModel(5, interval);
    const expected = Array.from({ length: 2000 }, (_, k) => ({ k: k + 1, s: model.next() }));
    let last = 0;
    for (const sample of sml()) {
      const v = sample.values;
      // Match on every value (counters move slowly at this interval; three powers pin the file down),
      // searching after the previous match.
      const match = expected.find(
        (e) =>
          e.k > last &&
          v.energy_import_kwh?.mantissa === Number(e.s.importDeciWh) &&
          v.energy_export_kwh?.mantissa === Number(e.s.exportDeciWh) &&
          v.power_l1_w?.mantissa === e.s.powerW[0] &&
          v.power_l2_w?.mantissa === e.s.powerW[1] &&
          v.power_l3_w?.mantissa === e.s.powerW[2],
      );
      t.ok(match, `sample seq ${sample.seq} is one the simulator sent`);
      if (!match) continue;
      t.ok(match.k % 4 !== 0 && match.k % 7 !== 0, `file ${match.k} was a good one (bad ones dropped)`);
      t.ok(match.k > last, 'in order');
      last = match.k;
      const [l1, l2, l3] = match.s.powerW;
      t.same(v, {
        energy_import_kwh: intValue(Number(match.s.importDeciWh), -4),
        energy_import_t1_kwh: intValue(Number(match.s.importDeciWh), -4),
        energy_import_t2_kwh: intValue(0, -4),
        energy_export_kwh: intValue(Number(match.s.exportDeciWh), -4),
        power_w: intValue(l1 + l2 + l3, 0),
        power_l1_w: intValue(l1, 0),
        power_l2_w: intValue(l2, 0),
        power_l3_w: intValue(l3, 0),
      });
      t.equal(sample.flags, 0);
    }
    t.same(rig.cloud.rejected, []);
  },
);

await endAfterMqtt(t);
