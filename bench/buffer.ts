/**
 * `npm run bench:buffer`: what durability costs on this machine.
 *
 * 1. Durable appends/s with group commit (64 appends of one sample in flight, like several meters and a
 *    busy agent), and one at a time; bytes written to disk per sample (/proc/self/io write_bytes), against
 *    the baseline measured in the same run: an append-only file with one fsync per group of the same size.
 * 2. Drain: readOldest + ack of a backlog (the publisher's loop without the network), samples/s.
 * 3. A 1M-sample backlog: time and RSS to open it (child process), and peak RSS of `buffer export`.
 * Ends with `RESULT {json}`.
 */
import { open, readFile, rm, mkdtemp } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { openLevelBuffer } from '../buffer/index.js';
import { encodeSample } from '../buffer/sample-codec.js';
import { sampleAt, samplesFrom } from '../test/buffer/fixtures.js';

const repo = fileURLToPath(new URL('../', import.meta.url));
const APPENDS = Number(process.env.BENCH_APPENDS ?? 20_000);
const SINGLE = Number(process.env.BENCH_SINGLE ?? 2_000);
const DRAIN = Number(process.env.BENCH_DRAIN ?? 200_000);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
const IN_FLIGHT = 64;

async function writeBytes(): Promise<number> {
  const io = await readFile('/proc/self/io', 'utf8');
  return Number(/write_bytes: (\d+)/.exec(io)?.[1] ?? NaN);
}

const dirSize = (dir: string): number => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);

/** Runs `total` one-sample appends with `inFlight` outstanding; returns samples/s. */
async function pump(
  total: number,
  inFlight: number,
  appendOne: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await appendOne(next++);
    }),
  );
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** Baseline: an append-only file, length-prefixed encoded samples, one fsync per group (group commit). */
async function fileBaseline(path: string, total: number, inFlight: number) {
  const fh = await open(path, 'a');
  let pending: { buf: Buffer; resolve: () => void }[] = [];
  let flushing: Promise<void> | null = null;
  let groups = 0;
  const flush = async () => {
    while (pending.length > 0) {
      const group = pending;
      pending = [];
      await fh.write(Buffer.concat(group.map((g) => g.buf)));
      await fh.sync();
      groups++;
      for (const g of group) g.resolve();
    }
    flushing = null;
  };
  const append = (i: number) =>
    new Promise<void>((resolve) => {
      const v = encodeSample(sampleAt(i));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(v.length);
      pending.push({ buf: Buffer.concat([len, v]), resolve });
      flushing ??= flush();
    });
  const w0 = await writeBytes();
  const rate = await pump(total, inFlight, append);
  const written = (await writeBytes()) - w0;
  await fh.close();
  return { rate, bytesPerSample: written / total, groups };
}

async function levelAppends(dir: string, total: number, inFlight: number) {
  const path = join(dir, `level-${inFlight}`);
  const b = await openLevelBuffer({ path, maxSize: Infinity, retentionIntervalMs: 0 });
  const w0 = await writeBytes();
  const rate = await pump(total, inFlight, (i) => b.append([sampleAt(i)]));
  const written = (await writeBytes()) - w0;
  const bytesStored = b.stats().bytes;
  await b.close();
  return { rate, bytesPerSample: written / total, storeBytesPerSample: dirSize(path) / total, bytesStored };
}

async function drain(dir: string, total: number) {
  const path = join(dir, 'drain');
  const b = await openLevelBuffer({ path, maxSize: Infinity, retentionIntervalMs: 0 });
  for (let i = 0; i < total; i += 5000) await b.append(samplesFrom(i, 5000));
  const t0 = process.hrtime.bigint();
  let cursor = 0;
  let n = 0;
  const acks: Promise<void>[] = [];
  for (;;) {
    const batch = await b.readOldest({ afterSeq: cursor, maxCount: 2000 });
    if (batch.length === 0) break;
    cursor = batch[batch.length - 1]!.seq;
    n += batch.length;
    acks.push(b.ack(batch[0]!.seq, cursor));
    if (acks.length > 4) await acks.shift();
  }
  await Promise.all(acks);
  const rate = n / (Number(process.hrtime.bigint() - t0) / 1e9);
  await b.close();
  return { rate, samples: n };
}

/** Runs a child and polls its peak RSS (VmHWM) until it exits. */
async function childPeakRss(args: string[]): Promise<{ peakRssMiB: number; out: string; seconds: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.length > 10_000) out = out.slice(-10_000);
  });
  let peak = 0;
  const poll = setInterval(() => {
    readFile(`/proc/${child.pid}/status`, 'utf8')
      .then((s) => (peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))))
      .catch(() => undefined);
  }, 25);
  await new Promise((r) => child.once('exit', r));
  clearInterval(poll);
  return { peakRssMiB: peak / 1024, out, seconds: (Date.now() - t0) / 1000 };
}

async function backlog(dir: string, total: number) {
  const path = join(dir, 'backlog');
  const b = await openLevelBuffer({ path, maxSize: Infinity, retentionIntervalMs: 0 });
  const t0 = Date.now();
  for (let i = 0; i < total; i += 10_000) await b.append(samplesFrom(i, 10_000));
  const fillSeconds = (Date.now() - t0) / 1000;
  const stored = b.stats();
  await b.close();
  const opener = await childPeakRss([
    '--import',
    'tsx',
    '-e',
    `const t0 = Date.now(); import('${repo}buffer/index.ts').then(async (m) => { const b = await m.openLevelBuffer({ path: ${JSON.stringify(path)}, maxSize: Infinity, retentionIntervalMs: 0 }); const ms = Date.now() - t0; global.gc?.(); console.log(JSON.stringify({ ms, count: b.stats().count, rss: process.memoryUsage().rss })); await b.close(); })`,
  ]);
  const o = JSON.parse(opener.out.trim().split('\n').pop()!) as { ms: number; count: number; rss: number };
  const exporter = await childPeakRss([
    '--import',
    'tsx',
    `${repo}agent/bin.ts`,
    'buffer',
    'export',
    '--path',
    path,
    '--output',
    '/dev/null',
  ]);
  return {
    samples: stored.count,
    storeMiB: dirSize(path) / 2 ** 20,
    fillSeconds,
    openSeconds: o.ms / 1000,
    rssAfterOpenMiB: o.rss / 2 ** 20,
    peakRssOpenMiB: opener.peakRssMiB,
    exportSeconds: exporter.seconds,
    peakRssExportMiB: exporter.peakRssMiB,
  };
}

const dir = await mkdtemp(join(tmpdir(), 'meterlink-bench-'));
try {
  const baseline = await fileBaseline(join(dir, 'baseline.log'), APPENDS, IN_FLIGHT);
  const grouped = await levelAppends(dir, APPENDS, IN_FLIGHT);
  const baselineSingle = await fileBaseline(join(dir, 'baseline1.log'), SINGLE, 1);
  const single = await levelAppends(dir, SINGLE, 1);
  const drained = await drain(dir, DRAIN);
  const big = await backlog(dir, BACKLOG);
  const f = (n: number, d = 0) =>
    n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(
    `\nmeterlink buffer benchmark (${tmpdir()}, encoded sample ≈ ${f(grouped.bytesStored / APPENDS, 1)} B)\n`,
  );
  console.log('| durable appends (1 sample each)            | samples/s | disk bytes written/sample |');
  console.log('| ------------------------------------------- | --------: | ------------------------: |');
  console.log(
    `| LevelDB, group commit, ${IN_FLIGHT} in flight          | ${f(grouped.rate).padStart(9)} | ${f(grouped.bytesPerSample, 1).padStart(25)} |`,
  );
  console.log(
    `| baseline file + fsync per group, ${IN_FLIGHT} in flight | ${f(baseline.rate).padStart(9)} | ${f(baseline.bytesPerSample, 1).padStart(25)} |`,
  );
  console.log(
    `| LevelDB, one at a time                      | ${f(single.rate).padStart(9)} | ${f(single.bytesPerSample, 1).padStart(25)} |`,
  );
  console.log(
    `| baseline file + fsync, one at a time        | ${f(baselineSingle.rate).padStart(9)} | ${f(baselineSingle.bytesPerSample, 1).padStart(25)} |`,
  );
  console.log(
    `\ndrain (readOldest 2000 + ack, 4 acks in flight): ${f(drained.rate)} samples/s over ${f(drained.samples)}`,
  );
  console.log(
    `backlog of ${f(big.samples)} samples: store ${f(big.storeMiB, 1)} MiB, filled in ${f(big.fillSeconds, 1)} s; ` +
      `open ${f(big.openSeconds, 2)} s, RSS after open ${f(big.rssAfterOpenMiB, 1)} MiB (peak ${f(big.peakRssOpenMiB, 1)}); ` +
      `export to /dev/null ${f(big.exportSeconds, 1)} s, peak RSS ${f(big.peakRssExportMiB, 1)} MiB\n`,
  );
  console.log(
    `RESULT ${JSON.stringify({
      appendGroupCommitPerSec: Math.round(grouped.rate),
      appendGroupCommitDiskBytesPerSample: Math.round(grouped.bytesPerSample),
      baselineGroupFsyncPerSec: Math.round(baseline.rate),
      baselineGroupFsyncDiskBytesPerSample: Math.round(baseline.bytesPerSample),
      appendSinglePerSec: Math.round(single.rate),
      baselineSingleFsyncPerSec: Math.round(baselineSingle.rate),
      storeBytesPerSample: Math.round(grouped.storeBytesPerSample),
      drainPerSec: Math.round(drained.rate),
      backlogSamples: big.samples,
      backlogOpenSeconds: big.openSeconds,
      backlogRssMiB: Math.round(big.rssAfterOpenMiB),
      exportPeakRssMiB: Math.round(big.peakRssExportMiB),
    })}`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
