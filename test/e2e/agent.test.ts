import t from 'tap';
import { endAfterMqtt } from '../harness/exit.js';
import { valueToNumber } from '../../cloud-contract/index.js';
import { runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { waitFor } from '../harness/wait.js';
import { startRig, THING } from './helpers.js';

const frozenAt = Date.UTC(2026, 0, 15, 12);

await t.test(
  'simulator on a pty → meterlink run → Mosquitto (mTLS) → subscriber: values equal what was served',
  async (t) => {
    const rig = await startRig(t, { frozenAt });
    const agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));

    await waitFor(() => rig.cloud.samples.length >= 20, {
      what: `20 samples at the cloud\n${agent.output()}`,
      timeout: 60_000,
    });
    t.same(rig.cloud.rejected, [], 'every batch decoded and its signature verified');
    const expected = rig.sim.unit(1).expected();
    for (const s of rig.cloud.samples.slice(0, 20)) {
      t.equal(s.meter, 'main');
      t.equal(s.flags, 0, `seq ${s.seq} is a clean read`);
      const got = Object.fromEntries(Object.entries(s.values).map(([k, v]) => [k, valueToNumber(v)]));
      for (const [ch, v] of Object.entries(expected))
        if (ch in got) t.equal(got[ch], v, `seq ${s.seq} ${ch}`);
      t.ok(Object.keys(got).length >= 15, 'the SDM630 channels are there');
    }
    const seqs = rig.cloud.samples.map((s) => s.seq);
    t.same(
      seqs.slice(0, 20),
      Array.from({ length: 20 }, (_, i) => i + 1),
      'sequence numbers from 1, in order',
    );
    t.ok(
      rig.cloud.events.some((e) => e.event === 'agent_started'),
      'agent_started event published',
    );
    await waitFor(() => rig.cloud.health.length > 0, { what: 'a health report', timeout: 15_000 });
    t.equal(rig.cloud.health[0]?.device, THING);
    t.equal(rig.cloud.health[0]?.meters[0]?.id, 'main');

    // Local status while running.
    await waitFor(
      async () =>
        (await runCliCaptured(['status', '--file', rig.statusFile, '--json'])).stdout.includes('"connected"'),
      {
        what: 'status file showing the connection',
      },
    );
    const text = await runCliCaptured(['status', '--file', rig.statusFile]);
    t.equal(text.code, 0);
    t.match(text.stdout, /connection: connected to 127\.0\.0\.1:\d+/);
    t.match(text.stdout, /main +ok/);

    // SIGTERM: clean exit 0 in under 10 s.
    const t0 = Date.now();
    await agent.kill('SIGTERM');
    t.equal(agent.child.exitCode, 0, `exit 0 on SIGTERM\n${agent.output().slice(-2000)}`);
    t.ok(Date.now() - t0 < 10_000, `stopped in ${Date.now() - t0} ms`);
  },
);

await t.test('a bad config exits 78 with the problems listed, before touching anything', async (t) => {
  const rig = await startRig(t);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(
    rig.configFile,
    `thing: ${THING}\nmeters:\n  - id: main\n    driver: modbus-rtu\n    port: /dev/null\n    baud: 96000\n`,
  );
  const agent = spawnMeterlink(['run', '--config', rig.configFile]);
  await agent.exited();
  t.equal(agent.child.exitCode, 78, agent.output());
  t.match(agent.output(), /baud/);
  t.match(agent.output(), /cloud/);
});

await endAfterMqtt(t);
