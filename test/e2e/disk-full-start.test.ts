/**
 * A full disk offline and at start, end to end (pty meter → `meterlink run` → Mosquitto with mTLS → the
 * cloud subscriber): a backlog builds offline, the buffer's tmpfs fills, the agent restarts on the full disk.
 * It comes up (no exit, no crash loop for systemd to give up on), counts what it cannot store, opens the
 * buffer by itself once space returns, and delivers every stored sample with seqs unbroken.
 */
import t from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventV1 } from '../../cloud-contract/index.js';
import { fillUp, smallDisk } from '../buffer/small-disk.js';
import { spawnMeterlink } from '../harness/cli.js';
import { endAfterMqtt } from '../harness/exit.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { cloudListening } from './cloud-listening.js';
import { startRig, THING, type Rig } from './helpers.js';
import type { TapTest } from '../buffer/fixtures.js';

/** The rig with its buffer (and so the event queue beside it) on a 24 MiB tmpfs. */
async function rigOnSmallDisk(t: TapTest): Promise<Rig & { disk: string }> {
  const rig = await startRig(t);
  const disk = await smallDisk(t, '24m');
  const bufferPath = join(disk, 'buffer');
  const config = await readFile(rig.configFile, 'utf8');
  await writeFile(rig.configFile, config.replace(`path: ${rig.bufferPath}`, `path: ${bufferPath}`));
  return { ...rig, bufferPath, disk };
}

type Dropped = Extract<EventV1, { event: 'samples_dropped' }>;
const diskFullEvents = (rig: Rig): Dropped[] =>
  rig.cloud.events.filter(
    (e): e is Dropped => e.event === 'samples_dropped' && e.data.reason === 'disk_full',
  );

/**
 * Every seq 1..max is at the cloud or in a reported drop (`samples_dropped` with its seq range): nothing
 * stored was lost silently, and no seq was skipped.
 */
function noGap(t: TapTest, rig: Rig): number {
  const seqs = rig.cloud.seqs();
  const max = Math.max(0, ...seqs);
  const reported = (s: number) =>
    rig.cloud.events.some(
      (e) => e.event === 'samples_dropped' && e.data.count > 0 && s >= e.data.firstSeq && s <= e.data.lastSeq,
    );
  const missing: number[] = [];
  for (let s = 1; s <= max; s++) if (!seqs.has(s) && !reported(s)) missing.push(s);
  t.same(missing, [], `every seq 1…${max} delivered or reported dropped`);
  return max;
}

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
