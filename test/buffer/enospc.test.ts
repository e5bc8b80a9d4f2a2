/**
 * The disk-full path on a real full file system: a 16 MiB tmpfs mounted under a temp dir (we run as root
 * here and in CI). Something else fills the disk (a filler file, like runaway logs); the buffer reports it,
 * refuses what it cannot store, never crashes, keeps every accepted sample, and recovers on its own once
 * space is back — dropping oldest (drop-oldest) or refusing (refuse) down to the lowered budget.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { open, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isBufferError, openLevelBuffer, type BufferEvent } from '../../buffer/index.js';
import { tempDir } from '../harness/tmp.js';
import { samplesFrom, type TapTest } from './fixtures.js';

const run = promisify(execFile);

async function smallDisk(t: TapTest): Promise<string> {
  const dir = join(await tempDir(t, 'meterlink-enospc-'), 'mnt');
  await mkdir(dir);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir]);
  } catch (err) {
    throw new Error(
      `the ENOSPC test needs to mount a small tmpfs (as root, or with CAP_SYS_ADMIN): ${(err as Error).message}`,
    );
  }
  t.teardown(() => run('umount', [dir]));
  return dir;
}

/** Writes a file until the file system is full. */
async function fillUp(file: string): Promise<void> {
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Appends until one fails; returns the accepted ranges and the error. */
async function appendUntilFailure(b: Awaited<ReturnType<typeof openLevelBuffer>>, start: number) {
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

for (const policy of ['drop-oldest', 'refuse'] as const) {
  t.test(
    `disk full (${policy}): reported, nothing accepted is lost, recovers when space is back`,
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
      const before = b.stats();
      await fillUp(join(disk, 'filler'));
      const { err, next } = await appendUntilFailure(b, 10_000);
      t.ok(isBufferError(err, 'BUFFER_DISK_FULL'), `append rejected with BUFFER_DISK_FULL: ${String(err)}`);
      t.match(String((err as Error).message), /disk holding the buffer at .* is full/);
      const full = events.find((e) => e.type === 'disk-full');
      t.ok(full, 'disk-full event');
      t.ok(
        events.some((e) => e.type === 'refused' && e.reason === 'disk-full'),
        'refused event',
      );
      // While the disk stays full, appends keep failing cleanly (no throw out of the buffer, no crash).
      await t.rejects(b.append(samplesFrom(next, 10)), { code: 'BUFFER_DISK_FULL' });
      const lowered = b.stats().effectiveMaxSize;
      t.ok(lowered < 1e9, `budget lowered to ${lowered}`);

      await rm(join(disk, 'filler'));
      if (policy === 'drop-oldest') {
        const r = await b.append(samplesFrom(next + 10, 10));
        t.ok(r, 'accepted again once space is back');
        t.ok(
          events.some((e) => e.type === 'dropped' && e.reason === 'disk-full'),
          'oldest dropped (reason disk-full) to fit the lowered budget',
        );
        t.ok(b.stats().bytes <= lowered);
      } else {
        await t.rejects(
          b.append(samplesFrom(next + 10, 10)),
          { code: 'BUFFER_DISK_FULL' },
          'over the lowered budget',
        );
        const st = b.stats();
        await b.ack(st.oldestSeq!, st.oldestSeq! + Math.floor(st.count / 2));
        t.ok(await b.append(samplesFrom(next + 10, 10)), 'accepted again after acks made room');
      }
      // Every sample accepted before the disk filled is still there, unless retention reported dropping it.
      const all = await b.readOldest({ maxCount: 1e6 });
      const dropped = events
        .filter((e) => e.type === 'dropped')
        .reduce((n, e) => n + (e.type === 'dropped' ? e.count : 0), 0);
      const acked = policy === 'refuse' ? Math.floor(before.count / 2) + 1 : 0;
      t.ok(all.filter((s) => s.seq <= before.newestSeq!).length >= before.count - dropped - acked - 1);
      t.equal(b.stats().count, all.length, 'counters match the store after the reopen');
    },
  );
}

t.test(
  'opening on a full disk is BUFFER_DISK_FULL, not "corrupt": nothing is repaired or moved',
  async (t) => {
    const disk = await smallDisk(t);
    await fillUp(join(disk, 'filler'));
    await t.rejects(openLevelBuffer({ path: join(disk, 'buffer'), maxSize: 1e9 }), {
      code: 'BUFFER_DISK_FULL',
    });
  },
);
