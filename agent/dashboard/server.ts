/**
 * The dashboard's HTTP server (node:http, no framework): the static page, uPlot, and a small JSON + SSE API.
 *
 *   GET /                      the page (index.html, app.js, style.css, uPlot.iife.min.js, uPlot.min.css)
 *   GET /api/live              live view: power per meter and phase, reading age, buffer, connection, clock, events
 *   GET /api/history           power per minute (24 h), energy per hour (48 h) and per local day (60 days)
 *   GET /api/stream            Server-Sent Events: `live` (the /api/live document) every second, `event` per event
 *                              (with backpressure and memory bounds per client: sse.ts)
 *
 * Access: on loopback no token is needed, but the Host header must name a loopback host (a web page elsewhere
 * cannot reach the box through DNS rebinding). With a token, every /api request must carry it (`?token=` —
 * EventSource cannot send headers — or `Authorization: Bearer`); the static files are public code. The server
 * refuses to start with a malformed token, or off loopback without one (listen.ts `listenProblem`), whoever
 * starts it.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bucketEnergy, mean } from './energy.js';
import { HOUR_MS, MINUTE_MS, type HistoryStore } from './history.js';
import { dashboardUrl, isLoopback, tokenProblem, type ListenAddress } from './listen.js';
import type { LiveView } from './live.js';
import { createSseHub, type DropReason, type SseLimits, type SseStats } from './sse.js';

export interface Asset {
  type: string;
  body: Buffer;
}

export interface DashboardServerOptions {
  listen: ListenAddress;
  token?: string;
  assets: ReadonlyMap<string, Asset>;
  live: () => Promise<LiveView | undefined>;
  history?: HistoryStore;
  /** Why there is no history, shown on the page (e.g. "the agent holds the history store"). */
  historyNote?: string;
  /** Meters to show in the history, in order (default: those the store knows). */
  meters?: () => Promise<string[]>;
  /** SSE `live` period (default 1 s). */
  streamMs?: number;
  /** Most SSE clients at once (default 16); one more evicts the client blocked longest, else the oldest. */
  maxClients?: number;
  /** The other SSE bounds (sse.ts `DEFAULT_SSE_LIMITS`). */
  sse?: Partial<Omit<SseLimits, 'maxClients'>>;
  /** Told of each SSE client dropped (it stopped reading, or gave way to a newcomer). */
  onStreamDrop?: (why: DropReason, queuedBytes: number) => void;
  now?: () => number;
}

export interface DashboardServer {
  readonly url: string;
  readonly port: number;
  /** Sends one event to every SSE client. */
  publishEvent(ev: unknown): void;
  /** The SSE clients and the memory held for them. */
  sseStats(): SseStats;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

export type HistoryDoc = Awaited<ReturnType<typeof historyDoc>>;

/** The /api/history document; rows are arrays to keep it small: [t, avg W, min W, max W], [t, import kWh, export kWh]. */
export async function historyDoc(
  history: HistoryStore | undefined,
  meterIds: string[],
  now: number,
  note?: string,
) {
  const meters: Record<
    string,
    {
      power: [number, number | null, number | null, number | null][];
      hours: [number, number | null, number | null][];
      days: [number, number | null, number | null][];
    }
  > = {};
  if (history) {
    for (const id of meterIds) {
      const minutes = await history.minutes(id, now - 24 * HOUR_MS, now + MINUTE_MS);
      const hours = await history.hours(id, now - 48 * HOUR_MS, now + HOUR_MS);
      const days = await history.days(id, now - 59 * 24 * HOUR_MS, now + HOUR_MS);
      const energyRow = (b: (typeof hours)[number]): [number, number | null, number | null] => {
        const e = bucketEnergy(b);
        return [b.t, e.importKwh, e.exportKwh];
      };
      meters[id] = {
        power: minutes.map((b) => [b.t, mean(b.p), b.p?.min ?? null, b.p?.max ?? null]),
        hours: hours.map(energyRow),
        days: days.map(energyRow),
      };
    }
  }
  return { now, available: history !== undefined, ...(note ? { note } : {}), meters };
}

/** The server would be open to anyone, or its token is malformed. */
export class DashboardAccessError extends Error {
  readonly code = 'DASHBOARD_TOKEN' as const;
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(`${message}; ${fix}`);
    this.name = 'DashboardAccessError';
  }
}

export async function startDashboardServer(opts: DashboardServerOptions): Promise<DashboardServer> {
  const access =
    opts.token !== undefined
      ? tokenProblem(opts.token)
      : opts.listen.loopback
        ? undefined
        : {
            message: `${opts.listen.host} is reachable from the network, so the dashboard needs a token`,
            fix: 'give it dashboard.token or --token (e.g. the output of `openssl rand -hex 16`), or listen on 127.0.0.1',
          };
  if (access) throw new DashboardAccessError(access.message, access.fix);
  const now = opts.now ?? Date.now;
  const token = opts.token === undefined ? undefined : Buffer.from(opts.token);
  const clients = createSseHub(
    { ...opts.sse, maxClients: opts.maxClients ?? 16 },
    undefined,
    opts.onStreamDrop,
  );
  let streamTimer: NodeJS.Timeout | undefined;

  const authorised = (req: IncomingMessage, url: URL): boolean => {
    if (token === undefined) return true;
    const given = url.searchParams.get('token') ?? /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (given === undefined) return false;
    const b = Buffer.from(given);
    return b.length === token.length && timingSafeEqual(b, token);
  };
  const hostAllowed = (req: IncomingMessage): boolean => {
    if (token || !opts.listen.loopback) return true;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    return isLoopback(host);
  };

  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string | Buffer,
    extra: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': type,
      'cache-control': 'no-store',
      ...extra,
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, doc: unknown) =>
    send(res, status, 'application/json; charset=utf-8', JSON.stringify(doc));

  const liveOrError = async () => (await opts.live()) ?? { error: 'no status yet: is the agent running?' };

  const tickStream = async () => {
    clients.sweep();
    if (clients.size === 0) return;
    const doc = JSON.stringify(await liveOrError());
    clients.broadcast(`event: live\ndata: ${doc}\n\n`, true);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (!hostAllowed(req))
      return json(res, 421, {
        error: `host ${req.headers.host ?? '(none)'} not served: open ${dashboardUrl(opts.listen)}`,
      });
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'only GET' });
    const path = url.pathname === '/' ? '/index.html' : url.pathname;
    const asset = opts.assets.get(path.slice(1));
    if (asset) return send(res, 200, asset.type, asset.body, { 'cache-control': 'max-age=300' });
    if (!path.startsWith('/api/')) return json(res, 404, { error: `no such page: ${url.pathname}` });
    if (!authorised(req, url))
      return json(res, 401, {
        error: 'this dashboard needs its token: add ?token=… (dashboard.token in the config)',
      });
    switch (path) {
      case '/api/live':
        return json(res, 200, await liveOrError());
      case '/api/history': {
        const ids = opts.meters ? await opts.meters() : ((await opts.history?.meters()) ?? []);
        return json(res, 200, await historyDoc(opts.history, ids, now(), opts.historyNote));
      }
      case '/api/stream': {
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          // A stream that ends (sse.ts: maxStreamMs) closes its connection; the browser opens a new one.
          connection: 'close',
        });
        clients.add(res);
        clients.send(res, 'retry: 2000\n\n', false);
        res.once('close', () => {
          if (clients.size === 0 && streamTimer) {
            clearInterval(streamTimer);
            streamTimer = undefined;
          }
        });
        streamTimer ??= setInterval(() => void tickStream().catch(() => {}), opts.streamMs ?? 1_000);
        clients.send(res, `event: live\ndata: ${JSON.stringify(await liveOrError())}\n\n`, true);
        return;
      }
      default:
        return json(res, 404, { error: `no such API: ${url.pathname}` });
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: (err as Error).message });
      else res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: dashboardUrl({ host: opts.listen.host, port }),
    port,
    publishEvent(ev) {
      clients.broadcast(`event: event\ndata: ${JSON.stringify(ev)}\n\n`, false);
    },
    sseStats: () => clients.stats(),
    async close() {
      if (streamTimer) clearInterval(streamTimer);
      clients.closeAll();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
