/**
 * LevelDB reads its tables through mmap, and every page it reads stays resident in the agent while
 * the table is in its table cache (up to 64 tables). The backend releases them by reopening the store after
 * every `releaseTablesAfterBytes` read. Proven here on a real store, with the kernel's own account of this
 * process's mappings (/proc/self/smaps): without the release a full read leaves the whole store resident;
 * with it, what stays is about one read's worth. And reads, appends and acks running together across the
 * reopens lose nothing and see every sample once, in order. And the reopen waits for a lock that another
 * process took in between, instead of losing the store.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openLevelBuffer } from '../../buffer/index.js';
import { LevelBackend } from '../../buffer/level-backend.js';
import { repoRoot } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';
import { samplesFrom } from './fixtures.js';

/** Resident bytes of this process's mappings of `dir`'s table files (.ldb), from /proc/self/smaps. */
function mappedTableBytes(dir: string): number {
  let inDir = false;
  let kib = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) inDir = head[1]!.startsWith(dir) && head[1]!.endsWith('.ldb');
    else if (inDir) {
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss) kib += Number(rss[1]);
    }
  }
  return kib * 1024;
}

async function tableBytesOnDisk(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) if (f.endsWith('.ldb')) n += (await stat(join(dir, f))).size;
  return n;
}

const SAMPLES = 30_000;
const dir = await tempDir(t, 'meterlink-release-');
const path = join(dir, 'buffer');
{
  // A store whose samples are in table files, not only in the log: each reopen turns the log into a table.
  for (let round = 0; round < 6; round++) {
    const b = await openLevelBuffer({ path, maxSize: Infinity });
    for (let i = round * 5000; i < (round + 1) * 5000; i += 500) await b.append(samplesFrom(i, 500));
    await b.close();
  }
}
const onDisk = await tableBytesOnDisk(path);

t.test('without the release, reading the store through leaves all of it mapped and resident', async (t) => {
  t.ok(onDisk > 512 << 10, `tables on disk: ${onDisk} B (snappy-compressed)`);
  const b = await openLevelBuffer({ path, maxSize: Infinity, releaseTablesAfterBytes: Infinity });
  // Opening reads every sample once (counters and a check of each one).
  const resident = mappedTableBytes(path);
  t.ok(resident > onDisk * 0.8, `${resident} B of ${onDisk} B resident after the open's scan`);
  await b.close();
  t.equal(mappedTableBytes(path), 0, 'closing unmaps them');
});

t.test('with it, what stays resident is about what was read since the last release', async (t) => {
  const budget = 64 << 10;
  const b = await openLevelBuffer({ path, maxSize: Infinity, releaseTablesAfterBytes: budget });
  t.teardown(() => b.close());
  t.equal(b.stats().count, SAMPLES, 'all samples found by the scan');
  const peaks: number[] = [];
  // The read after a release waits for the reopen, so measure after each read.
  let after = 0;
  let next = 0; // the next sample index expected
  let appended = 0;
  const appends: Promise<unknown>[] = [];
  while (next < SAMPLES) {
    const got = await b.readOldest({ maxCount: 700, afterSeq: after });
    peaks.push(mappedTableBytes(path));
    if (got.length === 0) {
      t.fail(`a read after sample ${next} returned nothing`);
      return;
    }
    for (const s of got) {
      if (next === SAMPLES) break; // the rest are the ones appended meanwhile
      // Values are exact: sample i carries energy 12,345,678 + i.
      const energy = s.values.energy_import_kwh;
      if (energy?.mantissa !== 12_345_678 + next) {
        t.fail(`seq ${s.seq}: expected sample ${next}, got energy ${JSON.stringify(energy)}`);
        return;
      }
      next++;
      after = s.seq;
    }
    // Acks and appends interleave with the reads (and so with the reopens), as in the agent.
    appends.push(b.append(samplesFrom(SAMPLES + appended, 3)));
    appended += 3;
    await b.ack(0, after);
  }
  await Promise.all(appends);
  t.equal(next, SAMPLES, 'every stored sample read once, in order');
  t.equal(b.stats().count, appended, 'what is left is exactly what was appended meanwhile');
  // LevelDB's own compactions (each reopen turns the log into a small level-0 table; every 4 of them are
  // merged with the tables they overlap) map and read tables too, until the next release: so the typical
  // read, not every one, shows the saving.
  const sorted = [...peaks].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  t.ok(
    median < onDisk / 4,
    `mapped tables resident after a read: median ${median} B, most ${sorted.at(-1)} B (store ${onDisk} B; without the release all of it; release every ${budget} B read)`,
  );
  const rest = await b.readOldest({ maxCount: appended });
  t.equal(rest.length, appended, 'the samples appended during the drain are all there');
});

t.test("the release's reopen waits for a lock another process took meanwhile", async (t) => {
  const p = join(dir, 'locked');
  const b = await openLevelBuffer({ path: p, maxSize: Infinity });
  await b.append(samplesFrom(0, 10));
  await b.close();
  // Another process (as `meterlink buffer stats` would) holds the store until told to let go.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const { ClassicLevel } = require('classic-level');
       const db = new ClassicLevel(process.argv[1]);
       db.open().then(() => {
         console.log('locked');
         process.stdin.once('data', async () => { await db.close(); process.exit(0); });
       });`,
      p,
    ],
    { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.teardown(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! });
  const locked = new Promise<void>((resolve) => lines.on('line', (l) => l === 'locked' && resolve()));
  await locked;
  await t.rejects(
    LevelBackend.openWhenFree(p, 100),
    { code: 'BUFFER_LOCKED' },
    'a wait shorter than the hold ends in the clear BUFFER_LOCKED error',
  );
  // Called while the lock is held (the child has not been told to let go), so its first attempt fails:
  // resolving at all proves that it waited and tried again.
  const opening = LevelBackend.openWhenFree(p, 60_000);
  child.stdin!.write('go\n');
  const db = await opening;
  t.equal(db.status, 'open', 'opened once the other process let go');
  await db.close();
});
