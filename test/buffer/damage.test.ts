/**
 * Real LevelDB damage, as a power cut or a failing SD card leaves it: a half-truncated or zero-filled table,
 * a deleted CURRENT, garbled bytes in the log, a store repair cannot bring back. In every case the buffer
 * opens, reports exactly the seq ranges it lost (nothing that survived is reported, nothing lost goes
 * unreported), keeps every sample that survived, and numbers on from the highest seq ever accepted.
 */
import t from 'tap';
import { open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openLevelBuffer, type BufferEvent, type SeqRange } from '../../buffer/index.js';
import { tempDir } from '../harness/tmp.js';
import { sampleAt, samplesFrom, type TapTest } from './fixtures.js';

/** Seqs as inclusive ranges, ascending. */
function rangesOf(seqs: Iterable<number>): SeqRange[] {
  const out: SeqRange[] = [];
  for (const s of [...seqs].sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && s === last.last + 1) out[out.length - 1] = { first: last.first, last: s };
    else out.push({ first: s, last: s });
  }
  return out;
}

/**
 * A store like a box's after a while offline: 4000 samples, reopened (so older ones sit in tables), the
 * oldest 500 acknowledged, 300 more in the log. Returns the seqs it holds and the next seq.
 */
async function offlineStore(t: TapTest) {
  const dir = await tempDir(t, 'meterlink-damage-');
  const path = join(dir, 'buffer');
  let b = await openLevelBuffer({ path, maxSize: Infinity });
  for (let i = 0; i < 4000; i += 500) await b.append(samplesFrom(i, 500));
  await b.close();
  b = await openLevelBuffer({ path, maxSize: Infinity });
  await b.ack(1, 500);
  for (let i = 4000; i < 4300; i += 10) await b.append(samplesFrom(i, 10));
  const held = new Set((await b.readOldest({ maxCount: 1e6 })).map((s) => s.seq));
  const nextSeq = b.stats().nextSeq;
  await b.close();
  return { dir, path, held, nextSeq };
}

async function largest(path: string, ext: string): Promise<string> {
  const files = (await readdir(path)).filter((f) => f.endsWith(ext));
  const sized = await Promise.all(files.map(async (f) => ({ f, size: (await stat(join(path, f))).size })));
  sized.sort((a, b) => b.size - a.size);
  if (!sized[0]) throw new Error(`no ${ext} file in ${path}`);
  return join(path, sized[0].f);
}

async function overwrite(file: string, at: number, bytes: Buffer): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, at);
  } finally {
    await fh.close();
  }
}

const damages = {
  'a half-truncated table': async (path: string) => {
    const f = await largest(path, '.ldb');
    await truncate(f, Math.floor((await stat(f)).size / 2));
  },
  'a zero-filled table': async (path: string) => {
    const f = await largest(path, '.ldb');
    const size = (await stat(f)).size;
    await overwrite(f, Math.floor(size / 3), Buffer.alloc(Math.floor(size / 3)));
  },
  'a deleted CURRENT': async (path: string) => rm(join(path, 'CURRENT')),
  '500 garbled bytes in the log': async (path: string) => {
    const f = await largest(path, '.log');
    const size = (await stat(f)).size;
    const junk = Buffer.alloc(500);
    for (let i = 0; i < 500; i++) junk[i] = (i * 131 + 7) & 0xff;
    await overwrite(f, Math.floor(size / 2), junk);
  },
  'a store repair cannot bring back': async (path: string) => {
    // CURRENT as a directory: LevelDB can neither read it nor write a new one over it.
    await rm(join(path, 'CURRENT'));
    await (await import('node:fs/promises')).mkdir(join(path, 'CURRENT'));
  },
} as const;

for (const [name, damage] of Object.entries(damages)) {
  t.test(`${name}: every lost seq reported exactly, the rest kept, seqs go on`, async (t) => {
    const { dir, path, held, nextSeq } = await offlineStore(t);
    await damage(path);
    const events: BufferEvent[] = [];
    const b = await openLevelBuffer({ path, maxSize: Infinity, onEvent: (e) => events.push(e) });
    t.teardown(() => b.close());
    const loss = events.filter((e) => e.type === 'repaired' || e.type === 'corruption-set-aside');
    t.equal(loss.length, 1, `one loss report: ${JSON.stringify(events)}`);
    const e = loss[0]!;
    if (e.type !== 'repaired' && e.type !== 'corruption-set-aside') throw new Error('unreachable');

    const after = await b.readOldest({ maxCount: 1e6 });
    // What survived is what was appended, bit for bit (acked samples a lost log resurrects are fine: they
    // are sent again, duplicates by seq).
    for (const s of after) t.same(s, { seq: s.seq, ...sampleAt(s.seq - 1) }, `seq ${s.seq} intact`);
    const survived = new Set(after.map((s) => s.seq).filter((s) => held.has(s)));
    const expectLost = rangesOf([...held].filter((s) => !survived.has(s)));
    t.same(e.lost, expectLost, `lost exactly ${JSON.stringify(expectLost)}`);
    t.equal(e.lostCount, held.size - survived.size, `${e.lostCount} of ${held.size} lost, counted`);
    t.equal(e.exact, true);
    // LevelDB's repair rebuilds a lost CURRENT from the files: nothing is lost. Other damage loses samples.
    if (name === 'a deleted CURRENT') t.equal(e.lostCount, 0, 'nothing lost');
    else t.ok(e.lostCount > 0, 'the damage did lose samples');
    t.equal(e.nextSeq, nextSeq, 'the event says where seqs go on');
    t.same(
      await b.append(samplesFrom(nextSeq - 1, 1)),
      { first: nextSeq, last: nextSeq },
      `seqs go on at ${nextSeq}, no jump`,
    );
    if (e.type === 'corruption-set-aside') {
      t.ok(
        (await readdir(e.movedTo)).some((f) => f.endsWith('.ldb')),
        'the old store is kept',
      );
      t.same((await readdir(dir)).sort(), ['buffer', e.movedTo.split('/').pop()].sort());
    } else t.same(await readdir(dir), ['buffer'], 'nothing set aside');

    // Reported once: the next open finds nothing lost.
    await b.close();
    const again: BufferEvent[] = [];
    const c = await openLevelBuffer({ path, maxSize: Infinity, onEvent: (x) => again.push(x) });
    t.same(again, [], 'no second report');
    t.equal(c.stats().nextSeq, nextSeq + 1);
    await c.close();
  });
}

t.test('the ledger survives a torn slot: the other one, a generation older, still reads', async (t) => {
  const { path, nextSeq } = await offlineStore(t);
  const ledger = join(path, 'SEQ-LEDGER');
  const bytes = await readFile(ledger);
  t.equal(bytes.length, 8192, 'two 4 KiB slots');
  // Spoil the newer slot (either may be newer): the store must still open without a false loss report.
  for (const slot of [0, 1]) {
    const copy = Buffer.from(bytes);
    copy.fill(0xee, slot * 4096 + 10, slot * 4096 + 40);
    await writeFile(ledger, copy);
    const events: BufferEvent[] = [];
    const b = await openLevelBuffer({ path, maxSize: Infinity, onEvent: (e) => events.push(e) });
    t.same(events, [], `slot ${slot} torn: nothing reported lost`);
    t.equal(b.stats().nextSeq, nextSeq);
    await b.close();
  }
});
