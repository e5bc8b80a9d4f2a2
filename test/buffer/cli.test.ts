import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openLevelBuffer, type ReadingBuffer } from '../../buffer/index.js';
import { runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';
import { samplesFrom, T0, type TapTest } from './fixtures.js';

async function store(t: TapTest, n: number): Promise<string> {
  const path = join(await tempDir(t), 'buffer');
  const b = await openLevelBuffer({ path, maxSize: Infinity });
  for (let i = 0; i < n; i += 1000) await b.append(samplesFrom(i, Math.min(1000, n - i)));
  await b.ack(1, 2);
  await b.close();
  return path;
}

t.test('buffer stats: text and --json', async (t) => {
  const path = await store(t, 10);
  const r = await runCliCaptured(['buffer', 'stats', '--path', path]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /samples +8 \(/);
  t.match(r.stdout, new RegExp(`oldest +seq 3, ${new Date(T0 + 2000).toISOString()}`));
  const j = await runCliCaptured(['buffer', 'stats', '--path', path, '--json']);
  t.match(JSON.parse(j.stdout), {
    path,
    count: 8,
    oldestSeq: 3,
    newestSeq: 10,
    nextSeq: 11,
    droppedCount: 0,
  });
});

t.test('buffer export: JSON lines, oldest first, exact values; to a file too', async (t) => {
  const path = await store(t, 2500);
  const r = await runCliCaptured(['buffer', 'export', '--path', path]);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 2498);
  t.same(
    lines.map((l) => (JSON.parse(l) as { seq: number }).seq),
    Array.from({ length: 2498 }, (_, i) => i + 3),
    'every sample once, in order, across the chunks export reads',
  );
  const first = JSON.parse(lines[0]!);
  t.same(first, { ...samplesFrom(2, 1)[0], seq: 3 });
  const out = join(path, '..', 'out.jsonl');
  const f = await runCliCaptured(['buffer', 'export', '--path', path, '--format', 'jsonl', '--output', out]);
  t.equal(f.code, 0, f.stderr);
  t.equal(await readFile(out, 'utf8'), r.stdout);
  const bad = await runCliCaptured(['buffer', 'export', '--path', path, '--format', 'csv']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /only format is jsonl/);
  const unwritable = await runCliCaptured([
    'buffer',
    'export',
    '--path',
    path,
    '--output',
    '/nonexistent/x.jsonl',
  ]);
  t.equal(unwritable.code, 1);
  t.match(unwritable.stderr, /cannot write \/nonexistent\/x.jsonl/);
});

t.test(
  'buffer path from --config; clear errors for a missing store, a bad config, a running agent',
  async (t) => {
    const path = await store(t, 5);
    const cfg = join(path, '..', 'config.yaml');
    await writeFile(
      cfg,
      `thing: test-box\nmeters:\n  - id: main\n    driver: dsmr\n    port: /dev/ttyUSB1\nbuffer:\n  path: ${path}\n`,
    );
    const viaConfig = await runCliCaptured(['buffer', 'stats', '--config', cfg, '--json']);
    if (viaConfig.code === 0) t.match(JSON.parse(viaConfig.stdout), { path, count: 3 });
    else t.match(viaConfig.stderr, /config/, 'a config the loader rejects is reported as such');

    const missing = await runCliCaptured(['buffer', 'stats', '--path', join(path, '..', 'nope')]);
    t.equal(missing.code, 1);
    t.match(missing.stderr, /there is no buffer at .*nope/);

    const badCfg = await runCliCaptured(['buffer', 'stats', '--config', join(path, '..', 'missing.yaml')]);
    t.equal(badCfg.code, 78);
    t.match(badCfg.stderr, /--path DIR/);

    // The agent (another process) holds the store: a clear message, no hang, no repair.
    const b: ReadingBuffer = await openLevelBuffer({ path, maxSize: Infinity });
    t.teardown(() => b.close());
    const locked = spawnMeterlink(['buffer', 'stats', '--path', path]);
    await locked.exited();
    t.equal(locked.child.exitCode, 1);
    t.match(locked.output(), /in use by another process.*meterlink status/s);
  },
);
