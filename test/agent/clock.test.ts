import t from 'tap';
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { QualityFlag, type Sample } from '../../cloud-contract/sample.js';
import { createClockKeeper, monotonicMs, readBootId, syncFileProbe } from '../../agent/time/clock.js';
import { tempDir } from '../harness/tmp.js';

/** A box whose wall clock starts wrong (2020) and is stepped by NTP later. */
function fakeBox() {
  const box = { mono: 1_000_000, wallOffset: Date.UTC(2020, 0, 1) - 1_000_000, synced: false };
  return {
    box,
    deps: {
      wallNow: () => box.mono + box.wallOffset,
      monoNow: () => box.mono,
      isSynced: () => box.synced,
      bootId: 'boot-a',
    },
  };
}

function sample(seq: number, stamp: { ts: number; flags: number; clock?: Sample['clock'] }): Sample {
  return { seq, meter: 'main', values: {}, ...stamp };
}

t.test('samples before sync are flagged and corrected from the monotonic clock after the step', async (t) => {
  const { box, deps } = fakeBox();
  const clock = createClockKeeper(deps);
  t.equal(clock.synced, false);

  const s1 = sample(1, clock.stamp());
  box.mono += 1_000;
  const s2 = sample(2, clock.stamp());
  t.ok(s1.flags & QualityFlag.clockUnsynced, 'flagged unsynced');
  t.equal(s1.ts, Date.UTC(2020, 0, 1), 'stamped with the wrong wall clock');

  t.same(clock.correct([s1, s2]), { ready: [], held: true }, 'held back while the clock is unsynced');

  // NTP steps the clock to the real time and systemd-timesyncd marks it synchronised.
  const realBoot = Date.UTC(2026, 10, 27, 8, 0, 0) - box.mono;
  box.mono += 500;
  box.wallOffset = realBoot;
  box.synced = true;
  const step = clock.check();
  t.ok(step, 'the step is reported');
  t.equal(step?.stepMs, realBoot - (Date.UTC(2020, 0, 1) - 1_000_000));
  t.equal(clock.synced, true);

  const s3 = sample(3, clock.stamp());
  t.equal(s3.flags, 0, 'samples after sync carry no clock flag');
  const { ready, held } = clock.correct([s1, s2, s3]);
  t.equal(held, false);
  t.same(
    ready.map((s) => [s.seq, s.ts]),
    [
      [1, 1_000_000 + realBoot],
      [2, 1_001_000 + realBoot],
      [3, 1_001_500 + realBoot],
    ],
    'order kept, spacing kept, times moved to the true clock',
  );
  t.ok(
    ready[0] && ready[0].flags & QualityFlag.clockCorrected && !(ready[0].flags & QualityFlag.clockUnsynced),
  );
  t.notOk(ready[0] && 'clock' in ready[0], 'device-local clock info stripped before shipping');
});

t.test('samples from another boot ship flagged but uncorrected once synced', async (t) => {
  const { box, deps } = fakeBox();
  const clock = createClockKeeper(deps);
  const old = sample(1, { ts: 5, flags: QualityFlag.clockUnsynced, clock: { monoMs: 10, boot: 'boot-old' } });
  t.equal(clock.correct([old]).held, true);
  box.synced = true;
  clock.check();
  const { ready } = clock.correct([old]);
  t.equal(ready[0]?.ts, 5);
  t.ok(ready[0] && ready[0].flags & QualityFlag.clockUnsynced, 'still flagged unsynced');
});

t.test('without NTP, held samples ship flagged after the hold time', async (t) => {
  const { box, deps } = fakeBox();
  const clock = createClockKeeper({ ...deps, holdMs: 60_000 });
  const s1 = sample(1, clock.stamp());
  t.equal(clock.correct([s1]).held, true);
  box.mono += 60_000;
  const { ready, held } = clock.correct([s1]);
  t.equal(held, false);
  t.equal(ready[0]?.ts, s1.ts);
  t.ok(clock.state().unsyncedSince !== undefined);
});

t.test('a DSMR meter clock stands in while NTP is not synchronised', async (t) => {
  const { box, deps } = fakeBox();
  const clock = createClockKeeper(deps);
  const meterNow = Date.UTC(2026, 10, 27, 8, 0, 0);
  const s1 = clock.stamp(meterNow);
  t.equal(s1.ts, meterNow, 'stamped from the meter clock');
  t.ok(s1.flags & QualityFlag.meterClock && s1.flags & QualityFlag.clockUnsynced);
  box.mono += 1_000;
  const s2 = clock.stamp();
  t.equal(s2.ts, meterNow + 1_000, 'later samples follow the meter clock via the monotonic clock');
});

t.test('a step while synchronised is reported and nothing is reordered', async (t) => {
  const { box, deps } = fakeBox();
  box.synced = true;
  const clock = createClockKeeper(deps);
  const s1 = sample(1, clock.stamp());
  box.mono += 1_000;
  box.wallOffset -= 3_600_000; // clock stepped back an hour
  const step = clock.check();
  t.equal(step?.stepMs, -3_600_000);
  t.equal(clock.check(), undefined, 'reported once');
  const s2 = sample(2, clock.stamp());
  const { ready } = clock.correct([s1, s2]);
  t.same(
    ready.map((s) => s.seq),
    [1, 2],
    'sequence order kept even though ts went backwards',
  );
  t.same(clock.state().lastStep, step);
});

t.test('real probes: sync file, boot id, monotonic clock', async (t) => {
  const dir = await tempDir(t);
  const f = join(dir, 'synchronized');
  const probe = syncFileProbe(f);
  t.equal(probe(), false);
  await writeFile(f, '');
  t.equal(probe(), true);
  await rm(f);
  t.equal(probe(), false);
  t.match(readBootId(), /^[0-9a-f-]{36}$/);
  const a = monotonicMs();
  t.ok(monotonicMs() >= a);
  const clock = createClockKeeper({ syncFile: f });
  t.equal(clock.synced, false);
});

t.test(
  "correct works on the buffer's stored samples too: ts and flags rewritten, clock stripped, bytes kept",
  async (t) => {
    const { box, deps } = fakeBox();
    const clock = createClockKeeper(deps);
    const bytes = new Uint8Array([1, 2, 3]);
    const stamp = clock.stamp();
    const stored = { seq: 1, meter: 'main', bytes, ...stamp };
    const synced = { seq: 2, meter: 'main', bytes, ts: 5, flags: QualityFlag.partial };
    t.same(clock.correct([stored, synced]), { ready: [], held: true }, 'held while unsynced');
    const realBoot = Date.UTC(2026, 10, 27, 8, 0, 0) - box.mono;
    box.wallOffset = realBoot;
    box.synced = true;
    clock.check();
    const { ready, held } = clock.correct([stored, synced]);
    t.equal(held, false);
    t.same(ready[0], {
      seq: 1,
      meter: 'main',
      bytes,
      ts: stamp.clock!.monoMs + realBoot,
      flags: QualityFlag.clockCorrected,
    });
    t.equal(ready[0]!.bytes, bytes, 'the very bytes, not a copy');
    t.notOk('clock' in ready[0]!, 'device-local clock info stripped');
    t.equal(ready[1], synced, 'a synchronised sample passes unchanged');
  },
);
