import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { QualityFlag } from '../../cloud-contract/index.js';
import { readStatusFile } from '../../agent/daemon/status-file.js';
import { kernelSynced, probeKernelSync } from '../../agent/time/sources.js';
import { endAfterMqtt } from '../harness/exit.js';
import { spawnMeterlink } from '../harness/cli.js';
import { waitFor } from '../harness/wait.js';
import { startRig, type Rig } from './helpers.js';

/** Replaces the rig's `time:` section (which points at a sync file) with `lines`. */
async function setTime(rig: Rig, lines: string): Promise<void> {
  const text = await readFile(rig.configFile, 'utf8');
  const next = text.replace(/^time:\n {2}syncFile: .*\n/m, `time:\n${lines}`);
  if (next === text) throw new Error('rig config has no time.syncFile section to replace');
  await writeFile(rig.configFile, next);
}

await t.test('time.source auto on this machine: the kernel decides', async (t) => {
  const rig = await startRig(t, { synced: false });
  await setTime(rig, '  source: auto\n  hold: 3s\n');
  const kernelSaysSynced = kernelSynced(probeKernelSync());
  const started = performance.now();
  const agent = spawnMeterlink(['run', '--config', rig.configFile]);
  t.teardown(() => agent.kill('SIGKILL'));
  const status = await waitFor(() => readStatusFile(rig.statusFile).catch(() => undefined), {
    what: 'status file',
    timeout: 90_000,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${agent.output().slice(-3000)}`);
  });
  t.equal(status.clock.source, 'kernel', 'auto picked the kernel probe');
  t.equal(status.clock.synced, kernelSaysSynced, 'the agent agrees with adjtimex');
  t.comment(`clock: ${status.clock.detail}`);
  const first = await waitFor(() => rig.cloud.samples[0], {
    what: 'first published sample',
    timeout: 90_000,
  });
  const firstMs = Math.round(performance.now() - started);
  t.comment(
    `time to first publish after start: ${firstMs} ms (kernel ${kernelSaysSynced ? 'synchronised' : 'NOT synchronised'})`,
  );
  if (kernelSaysSynced) {
    // Nothing was held: the very first sample shipped on the batch delay, stamped by the synchronised clock.
    t.equal(
      first.flags & (QualityFlag.clockUnsynced | QualityFlag.clockCorrected),
      0,
      'first sample not held',
    );
    t.notOk(
      rig.cloud.events.some((e) => e.event === 'clock_unsynced'),
      'no clock_unsynced event',
    );
  } else {
    // This machine's kernel says unsynchronised: samples wait out time.hold, then ship flagged, and the event
    // names the source and the likely cause.
    const ev = await waitFor(() => rig.cloud.events.find((e) => e.event === 'clock_unsynced'), {
      what: 'clock_unsynced event',
      timeout: 90_000,
    });
    t.match(ev.data, { source: 'kernel', cause: /NOT synchronised/ });
    t.ok(firstMs >= 3_000, 'nothing shipped before the hold expired');
    t.ok(first.flags & QualityFlag.clockUnsynced, 'samples ship flagged unsynchronised');
    t.match(status.clock.detail, /kernel \(adjtimex.*NOT synchronised/);
  }
  t.same(rig.cloud.rejected, []);
});

await t.test(
  'time.source file with no sync file: held for time.hold, then a clock_unsynced event',
  async (t) => {
    const rig = await startRig(t, { synced: false });
    await setTime(rig, `  source: file\n  syncFile: ${rig.syncFile}\n  hold: 2s\n`);
    const agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    const ev = await waitFor(() => rig.cloud.events.find((e) => e.event === 'clock_unsynced'), {
      what: 'clock_unsynced event',
      timeout: 90_000,
    });
    t.match(ev, { severity: 'warning', data: { source: 'file', cause: /does not exist/ } });
    t.ok((ev.data as { unsyncedMs: number }).unsyncedMs >= 2_000);
    await waitFor(() => rig.cloud.samples.length > 0, { what: 'samples after the hold', timeout: 90_000 });
    t.ok(
      rig.cloud.samples.every((s) => s.flags & QualityFlag.clockUnsynced),
      'shipped flagged unsynchronised',
    );
    const s = await readStatusFile(rig.statusFile);
    t.match(s.clock, { synced: false, source: 'file', detail: /does not exist/ });
    t.ok(agent.output().includes('clock unsynchronised for'), 'a log line too');
  },
);

await t.test('time.source trust: publishes at once without a sync file', async (t) => {
  const rig = await startRig(t, { synced: false });
  await setTime(rig, '  source: trust\n');
  const started = performance.now();
  const agent = spawnMeterlink(['run', '--config', rig.configFile]);
  t.teardown(() => agent.kill('SIGKILL'));
  const first = await waitFor(() => rig.cloud.samples[0], { what: 'first sample', timeout: 90_000 });
  t.comment(`time to first publish after start with trust: ${Math.round(performance.now() - started)} ms`);
  t.equal(first.flags & QualityFlag.clockUnsynced, 0);
  const s = await readStatusFile(rig.statusFile);
  t.match(s.clock, { synced: true, source: 'trust' });
});

await endAfterMqtt(t);
