/**
 * LevelDB-only behaviour: persistence across reopen, the lock (same process and another process), damaged
 * store files (repair, or set aside as `<path>.corrupt-<timestamp>`), inspection-mode options.
 */
import t from 'tap';
import { tsNodeArgs } from '../harness/cli.js';
import { mkdir, readdir, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openLevelBuffer, type BufferEvent } from '../../buffer/index.js';
import { spawnLogged } from '../harness/process.js';
import { tempDir } from '../harness/tmp.js';
import { samplesFrom, type TapTest } from './fixtures.js';

async function filled(t: TapTest, n = 20_000): Promise<{ dir: string; path: string; nextSeq: number }> {
  const dir = await tempDir(t, 'meterlink-rec-');
  const path = join(dir, 'buffer');
  let b = await openLevelBuffer({ path, maxSize: Infinity });
  for (let i = 0; i < n; i += 2000) await b.append(samplesFrom(i, 2000));
  await b.close();
  // Reopening turns the log into a table: now there are .ldb, .log, MANIFEST and CURRENT files to damage.
  b = await openLevelBuffer({ path, maxSize: Infinity });
  await b.append(samplesFrom(n, 300));
  const nextSeq = b.stats().nextSeq;
  await b.close();
  return { dir, path, nextSeq };
}

async function garble(file: string): Promise<void> {
  const buf = await readFile(file);
  const from = Math.floor(buf.length / 3);
  for (let i = from; i < Math.min(buf.length, from + 4000); i++) buf[i] = (buf[i]! * 7 + 13) & 0xff;
  await writeFile(file, buf);
}

async function reopen(t: TapTest, path: string) {
  const events: BufferEvent[] = [];
  const b = await openLevelBuffer({ path, maxSize: Infinity, onEvent: (e) => events.push(e) });
  t.teardown(() => b.close());
  return { b, events };
}

t.test('samples, seqs and the dropped count survive close and reopen', async (t) => {
  const path = join(await tempDir(t), 'buffer');
  const one = await openLevelBuffer({ path, maxSize: 2000 });
  for (let i = 0; i < 100; i += 10) await one.append(samplesFrom(i, 10)); // over budget: some dropped
  const st = one.stats();
  await one.ack(st.oldestSeq!, st.oldestSeq! + 4);
  const before = { ...one.stats() };
  await one.close();
  const { b, events } = await reopen(t, path);
  t.same(events, []);
  t.same(b.stats(), { ...before, effectiveMaxSize: Infinity, refusedCount: 0 });
  t.ok(before.droppedCount > 0);
  t.same(await b.append(samplesFrom(100, 1)), { first: before.nextSeq, last: before.nextSeq });
});

t.test('a second opener gets BUFFER_LOCKED at once: same process and another process', async (t) => {
  const path = join(await tempDir(t), 'buffer');
  const b = await openLevelBuffer({ path, maxSize: Infinity });
  t.teardown(() => b.close());
  await b.append(samplesFrom(0, 3));
  const child = spawnLogged(process.execPath, [
    ...tsNodeArgs(),
    '-e',
    `import('${join(import.meta.dirname, '../../buffer/index.ts')}').then(m => m.openLevelBuffer({ path: ${JSON.stringify(path)}, maxSize: 1e9 })).then(() => console.log('OPENED'), (e) => console.log('CODE', e.code))`,
  ]);
  t.teardown(() => child.kill());
  await child.exited();
  t.match(child.output(), /CODE BUFFER_LOCKED/);
  // In-process second opener last: LevelDB closes its probe fd of LOCK, which drops the process's fcntl
  // lock (POSIX semantics), so after this another process could get in.
  await t.rejects(openLevelBuffer({ path, maxSize: Infinity }), {
    code: 'BUFFER_LOCKED',
    message: /in use by another process.*stop the running meterlink agent/,
  });

  t.equal(b.stats().count, 3, 'the holder is unaffected, nothing was repaired');
  t.same(await readdir(join(path, '..')), ['buffer']);
});

for (const target of ['CURRENT', 'MANIFEST', 'ldb', 'log'] as const) {
  t.test(`a damaged ${target} file: repaired with an event, seqs never reused`, async (t) => {
    const { dir, path, nextSeq } = await filled(t);
    const files = await readdir(path);
    if (target === 'CURRENT') await writeFile(join(path, 'CURRENT'), 'MANIFEST-999999\n');
    else {
      const f = files.find((n) =>
        target === 'MANIFEST' ? n.startsWith('MANIFEST-') : n.endsWith(`.${target}`),
      );
      await garble(join(path, f!));
    }
    const { b, events } = await reopen(t, path);
    t.equal(events.length, 1, JSON.stringify(events));
    t.match(events[0], { type: 'repaired', path, error: { code: /BUFFER_(CORRUPT|IO)/ } });
    const all = await b.readOldest({ maxCount: 1e6 });
    t.ok(all.length > 0 && all.length <= 20_300, `${all.length} samples recovered`);
    if (target === 'CURRENT' || target === 'MANIFEST') t.equal(all.length, 20_300, 'nothing lost');
    if (target === 'ldb') t.ok((events[0] as { lostCount: number }).lostCount > 0, 'the loss is counted');
    t.equal(b.stats().count, all.length);
    const r = await b.append(samplesFrom(0, 1));
    t.ok(r!.first >= nextSeq, `new seq ${r!.first} is above every seq used before (${nextSeq - 1})`);
    t.same(await readdir(dir), ['buffer'], 'nothing set aside');
  });
}

t.test(
  'a store that repair cannot bring back is set aside, never deleted, and a fresh one continues',
  async (t) => {
    const { dir, path, nextSeq } = await filled(t, 2000);
    // CURRENT as a directory: LevelDB can neither read it nor write a new one over it (repair fails).
    await rm(join(path, 'CURRENT'));
    await mkdir(join(path, 'CURRENT'));
    const { b, events } = await reopen(t, path);
    t.equal(events.length, 1, JSON.stringify(events));
    const e = events[0]!;
    if (e.type !== 'corruption-set-aside') throw new Error(`unexpected ${JSON.stringify(e)}`);
    t.match(e.movedTo, /\/buffer\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
    t.same((await readdir(dir)).sort(), ['buffer', e.movedTo.split('/').pop()].sort());
    t.ok(
      (await readdir(e.movedTo)).some((f) => f.endsWith('.ldb')),
      'the old files are kept',
    );
    t.equal(b.stats().count, 0);
    const r = await b.append(samplesFrom(0, 1));
    t.ok(r!.first >= nextSeq, `seqs continue from the reservation (${r!.first} ≥ ${nextSeq})`);
  },
);

t.test('inspection mode: no store is created, nothing is repaired', async (t) => {
  const dir = await tempDir(t);
  await t.rejects(openLevelBuffer({ path: join(dir, 'none'), maxSize: Infinity, createIfMissing: false }), {
    code: 'BUFFER_NOT_FOUND',
    message: /no buffer at .*none/,
  });
  t.same(await readdir(dir), []);
  const { path } = await filled(t, 2000);
  await writeFile(join(path, 'CURRENT'), 'MANIFEST-999999\n');
  await t.rejects(openLevelBuffer({ path, maxSize: Infinity, recovery: 'never' }), {
    code: 'BUFFER_CORRUPT',
  });
  t.equal(await readFile(join(path, 'CURRENT'), 'utf8'), 'MANIFEST-999999\n', 'files untouched');
  await t.rejects(openLevelBuffer({ path: '', maxSize: 1 }), { code: 'BUFFER_INVALID_ARGUMENT' });
});
