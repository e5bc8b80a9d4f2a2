/**
 * A full disk with the agent online, end to end (pty meter → `meterlink run` → Mosquitto with mTLS → the
 * cloud subscriber): the buffer sits on a small real tmpfs that a filler fills completely while samples
 * flow. The agent never exits, reports what it could not store (`samples_dropped`, reason `disk_full`), loses
 * nothing it had stored, numbers on without a gap, and resumes by itself once space returns.
 */
import t from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventV1 } from '../../cloud-contract/index.js';
import { fillUp, smallDisk } from '../buffer/small-disk.js';
import { spawnMeterlink } from '../harness/cli.js';
import { endAfterMqtt } from '../harness/exit.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { startRig, type Rig } from './helpers.js';
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

await t.test('online: the disk fills, the agent stays up, reports, and resumes by itself', async (t) => {
  const rig = await rigOnSmallDisk(t);
  const agent = spawnMeterlink(['run', '--config', rig.configFile]);
  t.teardown(() => agent.kill('SIGKILL'));
  await waitFor(() => rig.cloud.samples.length >= 5, {
    what: `samples at the cloud\n${agent.output()}`,
    timeout: AGENT_START_MS,
  });

  await fillUp(join(rig.disk, 'filler'));
  const ev = await waitFor(() => diskFullEvents(rig)[0], {
    what: `samples_dropped (disk_full) at the cloud\n${agent.output()}`,
    timeout: 30_000,
  });
  t.ok(ev.data.count > 0, `${ev.data.count} samples not stored, counted`);
  // Still up while full: health keeps coming.
  const health = rig.cloud.health.length;
  await waitFor(() => rig.cloud.health.length >= health + 2, { what: 'health while the disk is full' });
  t.equal(agent.child.exitCode, null, 'the agent is still running');

  const before = Math.max(...rig.cloud.seqs());
  await rm(join(rig.disk, 'filler'));
  await waitFor(() => Math.max(...rig.cloud.seqs()) >= before + 10, {
    what: `new samples after space returned\n${agent.output()}`,
    timeout: 30_000,
  });
  noGap(t, rig);
  t.same(rig.cloud.rejected, []);
  await agent.kill('SIGTERM');
  t.equal(agent.child.exitCode, 0, 'clean exit');
});

await endAfterMqtt(t);
