/**
 * SSE clients that stop reading, on real sockets against the real dashboard server: a raw net.Socket asks for
 * /api/stream and never reads. The server must drop it with what it holds for that client bounded, keep
 * serving a client that reads, let a newcomer in at the cap, and end streams after their lifetime.
 */
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { loadAssets } from '../../agent/dashboard/index.js';
import { parseListen } from '../../agent/dashboard/listen.js';
import { startDashboardServer, type DashboardServerOptions } from '../../agent/dashboard/server.js';
import { waitFor } from '../harness/wait.js';

// A live document of ~32 KiB every 5 ms: a reader that stops fills the kernel's buffers within a second or
// two, so Node's own queue for it is reached without waiting minutes.
const BIG = { pad: 'x'.repeat(32 * 1024) };
const QUEUE = 64 * 1024;

async function server(t: Test, extra: Partial<DashboardServerOptions> = {}) {
  const s = await startDashboardServer({
    listen: parseListen('127.0.0.1:0'),
    assets: await loadAssets(),
    live: async () => BIG as never,
    streamMs: 5,
    // No byte budget here (tested on its own below): these streams carry megabytes.
    sse: { maxQueueBytes: QUEUE, stallMs: 300, maxStreamBytes: Infinity },
    ...extra,
  });
  t.teardown(() => s.close());
  return s;
}

/** A client that sends the request and then never reads a byte. */
function stalledClient(t: Test, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.pause();
    sock.on('error', () => {});
    sock.once('connect', () => {
      sock.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      resolve(sock);
    });
    sock.once('error', reject);
    t.teardown(() => sock.destroy());
  });
}

/**
 * Bytes the kernel holds to send on the server's connections on `port`, and how many of them hold any, from
 * the kernel's table (`tx_queue`).
 */
async function serverSendQueue(port: number): Promise<{ bytes: number; sockets: number }> {
  const rows = (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1);
  let bytes = 0;
  let sockets = 0;
  for (const r of rows) {
    const f = r.trim().split(/\s+/);
    if (f.length < 5 || Number.parseInt(f[1]?.split(':')[1] ?? '', 16) !== port) continue;
    const tx = Number.parseInt(f[4]?.split(':')[0] ?? '0', 16);
    bytes += tx;
    if (tx > 0) sockets++;
  }
  return { bytes, sockets };
}

/** A client that reads everything; counts the bytes it got. */
function readingClient(t: Test, port: number) {
  const got = { bytes: 0, status: 0, ended: false };
  const req = request({ host: '127.0.0.1', port, path: '/api/stream' }, (res) => {
    got.status = res.statusCode ?? 0;
    res.on('data', (c: Buffer) => (got.bytes += c.length));
    res.on('close', () => (got.ended = true));
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  t.teardown(() => req.destroy());
  return got;
}

t.test('a client that never reads is dropped; what the server holds for it stays bounded', async (t) => {
  const drops: string[] = [];
  const s = await server(t, { onStreamDrop: (why) => drops.push(why) });
  const stalled = await stalledClient(t, s.port);
  const reader = readingClient(t, s.port);
  await waitFor(() => s.sseStats().clients === 2, { what: 'both clients connected' });
  const stats = await waitFor(
    () => {
      const st = s.sseStats();
      return st.dropped.queue + st.dropped.stalled >= 1 ? st : undefined;
    },
    { what: 'the stalled client dropped', timeout: 20_000 },
  );
  t.equal(stats.clients, 1, 'the reading client stays');
  t.match(drops, [/^(queue|stalled)$/], 'the drop is told (the agent logs it)');
  t.ok(stats.skippedFrames > 0, 'live frames skipped while the stalled socket had not drained');
  t.ok(
    stats.peakClientQueuedBytes <= QUEUE,
    `per client at most ${QUEUE} B held (peak ${stats.peakClientQueuedBytes} B)`,
  );
  t.ok(stats.peakQueuedBytes <= 2 * QUEUE, `in total at most 2 × ${QUEUE} B (peak ${stats.peakQueuedBytes})`);
  const before = reader.bytes;
  await waitFor(() => reader.bytes > before + 256 * 1024, { what: 'the reader still streams' });

  // The stalled socket was reset, not politely ended: once it reads, it sees the reset (or the end).
  const closed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
  stalled.resume();
  await closed;
  t.pass('the stalled connection is closed by the server');
});

t.test('at the cap a newcomer gets in: the blocked client is evicted first', async (t) => {
  const s = await server(t, {
    maxClients: 2,
    sse: { maxQueueBytes: 1024 * 1024, stallMs: 60_000, maxStreamBytes: Infinity },
  });
  await stalledClient(t, s.port);
  // Alone, so the skipped frames are surely the stalled client's: its socket does not drain.
  await waitFor(() => s.sseStats().skippedFrames > 0, { what: 'the stalled client blocked' });
  const reader = readingClient(t, s.port);
  await waitFor(() => s.sseStats().clients === 2 && reader.bytes > 0, { what: 'two clients connected' });
  const third = readingClient(t, s.port);
  await waitFor(() => third.bytes > 0, { what: 'the third client streams' });
  const st = s.sseStats();
  t.equal(third.status, 200, 'no 503');
  t.equal(st.dropped.evicted, 1, 'one evicted');
  t.equal(st.clients, 2);
  const before = reader.bytes;
  await waitFor(() => reader.bytes > before, { what: 'the reading client was not the one evicted' });
});

t.test('a stream ends after its byte budget', async (t) => {
  const BUDGET = 256 * 1024;
  const s = await server(t, {
    live: async () => ({ pad: 'y'.repeat(8 * 1024) }) as never,
    sse: { maxStreamBytes: BUDGET },
  });
  const reader = readingClient(t, s.port);
  await waitFor(() => reader.ended, { what: "the reader's stream ended" });
  t.ok(
    reader.bytes > 0 && reader.bytes < BUDGET + 16 * 1024,
    `the reader's stream ended (${reader.bytes} B)`,
  );
  t.equal(s.sseStats().retired, 1);
});

t.test('an ended stream takes with it what the kernel held for a client that never read', async (t) => {
  const s = await server(t, {
    live: async () => ({ pad: 'y'.repeat(8 * 1024) }) as never,
    // Ended by its budget (~0.6 s of these frames) or its lifetime, whichever comes first: long enough to see
    // the kernel hold the stalled client's bytes (its receive queue, the server's send queue) before.
    sse: { maxStreamMs: 2_000, maxStreamBytes: 1024 * 1024, stallMs: 60_000 },
  });
  const stalled = await stalledClient(t, s.port);
  await waitFor(async () => (await serverSendQueue(s.port)).bytes > 0, {
    what: 'the kernel to hold unsent bytes for the stalled client',
  });
  await waitFor(() => s.sseStats().retired === 1, { what: 'the stream ended' });
  // Its connection is reset: a polite end would leave the bytes queued behind a FIN the client never takes.
  await waitFor(async () => (await serverSendQueue(s.port)).bytes === 0, {
    what: 'the kernel to hold nothing more for the stalled connection',
  });
  t.ok(stalled.isPaused(), 'the stalled client never read');
  const closed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
  stalled.resume();
  await closed;
  t.pass('the stalled connection is gone');
});

t.test('streams end after their lifetime', async (t) => {
  const s = await server(t, {
    live: async () => ({ small: true }) as never,
    streamMs: 20,
    sse: { maxStreamMs: 200 },
  });
  const reader = readingClient(t, s.port);
  await waitFor(() => reader.ended, { what: 'the stream ended' });
  t.equal(s.sseStats().retired, 1);
  t.equal(s.sseStats().clients, 0);
});
