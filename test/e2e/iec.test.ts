import t, { type Test } from 'tap';
import { iecModelStates } from '../../drivers/simulator/iec-emitter.js';
import { iecSimValues } from '../../drivers/simulator/iec-render.js';
import { endAfterMqtt } from '../harness/exit.js';
import { spawnMeterlink } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';
import { startRig } from './helpers.js';

/**
 * `meterlink simulate iec62056-21 <simArgs>` on one end of a pty, `meterlink run` with the meter on the other,
 * Mosquitto and the verifying subscriber; waits for `n` samples and checks each is, value for value, the
 * simulator's message k (state k of the apartment model with `seed`, 1 s per message), in order, and not one
 * of the faulty ones (`bad(k)`).
 */
async function runIec(
  t: Test,
  o: { simArgs: string[]; meter: string; seed: number; n: number; bad: (k: number) => boolean },
) {
  const head = await startPtyPair(t);
  const sim = spawnMeterlink([
    'simulate',
    'iec62056-21',
    '--port',
    head.a,
    '--seed',
    String(o.seed),
    ...o.simArgs,
  ]);
  t.teardown(() => sim.kill('SIGKILL'));
  const rig = await startRig(t, {
    extraMeters: `  - { id: d0, driver: iec62056-21, port: ${head.b}, ${o.meter} }`,
  });
  const agent = spawnMeterlink(['run', '--config', rig.configFile]);
  t.teardown(() => agent.kill('SIGKILL'));
  const iec = () => rig.cloud.samples.filter((s) => s.meter === 'd0');
  await waitFor(() => iec().length >= o.n, { what: `${o.n} IEC samples`, timeout: 120_000 }).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${agent.output().slice(-3000)}\n${sim.output().slice(-2000)}`);
    },
  );
  const states = iecModelStates(o.seed, 1000);
  const key = (v: object) => JSON.stringify(Object.entries(v).sort());
  const expected = Array.from({ length: 2000 }, (_, i) => ({
    k: i + 1,
    v: key(iecSimValues(states(i + 1))),
  }));
  let last = 0;
  for (const sample of iec()) {
    const got = key(sample.values);
    const match = expected.find((e) => e.k > last && e.v === got);
    t.ok(match, `sample seq ${sample.seq} is a message the simulator sent, every value exact`);
    if (!match) continue;
    t.notOk(o.bad(match.k), `message ${match.k} was a good one (bad ones dropped)`);
    last = match.k;
    t.equal(sample.flags, 0);
  }
  t.same(rig.cloud.rejected, []);
  return sim;
}

await t.test(
  'IEC 62056-21 mode C: simulator on a pty (bad BCC, truncation, silence, noise) → meterlink run → Mosquitto → subscriber',
  async (t) => {
    const sim = await runIec(t, {
      simArgs: ['--bad-bcc-every', '4', '--truncate-every', '7', '--silent-every', '9', '--noise-every', '3'],
      meter: 'interval: 1s',
      seed: 7,
      n: 6,
      bad: (k) => k % 4 === 0 || k % 7 === 0 || k % 9 === 0,
    });
    t.match(sim.output(), /asked Z=5 9600 baud/, 'the agent asked for the speed the meter offered');
  },
);

await t.test('IEC 62056-21 mode D push → meterlink run → Mosquitto → subscriber', async (t) => {
  await runIec(t, {
    simArgs: ['--mode', 'd', '--interval', '250ms', '--bad-bcc-every', '3', '--quiet'],
    meter: 'mode: d, interval: 1s',
    seed: 8,
    n: 4,
    bad: (k) => k % 3 === 0,
  });
});

await endAfterMqtt(t);
