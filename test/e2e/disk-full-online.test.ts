/**
 * A full disk with the agent online, end to end (pty meter → `meterlink run` → Mosquitto with mTLS → the
 * cloud subscriber): the buffer sits on a small real tmpfs that a filler fills completely while samples
 * flow. The agent never exits, reports what it could not store (`samples_dropped`, reason `disk_full`), loses
 * nothing it had stored, numbers on without a gap, and resumes by itself once space returns.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fillUp } from '../buffer/small-disk.js';
import { spawnMeterlink } from '../harness/cli.js';
import { endAfterMqtt } from '../harness/exit.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { diskFullEvents, noGap, rigOnSmallDisk } from './disk-full.js';

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
