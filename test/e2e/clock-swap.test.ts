import t from 'tap';
import { endAfterMqtt } from '../harness/exit.js';
import { writeFile } from 'node:fs/promises';
import { QualityFlag } from '../../cloud-contract/index.js';
import { startDsmrEmitter } from '../../drivers/index.js';
import { spawnMeterlink } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { startRig } from './helpers.js';

await t.test(
  'samples taken before the clock synchronised are held, then shipped re-timed and flagged corrected',
  async (t) => {
    const rig = await startRig(t, { synced: false });
    const agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    await waitFor(() => rig.cloud.events.some((e) => e.event === 'agent_started'), {
      what: 'agent connected',
      // A start from source (transpiled on load, with coverage) took over 30 s at load 10.
      timeout: AGENT_START_MS,
    });
    // The meter is being read and buffered, but nothing ships while the clock may be wrong.
    await waitFor(
      async () =>
        (await import('../../agent/daemon/status-file.js'))
          .readStatusFile(rig.statusFile)
          .then((s) => s.buffer.depth >= 5)
          .catch(() => false),
      {
        what: 'samples buffered while unsynchronised',
        timeout: 30_000,
      },
    );
    t.equal(rig.cloud.samples.length, 0, 'no unsynchronised sample was shipped');

    await writeFile(rig.syncFile, ''); // systemd-timesyncd: synchronised
    await waitFor(() => rig.cloud.samples.some((s) => s.flags === 0), {
      what: 'samples after sync',
      timeout: 30_000,
    });
    t.same(rig.cloud.rejected, []);
    const held = rig.cloud.samples.filter((s) => s.flags & QualityFlag.clockCorrected);
    t.ok(held.length >= 5, `${held.length} samples re-timed and flagged clockCorrected`);
    t.ok(
      rig.cloud.samples.every((s) => !(s.flags & QualityFlag.clockUnsynced)),
      'none shipped still flagged unsynced',
    );
    const seqs = rig.cloud.samples.map((s) => s.seq);
    t.same(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'order kept',
    );
    t.ok(
      held.every((s) => Math.abs(s.ts - Date.now()) < 120_000),
      'corrected times are on the synchronised clock',
    );
    t.ok(
      rig.cloud.events.some((e) => e.event === 'clock_synced'),
      'clock_synced event',
    );
  },
);

await t.test('a DSMR meter swapped for another (new equipment id) is reported as meter_swap', async (t) => {
  const p1 = await startPtyPair(t);
  let emitter = await startDsmrEmitter({
    path: p1.a,
    flavour: '5',
    intervalMs: 200,
    serial: '4530303331303033303031363939353135',
  });
  t.teardown(() => emitter.stop());
  const rig = await startRig(t, {
    extraMeters: `  - { id: grid, driver: dsmr, port: ${p1.b}, version: '5' }`,
  });
  const agent = spawnMeterlink(['run', '--config', rig.configFile]);
  t.teardown(() => agent.kill('SIGKILL'));
  await waitFor(() => rig.cloud.samples.some((s) => s.meter === 'grid'), {
    what: 'DSMR samples',
    timeout: 30_000,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${agent.output().slice(-3000)}`);
  });
  await emitter.stop();
  emitter = await startDsmrEmitter({
    path: p1.a,
    flavour: '5',
    intervalMs: 200,
    serial: '4530303331303033303031363939353136',
  });
  const swap = await waitFor(() => rig.cloud.events.find((e) => e.event === 'meter_swap'), {
    what: 'meter_swap event',
    timeout: 30_000,
  });
  t.match(swap, { event: 'meter_swap', data: { meter: 'grid' } });
  t.not((swap.data as { oldSerial: string }).oldSerial, (swap.data as { newSerial: string }).newSerial);
});

await endAfterMqtt(t);
