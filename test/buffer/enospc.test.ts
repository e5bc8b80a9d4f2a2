/**
 * The disk-full path on a real full file system (see small-disk.ts). Something else fills the disk; the
 * buffer refuses what it cannot store (counted), never throws out of itself, keeps every accepted sample,
 * leaves no seq gap, and goes on by itself once space is back — without dropping anything that then fits.
 * The budget follows the free space as measured: drops (oldest first, counted) only while the disk is
 * really short of room. A store that cannot even be opened starts degraded and opens when space returns.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  isBufferError,
  openLevelBuffer,
  openLevelBufferWhenPossible,
  type BufferEvent,
  type ReadingBuffer,
} from '../../buffer/index.js';
import { waitFor } from '../harness/wait.js';
import { fillUp, freeBytes, smallDisk } from './small-disk.js';
import { samplesFrom, type TapTest } from './fixtures.js';

/** Appends until one fails; returns the error and the next sample index. */
async function appendUntilFailure(b: ReadingBuffer, start: number) {
  let i = start;
  for (let tries = 0; tries < 10_000; tries++, i += 200) {
    try {
      await b.append(samplesFrom(i, 200));
    } catch (err) {
      return { err, next: i };
    }
  }
  throw new Error('the disk never filled up');
}

/** Every stored seq, checking they are consecutive (no gap) from `first`. */
async function consecutive(t: TapTest, b: ReadingBuffer, first: number): Promise<number[]> {
  const seqs = (await b.readOldest({ maxCount: 1e6 })).map((s) => s.seq);
  t.equal(seqs[0], first, 'starts at the first seq');
  t.ok(
    seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1),
    `no gap in ${seqs.length} seqs (${seqs[0]}…${seqs.at(-1)})`,
  );
  return seqs;
}

for (const policy of ['drop-oldest', 'refuse'] as const) {
  t.test(
    `disk full (${policy}): refused and counted, nothing accepted lost, no gap, resumes by itself`,
    async (t) => {
      const disk = await smallDisk(t);
      const events: BufferEvent[] = [];
      const b = await openLevelBuffer({
        path: join(disk, 'buffer'),
        maxSize: 1e9,
        policy,
        onEvent: (e) => events.push(e),
      });
      t.teardown(() => b.close());
      for (let i = 0; i < 10_000; i += 1000) await b.append(samplesFrom(i, 1000));
      await fillUp(join(disk, 'filler'));
      const { err, next } = await appendUntilFailure(b, 10_000);
      t.ok(isBufferError(err, 'BUFFER_DISK_FULL'), `append rejected with BUFFER_DISK_FULL: ${String(err)}`);
      t.ok(
        events.some((e) => e.type === 'refused' && e.reason === 'disk-full'),
        'the refused samples are counted (refused, reason disk-full)',
      );
      // While the disk stays full, appends keep failing cleanly and reads either work or say why.
      await t.rejects(b.append(samplesFrom(next, 10)), { code: 'BUFFER_DISK_FULL' });
      await b.readOldest({ maxCount: 10 }).then(
        (r) => t.ok(r.length > 0, 'reads still work'),
        (e: unknown) => t.ok(isBufferError(e, 'BUFFER_DISK_FULL'), `reads say why: ${String(e)}`),
      );
      const accepted = b.stats().nextSeq - 1;

      await rm(join(disk, 'filler'));
      // No append needed to recover: a reader alone (the publisher) resumes.
      await waitFor(
        () =>
          b.readOldest({ maxCount: 1 }).then(
            (r) => r.length === 1,
            () => false,
          ),
        {
          what: 'the store reopened by itself',
        },
      );
      const r = await b.append(samplesFrom(next + 10, 10));
      t.ok(r, 'accepted again once space is back');
      t.ok(r!.first >= accepted + 1, `seqs go on (${r!.first})`);
      t.same(
        events.filter((e) => e.type === 'dropped'),
        [],
        'nothing dropped: everything fitted once space was back',
      );
      t.ok(b.stats().effectiveMaxSize > b.stats().bytes + 8e6, 'the budget is back with the space');
      const seqs = await consecutive(t, b, 1);
      t.equal(seqs.at(-1), r!.last, 'no seq burned by the failed writes');
      t.equal(b.stats().count, seqs.length, 'counters match the store after the reopen');
    },
  );
}

t.test(
  'the budget follows the free space: oldest dropped only while the disk is short, none once it is back',
  async (t) => {
    const disk = await smallDisk(t, '24m');
    // Leave the buffer 8 MiB of the disk, 4 of them LevelDB's working room (the default headroom).
    await fillUp(join(disk, 'filler'), (await freeBytes(disk)) - 8 * 1024 * 1024);
    const events: BufferEvent[] = [];
    const b = await openLevelBuffer({
      path: join(disk, 'buffer'),
      maxSize: 1e9,
      onEvent: (e) => events.push(e),
    });
    t.teardown(() => b.close());
    let i = 0;
    const firstDrop = () => events.find((e) => e.type === 'dropped');
    while (!firstDrop() && i < 200_000) {
      await b.append(samplesFrom(i, 500));
      i += 500;
    }
    const drop = firstDrop();
    if (drop?.type !== 'dropped') throw new Error('never dropped');
    t.equal(drop.reason, 'disk-full');
    t.equal(drop.fromSeq, 1, 'oldest first');
    const stored = b.stats().bytes;
    t.ok(stored > 3e6, `${stored} B of samples stored before the disk was short (LevelDB's own use on top)`);
    t.ok(drop.bytes <= stored * 0.05, `${drop.bytes} B dropped: a small range, not the store`);
    t.ok(
      events.every((e) => e.type !== 'refused'),
      'nothing refused: the oldest made room',
    );

    // Space back: the budget rises with it, and the next 10 000 samples drop nothing.
    await rm(join(disk, 'filler'));
    const dropsBefore = events.filter((e) => e.type === 'dropped').length;
    for (let k = 0; k < 10_000; k += 500) await b.append(samplesFrom(i + k, 500));
    t.equal(events.filter((e) => e.type === 'dropped').length, dropsBefore, 'no drop once space is back');
    t.ok(b.stats().effectiveMaxSize > 8e6, `budget ${b.stats().effectiveMaxSize} follows the freed space`);
    // Every seq is stored or in a reported drop: nothing lost silently.
    const droppedSeqs = events.reduce((n, e) => n + (e.type === 'dropped' ? e.count : 0), 0);
    t.equal(b.stats().count + droppedSeqs, b.stats().nextSeq - 1, 'stored + reported dropped = all accepted');
  },
);

t.test(
  'a store that cannot open on a full disk starts degraded, counts refusals, opens when space returns',
  async (t) => {
    const disk = await smallDisk(t);
    const path = join(disk, 'buffer');
    const one = await openLevelBuffer({ path, maxSize: 1e9 });
    await one.append(samplesFrom(0, 300));
    await one.close();
    await fillUp(join(disk, 'filler'));
    await t.rejects(
      openLevelBuffer({ path, maxSize: 1e9 }),
      { code: 'BUFFER_DISK_FULL' },
      'LevelDB cannot open',
    );

    const events: BufferEvent[] = [];
    const b = await openLevelBufferWhenPossible({
      path,
      maxSize: 1e9,
      retryOpenMs: 100,
      onEvent: (e) => events.push(e),
    });
    t.teardown(() => b.close());
    t.match(events, [{ type: 'disk-full', path }], 'degraded, and says why');
    await t.rejects(b.append(samplesFrom(300, 5)), { code: 'BUFFER_DISK_FULL' });
    t.match(events.at(-1), { type: 'refused', reason: 'disk-full', count: 5 }, 'counted');
    t.same(await b.readOldest({ maxCount: 10 }), [], 'nothing to read yet');
    t.equal(b.stats().nextSeq, 301, 'the next seq is known from the ledger');

    await rm(join(disk, 'filler'));
    const r = await waitFor(() => b.append(samplesFrom(305, 5)).catch(() => null), {
      what: 'the store opened by itself',
    });
    t.same(r, { first: 301, last: 305 }, 'seqs go on from the ledger');
    t.equal((await consecutive(t, b, 1)).length, 305, 'every sample stored before is there');
  },
);
