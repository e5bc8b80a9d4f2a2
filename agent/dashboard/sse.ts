/**
 * The dashboard's Server-Sent Events clients, with backpressure and bounds on what the agent holds for them.
 *
 * A browser that stops reading (a laptop put to sleep, a stalled tunnel, a client that never reads on
 * purpose) must cost the agent a bounded amount of memory and must not keep others out:
 * - `live` frames are snapshots, each superseding the last: while a client's socket has not drained
 *   (`res.write()` returned false), its `live` frames are skipped, not queued. Events are queued.
 * - What Node holds for one client (`res.writableLength`: the response's own buffer plus its socket's) never
 *   passes `maxQueueBytes`; a frame that would pass it drops the client instead.
 * - A client that has not drained for `stallMs` is dropped.
 * - Each stream ends after `maxStreamBytes` or `maxStreamMs`, whichever comes first (EventSource reconnects by
 *   itself after `retry`; the page's next `live` frame carries the recent events again). Until its queue is
 *   full the kernel takes whatever is written, for a reader or not (measured on loopback: 2.8 MiB per socket
 *   that never read, with Node seeing no backpressure at all), so this is what bounds the kernel memory a
 *   client that never reads can hold: the stream's byte budget.
 * - At `maxClients`, a new client evicts the client blocked longest, else the oldest (which, if it is a live
 *   browser, reconnects): nobody is locked out.
 * Ending a stream, like dropping a client, resets the connection (RST): a polite end (FIN after the data)
 * leaves the unsent bytes in the kernel until the peer reads them, which a stalled peer never does, and once
 * the socket is shut down for writing it can no longer be reset.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface SseLimits {
  /** Most clients at once (default 16). */
  maxClients: number;
  /** Most bytes Node may hold unsent for one client (default 64 KiB). */
  maxQueueBytes: number;
  /** A client whose socket has not drained for this long is dropped (default 30 s). */
  stallMs: number;
  /** Each stream is ended after this long; browsers reconnect (default 10 min). */
  maxStreamMs: number;
  /** Each stream is ended after sending this much (default 256 KiB: about 3 minutes of `live` at 1 Hz). */
  maxStreamBytes: number;
}

export const DEFAULT_SSE_LIMITS: SseLimits = Object.freeze({
  maxClients: 16,
  maxQueueBytes: 64 * 1024,
  stallMs: 30_000,
  maxStreamMs: 10 * 60_000,
  maxStreamBytes: 256 * 1024,
});

export type DropReason = 'queue' | 'stalled' | 'evicted';

export interface SseStats {
  clients: number;
  /** Bytes Node holds unsent for all clients now, and the most it ever held for one client and for all. */
  queuedBytes: number;
  peakClientQueuedBytes: number;
  peakQueuedBytes: number;
  /** Clients dropped, by why. */
  dropped: Record<DropReason, number>;
  /** Streams ended at `maxStreamBytes` or `maxStreamMs`. */
  retired: number;
  /** `live` frames not sent to a client whose socket had not drained. */
  skippedFrames: number;
}

interface Client {
  res: ServerResponse;
  /** The connection, kept: a response lets go of its socket once it has ended, a stalled one included. */
  socket: Socket | null;
  since: number;
  /** When `write()` last returned false and no 'drain' followed yet. */
  blockedSince: number | undefined;
  /** Bytes written to this stream so far. */
  sent: number;
}

export interface SseHub {
  readonly size: number;
  /** Takes a response whose SSE headers are written; at the cap, first evicts another client. */
  add(res: ServerResponse): void;
  /** Sends to one client; `snapshot` frames are skipped while it is blocked. */
  send(res: ServerResponse, frame: string, snapshot: boolean): void;
  /** Sends to every client. */
  broadcast(frame: string, snapshot: boolean): void;
  /** Drops stalled clients and ends old streams (call it periodically). */
  sweep(): void;
  stats(): SseStats;
  /** Ends every stream (server shutdown). */
  closeAll(): void;
}

export function createSseHub(
  limits: Partial<SseLimits> = {},
  clock: () => number = () => performance.now(),
  /** Told of each client dropped, with why and how much Node held for it. */
  onDrop: (why: DropReason, queuedBytes: number) => void = () => {},
): SseHub {
  const l: SseLimits = { ...DEFAULT_SSE_LIMITS, ...limits };
  const clients = new Map<ServerResponse, Client>();
  const stats: SseStats = {
    clients: 0,
    queuedBytes: 0,
    peakClientQueuedBytes: 0,
    peakQueuedBytes: 0,
    dropped: { queue: 0, stalled: 0, evicted: 0 },
    retired: 0,
    skippedFrames: 0,
  };

  const reset = (c: Client) => {
    if (c.socket && !c.socket.destroyed) c.socket.resetAndDestroy();
    else c.res.destroy();
  };
  const drop = (c: Client, why: DropReason) => {
    if (!clients.delete(c.res)) return;
    stats.dropped[why]++;
    const held = c.res.writableLength;
    reset(c);
    onDrop(why, held);
  };
  const queued = (): number => {
    let sum = 0;
    for (const c of clients.values()) sum += c.res.writableLength;
    return sum;
  };
  const measure = (c: Client) => {
    const mine = c.res.writableLength;
    if (mine > stats.peakClientQueuedBytes) stats.peakClientQueuedBytes = mine;
    const all = queued();
    if (all > stats.peakQueuedBytes) stats.peakQueuedBytes = all;
  };

  const send = (res: ServerResponse, frame: string, snapshot: boolean) => {
    const c = clients.get(res);
    if (!c) return;
    if (snapshot && c.blockedSince !== undefined) {
      stats.skippedFrames++;
      return;
    }
    const bytes = Buffer.byteLength(frame);
    if (res.writableLength + bytes > l.maxQueueBytes) return drop(c, 'queue');
    if (!res.write(frame) && c.blockedSince === undefined) {
      c.blockedSince = clock();
      res.once('drain', () => (c.blockedSince = undefined));
    }
    measure(c);
    c.sent += bytes;
    if (c.sent >= l.maxStreamBytes) retire(c);
  };

  const evictOne = () => {
    let victim: Client | undefined;
    for (const c of clients.values()) {
      if (c.blockedSince !== undefined) {
        if (victim?.blockedSince === undefined || c.blockedSince < victim.blockedSince) victim = c;
      } else if (victim === undefined || (victim.blockedSince === undefined && c.since < victim.since)) {
        victim = c;
      }
    }
    if (victim) drop(victim, 'evicted');
  };

  function retire(c: Client) {
    if (!clients.delete(c.res)) return;
    stats.retired++;
    reset(c);
  }

  return {
    get size() {
      return clients.size;
    },
    add(res) {
      while (clients.size > 0 && clients.size >= l.maxClients) evictOne();
      const c: Client = {
        res,
        socket: res.socket,
        since: clock(),
        blockedSince: undefined,
        sent: 0,
      };
      clients.set(res, c);
      res.once('close', () => clients.delete(res));
    },
    send,
    broadcast(frame, snapshot) {
      for (const res of [...clients.keys()]) send(res, frame, snapshot);
    },
    sweep() {
      const now = clock();
      for (const c of [...clients.values()]) {
        if (c.blockedSince !== undefined && now - c.blockedSince >= l.stallMs) drop(c, 'stalled');
        else if (now - c.since >= l.maxStreamMs) retire(c);
      }
    },
    stats() {
      return { ...stats, clients: clients.size, queuedBytes: queued(), dropped: { ...stats.dropped } };
    },
    closeAll() {
      for (const c of clients.values()) c.res.end();
      clients.clear();
    },
  };
}
