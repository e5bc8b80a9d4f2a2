/**
 * A full disk offline and at start, end to end (pty meter → `meterlink run` → Mosquitto with mTLS → the
 * cloud subscriber): a backlog builds offline, the buffer's tmpfs fills, the agent restarts on the full disk.
 * It comes up (no exit, no crash loop for systemd to give up on), counts what it cannot store, opens the
 * buffer by itself once space returns, and delivers every stored sample with seqs unbroken.
 */
import t from 'tap';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fillUp } from '../buffer/small-disk.js';
import { spawnMeterlink } from '../harness/cli.js';
import { endAfterMqtt } from '../harness/exit.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { cloudListening } from './cloud-listening.js';
import { THING } from './helpers.js';
import { diskFullEvents, noGap, rigOnSmallDisk } from './disk-full.js';

await t.test(
  'offline and at start: a full disk at start is no exit; the agent opens the buffer when space returns',
  async (t) => {
    const rig = await rigOnSmallDisk(t);
    let agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    await waitFor(() => rig.cloud.samples.length >= 5, {
      what: `samples at the cloud\n${agent.output()}`,
      timeout: AGENT_START_MS,
    });
    // Offline, the backlog grows; then the disk fills and the agent stops.
    await rig.broker.kill();
    await waitFor(
      async () => {
        const s = JSON.parse(await readFile(rig.statusFile, 'utf8')) as { buffer: { depth: number } };
        return s.buffer.depth >= 10;
      },
      { what: 'a backlog offline', timeout: 30_000 },
    );
    await fillUp(join(rig.disk, 'filler'));
    await agent.kill('SIGTERM');

    // Start on the full disk, offline: the agent comes up (no exit 1, no crash loop).
    agent = spawnMeterlink(['run', '--config', rig.configFile]);
    await waitFor(() => agent.output().includes('meterlink running'), {
      what: `the agent running on a full disk\n${agent.output()}`,
      timeout: AGENT_START_MS,
    });
    await waitFor(() => /disk is full/.test(agent.output()), { what: 'the full disk in the log' });
    t.equal(agent.child.exitCode, null, 'still running');

    // Broker back (the subscriber listening again before space is), then space back: the buffer opens by
    // itself and everything stored arrives, seqs unbroken.
    await rig.broker.start();
    await cloudListening(rig.cloud, THING);
    await rm(join(rig.disk, 'filler'));
    await waitFor(() => diskFullEvents(rig).length > 0, {
      what: `samples_dropped (disk_full) from the start on a full disk\n${agent.output()}`,
      timeout: 60_000,
    });
    const seen = rig.cloud.samples.length;
    await waitFor(() => rig.cloud.samples.length >= seen + 10, {
      what: `new samples after the buffer opened\n${agent.output()}`,
      timeout: 30_000,
    });
    noGap(t, rig);
    t.equal(agent.child.exitCode, null, 'the same agent, never restarted');
    await agent.kill('SIGTERM');
    t.equal(agent.child.exitCode, 0, 'clean exit');
  },
);

await endAfterMqtt(t);
