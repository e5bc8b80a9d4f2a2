import t from 'tap';
import type { Value } from '../../cloud-contract/sample.js';
import { iecModelStates } from '../../drivers/simulator/iec-emitter.js';
import { iecSimValues } from '../../drivers/simulator/iec-render.js';
import { endAfterMqtt } from '../harness/exit.js';
import { spawnMeterlink } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';
import { startRig } from './helpers.js';

await t.test(
  'IEC 62056-21 mode C: `meterlink simulate iec62056-21` on a pty (bad BCC, truncation, silence, noise) → meterlink run → Mosquitto → subscriber, values exact',
  async (t) => {
    const head = await startPtyPair(t);
    const sim = spawnMeterlink([
      'simulate',
      'iec62056-21',
      '--port',
      head.a,
      '--seed',
      '7',
      '--step',
      '1s',
      '--serial',
      '001LGZ0056859504',
      '--bad-bcc-every',
      '4',
      '--truncate-every',
      '7',
      '--silent-every',
      '9',
      '--noise-every',
      '3',
    ]);
    t.teardown(() => sim.kill('SIGKILL'));
    const rig = await startRig(t, {
      extraMeters: `  - { id: d0, driver: iec62056-21, port: ${head.b}, interval: 1s }`,
    });
    const agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    const iec = () => rig.cloud.samples.filter((s) => s.meter === 'd0');
    await waitFor(() => iec().length >= 6, { what: '6 IEC samples', timeout: 120_000 }).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${agent.output().slice(-3000)}\n${sim.output().slice(-2000)}`);
      },
    );
    // Request k of the simulator carries state k of the apartment model (seed 7, 1 s per request).
    const states = iecModelStates(7, 1000);
    const expected = Array.from({ length: 400 }, (_, i) => ({ k: i + 1, v: iecSimValues(states(i + 1)) }));
    const same = (a: Readonly<Record<string, Value>>, b: Record<string, Value>) =>
      JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
    let last = 0;
    for (const sample of iec()) {
      const match = expected.find((e) => e.k > last && same(sample.values, e.v));
      t.ok(match, `sample seq ${sample.seq} is a readout the simulator sent`);
      if (!match) continue;
      t.ok(match.k % 4 !== 0 && match.k % 7 !== 0 && match.k % 9 !== 0, `request ${match.k} was a good one`);
      last = match.k;
      t.equal(sample.flags, 0);
    }
    t.match(sim.output(), /asked Z=5 9600 baud/, 'the agent asked for the speed the meter offered');
    t.same(rig.cloud.rejected, []);
  },
);

await t.test('IEC 62056-21 mode D push → meterlink run → Mosquitto, values exact', async (t) => {
  const head = await startPtyPair(t);
  const sim = spawnMeterlink([
    'simulate',
    'iec62056-21',
    '--port',
    head.a,
    '--mode',
    'd',
    '--interval',
    '250ms',
    '--seed',
    '8',
    '--bad-bcc-every',
    '3',
    '--quiet',
  ]);
  t.teardown(() => sim.kill('SIGKILL'));
  const rig = await startRig(t, {
    extraMeters: `  - { id: d1, driver: iec62056-21, port: ${head.b}, mode: d, interval: 1s }`,
  });
  const agent = spawnMeterlink(['run', '--config', rig.configFile]);
  t.teardown(() => agent.kill('SIGKILL'));
  const iec = () => rig.cloud.samples.filter((s) => s.meter === 'd1');
  await waitFor(() => iec().length >= 4, { what: '4 IEC push samples', timeout: 120_000 }).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${agent.output().slice(-3000)}\n${sim.output().slice(-1000)}`);
    },
  );
  const states = iecModelStates(8, 1000);
  const expected = Array.from({ length: 2000 }, (_, i) => ({ k: i + 1, v: iecSimValues(states(i + 1)) }));
  let last = 0;
  for (const sample of iec()) {
    const json = JSON.stringify(Object.entries(sample.values).sort());
    const match = expected.find((e) => e.k > last && JSON.stringify(Object.entries(e.v).sort()) === json);
    t.ok(match, `sample seq ${sample.seq} is a block the simulator pushed`);
    if (!match) continue;
    t.ok(match.k % 3 !== 0, `push ${match.k} had a good BCC`);
    last = match.k;
  }
  t.same(rig.cloud.rejected, []);
});

await endAfterMqtt(t);
