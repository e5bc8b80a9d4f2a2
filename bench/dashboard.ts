/**
 * `npm run bench:dashboard`: the dashboard's memory with 16 SSE clients that never read, against the +10 MiB
 * the dashboard is allowed on the box. The dashboard server runs in a child process (this file with
 * `--serve`), with the real page assets and the live document of a three-meter agent; the bench samples the
 * child's RSS from /proc, the kernel's send queue of its sockets from /proc/net/tcp, and the server's own
 * count of what it holds for SSE clients.
 *
 * The server runs with the box's memory settings (systemd/meterlink.service: NODE_OPTIONS heap limits, MALLOC_*,
 * the V8 flags /usr/bin/meterlink adds), from the TypeScript sources through tsx.
 *
 * Phases, each `--seconds` long (default 60), after 20 s of warm-up:
 *   baseline  the server with no client at all (after one page load, so its code is warm);
 *   stalled   16 raw sockets that ask for /api/stream and never read a byte; each one the server drops or
 *             ends is opened again, so 16 are there throughout;
 * then a 17th client that reads: does it get the stream, and how soon.
 *
 * `--stream-ms` (default 50) is the `live` period: 20 times the agent's 1 s, so a one-minute phase carries the
 * frames of twenty minutes to each stalled client and the bounds are reached within the run. `--stream-ms
 * 1000` measures the real rate.
 *
 * Ends with `RESULT {json}`.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { SseStats } from '../agent/dashboard/sse.js';
import { mib, procSample, unitMemorySettings } from './lib/proc.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ALLOWANCE_MIB = 10;
const STALLED = 16;

/** The child: the dashboard server, its SSE stats on request over IPC. */
async function serve(streamMs: number): Promise<void> {
  const { loadAssets, startDashboardServer } = await import('../agent/dashboard/index.js');
  const { parseListen } = await import('../agent/dashboard/listen.js');
  const { liveView } = await import('../agent/dashboard/live.js');
  const now = Date.now();
  const meter = (id: string, w: number) => ({
    id,
    label: `modbus-rtu /dev/ttyUSB0 unit ${id}`,
    ok: true,
    polls: 3600,
    failures: 0,
    skipped: 0,
    lastTs: now - 400,
    lastValues: {
      power_w: w,
      power_l1_w: w / 3,
      power_l2_w: w / 3,
      power_l3_w: w / 3,
      voltage_l1_v: 231.2,
      voltage_l2_v: 229.8,
      voltage_l3_v: 230.4,
      energy_import_kwh: 12345.67,
      energy_export_kwh: 89.01,
    },
    lastError: null,
    lastErrorAt: null,
  });
  const status = {
    v: 1 as const,
    pid: process.pid,
    thing: 'apt-12-meterbox',
    version: '0.1.0',
    startedAt: now - 3_600_000,
    updatedAt: now,
    connection: {
      state: 'connected' as const,
      endpoint: 'x-ats.iot.eu-west-1.amazonaws.com:8883',
      lastError: null,
      since: now - 3_000_000,
    },
    buffer: {
      depth: 42,
      bytes: 42_000,
      oldestTs: now - 42_000,
      newestSeq: 99_000,
      lastSeq: 99_000,
      dropped: 0,
    },
    publisher: {
      batchesAcked: 60,
      samplesAcked: 10_000,
      bytesAcked: 1_000_000,
      inFlight: 0,
      lastAckAt: now - 20_000,
      lastError: null,
      pausedUntil: null,
    },
    clock: { synced: true, lastStepMs: null, source: 'kernel', detail: 'kernel: synchronised' },
    meters: [meter('main', 2300), meter('flat', 850), meter('pv', -1200)],
    recentErrors: [],
  };
  const events = Array.from({ length: 10 }, (_, i) => ({
    ts: now - i * 60_000,
    event: 'meter_recovered',
    severity: 'info' as const,
    message: `meter flat answers again after ${i + 1} failed polls`,
  }));
  const server = await startDashboardServer({
    listen: parseListen('127.0.0.1:0'),
    assets: await loadAssets(),
    live: async () => liveView({ ...status, updatedAt: Date.now() } as never, events, Date.now()),
    streamMs,
  });
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (m) => {
    // Collected before a phase, so that each starts from the same heap, not from the last one's garbage.
    if (m === 'gc') for (let i = 0; i < 3; i++) gc?.();
    process.send?.({ stats: server.sseStats() });
  });
  process.send?.({ port: server.port });
}

/** Bytes in the kernel's send queues of the server's sockets (local port = the server's). */
async function sendQueueBytes(port: number): Promise<number> {
  const text = await readFile('/proc/net/tcp', 'utf8');
  let sum = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || Number.parseInt(f[1]?.split(':')[1] ?? '', 16) !== port) continue;
    sum += Number.parseInt(f[4]?.split(':')[0] ?? '0', 16);
  }
  return sum;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

async function main(): Promise<void> {
  const seconds = arg('seconds', 60);
  const streamMs = arg('stream-ms', 50);
  // The box's memory settings (systemd/meterlink.service): heap limits, malloc tunables, V8 flags.
  const unit = await unitMemorySettings(
    fileURLToPath(new URL('../systemd/meterlink.service', import.meta.url)),
  );
  // The daemon's flags: the dashboard the +10 MiB is allowed for is the one inside `meterlink run`.
  const nodeFlags = unit.nodeFlagsFor('run');
  console.log(
    `server environment from systemd/meterlink.service: ${JSON.stringify(unit.env)}; node flags: ${nodeFlags.join(' ') || '-'}`,
  );
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      ...nodeFlags,
      '--expose-gc',
      fileURLToPath(import.meta.url),
      '--serve',
      '--stream-ms',
      String(streamMs),
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...unit.env } },
  );
  const stop = () => child.kill('SIGKILL');
  process.on('exit', stop);
  const port = await new Promise<number>((resolve) =>
    child.on('message', (m: { port?: number }) => m.port !== undefined && resolve(m.port)),
  );
  const stats = (what = 'stats') =>
    new Promise<SseStats>((resolve) => {
      child.once('message', (m: { stats?: never }) => resolve(m.stats as never));
      child.send(what);
    });
  const fetch = (path: string) =>
    new Promise<void>((resolve) =>
      get(`http://127.0.0.1:${port}${path}`, (r) => r.resume().on('end', resolve)),
    );
  for (const p of ['/', '/app.js', '/uPlot.iife.min.js', '/api/live', '/api/history']) await fetch(p);
  console.log(
    `dashboard server pid ${child.pid} on port ${port}; live every ${streamMs} ms; ${seconds} s per phase`,
  );

  const phase = async (name: string, everySecond: () => Promise<void> = async () => {}) => {
    await stats('gc');
    const rss: number[] = [];
    const anon: number[] = [];
    const sendQ: number[] = [];
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const p = await procSample(child.pid as number);
      rss.push(p.rssKiB * 1024);
      anon.push(p.anonKiB * 1024);
      sendQ.push(await sendQueueBytes(port));
      await everySecond();
      await delay(1000);
    }
    const s = await stats();
    const fig = {
      rssMedianMiB: mib(median(rss) / 1024),
      rssPeakMiB: mib(Math.max(...rss) / 1024),
      rssEndMiB: mib((rss.at(-1) ?? 0) / 1024),
      anonMedianMiB: mib(median(anon) / 1024),
      kernelSendQueuePeakKiB: Math.round(Math.max(...sendQ) / 1024),
      kernelSendQueueEndKiB: Math.round((sendQ.at(-1) ?? 0) / 1024),
      sse: s,
    };
    console.log(`${name}: ${JSON.stringify(fig)}`);
    return fig;
  };

  // Warm-up: start-up and the page loads leave garbage and lazily compiled code behind; let it settle.
  await delay(20_000);
  const baseline = await phase('baseline (no clients)');

  // An adversary's 16 connections that never read: each one the server drops or ends is opened again, so
  // 16 stalled clients are there the whole phase. (A paused socket does not notice its reset; the server's
  // count says how many are left.)
  const sockets: Socket[] = [];
  const openStalled = () => {
    const s = connect({ host: '127.0.0.1', port });
    s.pause();
    s.on('error', () => {});
    s.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    sockets.push(s);
  };
  for (let i = 0; i < STALLED; i++) openStalled();
  const topUp = async () => {
    const { clients } = await stats();
    for (let i = clients; i < STALLED; i++) openStalled();
  };
  const stalled = await phase(`${STALLED} stalled clients`, topUp);

  // The 17th arrives when the 16 are all there (the phase's last top-up may still be connecting).
  await topUp();
  await delay(500);
  const t0 = Date.now();
  const seventeenth = await new Promise<{ status: number; firstByteMs: number }>((resolve) => {
    const req = get(`http://127.0.0.1:${port}/api/stream`, (res) => {
      res.once('data', () => {
        resolve({ status: res.statusCode ?? 0, firstByteMs: Date.now() - t0 });
        req.destroy();
      });
    });
    req.on('error', () => resolve({ status: 0, firstByteMs: -1 }));
  });
  const after = await stats();
  const evictedFor17th = after.dropped.evicted - stalled.sse.dropped.evicted;
  for (const s of sockets) s.destroy();
  stop();

  const deltaMedian = +(stalled.rssMedianMiB - baseline.rssMedianMiB).toFixed(1);
  const deltaPeak = +(stalled.rssPeakMiB - baseline.rssPeakMiB).toFixed(1);
  const deltaAnon = +(stalled.anonMedianMiB - baseline.anonMedianMiB).toFixed(1);
  const rows: [string, string, string][] = [
    [
      'RSS median / peak / end (MiB)',
      `${baseline.rssMedianMiB} / ${baseline.rssPeakMiB} / ${baseline.rssEndMiB}`,
      `${stalled.rssMedianMiB} / ${stalled.rssPeakMiB} / ${stalled.rssEndMiB}`,
    ],
    ['anonymous RSS median (MiB)', String(baseline.anonMedianMiB), String(stalled.anonMedianMiB)],
    [
      'over the baseline: RSS median / peak, anon median (MiB)',
      '-',
      `${deltaMedian} / ${deltaPeak}, ${deltaAnon} (allowed +${ALLOWANCE_MIB})`,
    ],
    [
      'kernel send queue peak / end (KiB)',
      `${baseline.kernelSendQueuePeakKiB} / ${baseline.kernelSendQueueEndKiB}`,
      `${stalled.kernelSendQueuePeakKiB} / ${stalled.kernelSendQueueEndKiB}`,
    ],
    [
      'held by Node for SSE: peak one client / all (KiB)',
      '-',
      `${Math.round(stalled.sse.peakClientQueuedBytes / 1024)} / ${Math.round(stalled.sse.peakQueuedBytes / 1024)}`,
    ],
    [
      'stalled connections opened / streams ended at their budget',
      '-',
      `${sockets.length} / ${stalled.sse.retired}`,
    ],
    [
      'stalled clients dropped (queue / stalled / evicted)',
      '-',
      `${stalled.sse.dropped.queue} / ${stalled.sse.dropped.stalled} / ${stalled.sse.dropped.evicted}`,
    ],
    ['live frames skipped for blocked clients', '-', String(stalled.sse.skippedFrames)],
    [
      '17th client: status, first byte, evictions meanwhile',
      '-',
      `${seventeenth.status}, ${seventeenth.firstByteMs} ms, ${evictedFor17th}`,
    ],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max('baseline (no clients)'.length, ...rows.map((r) => r[1].length));
  console.log(`\n${'figure'.padEnd(w0)}  ${'baseline (no clients)'.padEnd(w1)}  ${STALLED} stalled clients`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
  console.log(
    `RESULT ${JSON.stringify({
      bench: 'dashboard',
      seconds,
      streamMs,
      stalledClients: STALLED,
      allowanceMiB: ALLOWANCE_MIB,
      baseline,
      stalled,
      rssOverBaselineMedianMiB: deltaMedian,
      rssOverBaselinePeakMiB: deltaPeak,
      anonOverBaselineMedianMiB: deltaAnon,
      withinAllowance: Math.max(deltaMedian, deltaPeak) <= ALLOWANCE_MIB,
      stalledConnectionsOpened: sockets.length,
      seventeenth: { ...seventeenth, evicted: evictedFor17th },
    })}`,
  );
}

if (process.argv.includes('--serve')) await serve(arg('stream-ms', 50));
else await main();
