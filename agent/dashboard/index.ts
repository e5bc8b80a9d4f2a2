/**
 * The local web dashboard: `dashboard:` in the config turns it on inside `meterlink run` (and the demo);
 * `meterlink dashboard` serves one beside a running agent from its status file. The agent loads this module
 * only when the dashboard is on (dynamic import), so it costs nothing when off.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { QualityFlag, valueToNumber, type EventV1, type SampleInput } from '../../cloud-contract/index.js';
import type { Config } from '../config/index.js';
import type { AgentStatus } from '../daemon/status-file.js';
import { openHistory, type HistoryStore } from './history.js';
import { parseListen } from './listen.js';
import { liveView, type DashboardEvent } from './live.js';
import { startDashboardServer, type Asset, type DashboardServer } from './server.js';

export { openHistory, type HistoryStore } from './history.js';
export { dashboardUrl, isLoopback, listenProblem, parseListen, tokenProblem } from './listen.js';
export { startDashboardServer } from './server.js';

export type DashboardConfig = NonNullable<Config['dashboard']>;

const MAX_EVENTS = 50;
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/**
 * The page and uPlot. From the compiled package they sit in dist/agent/dashboard/static/ (the build copies
 * uPlot there, so nothing is fetched from a CDN or node_modules at run time); from source, uPlot comes from
 * node_modules.
 */
export async function loadAssets(): Promise<Map<string, Asset>> {
  const dir = fileURLToPath(new URL('./static/', import.meta.url));
  const assets = new Map<string, Asset>();
  const add = async (name: string, file: string) => {
    assets.set(name, { type: TYPES[name.split('.').pop() as string] as string, body: await readFile(file) });
  };
  for (const f of ['index.html', 'app.js', 'style.css']) await add(f, join(dir, f));
  for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) {
    const bundled = join(dir, 'vendor', f);
    try {
      await add(f, bundled);
    } catch {
      const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
      await add(f, join(uplotDir, 'dist', f));
    }
  }
  return assets;
}

/** The history directory: `dashboard.history`, else history/ beside the buffer directory. */
export const historyPath = (config: Pick<Config, 'buffer' | 'dashboard'>): string =>
  config.dashboard?.history ?? join(dirname(config.buffer.path), 'history');

export interface Dashboard {
  readonly url: string;
  readonly history: HistoryStore;
  /** A sample the agent stored (same object as appended to the buffer). */
  record(sample: SampleInput, serial?: string): void;
  event(ev: EventV1): void;
  close(): Promise<void>;
}

export interface StartDashboardOptions {
  config: Pick<Config, 'buffer' | 'dashboard' | 'meters'>;
  status: () => AgentStatus;
  log: Logger;
  /** Events already waiting (shown until newer ones arrive). */
  events?: readonly EventV1[];
}

const toDashboardEvent = (ev: EventV1): DashboardEvent => ({
  ts: ev.ts,
  event: ev.event,
  severity: ev.severity,
  message: ev.message ?? ev.event,
});

/** The dashboard inside the agent: history fed by `record`, live from `status()`. */
export async function startDashboard(opts: StartDashboardOptions): Promise<Dashboard> {
  const cfg = opts.config.dashboard as DashboardConfig;
  const listen = parseListen(cfg.listen);
  const log = opts.log;
  const path = historyPath(opts.config);
  const history = await openHistory(path, {
    onError: (err) => log.warn({ err }, `dashboard history: ${err.message}`),
    onSetAside: (movedTo, err) =>
      log.warn(
        { movedTo, err },
        `dashboard history at ${path} was unreadable; moved to ${movedTo}, starting afresh`,
      ),
  });
  const events: DashboardEvent[] = (opts.events ?? []).slice(-MAX_EVENTS).map(toDashboardEvent);
  const meterIds = opts.config.meters.map((m) => m.id);
  let server: DashboardServer;
  try {
    server = await startDashboardServer({
      listen,
      ...(cfg.token !== undefined ? { token: cfg.token } : {}),
      assets: await loadAssets(),
      live: async () => liveView(opts.status(), events, Date.now()),
      history,
      meters: async () => meterIds,
      onStreamDrop: (why, queuedBytes) =>
        log.info(
          { why, queuedBytes },
          why === 'evicted'
            ? 'dashboard: a page gave way to a newer one (16 open at most; a live page reconnects by itself)'
            : `dashboard: dropped a page that stopped reading (${why === 'queue' ? 'its queue reached 64 KiB' : 'blocked for 30 s'})`,
        ),
    });
  } catch (err) {
    await history.close();
    throw new Error(`dashboard: cannot listen on ${cfg.listen}: ${(err as Error).message}`, { cause: err });
  }
  if (!listen.loopback)
    log.warn(
      { listen: cfg.listen },
      `dashboard listens on ${cfg.listen}, reachable from the network: every request needs dashboard.token; prefer 127.0.0.1 and an SSH tunnel`,
    );
  log.info({ url: server.url }, `dashboard on ${server.url}`);
  return {
    url: server.url,
    history,
    record(sample, serial) {
      if (sample.flags & QualityFlag.clockUnsynced) return;
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(sample.values)) values[k] = valueToNumber(v);
      history.record(sample.meter, sample.ts, values, serial);
    },
    event(ev) {
      const d = toDashboardEvent(ev);
      events.push(d);
      if (events.length > MAX_EVENTS) events.shift();
      server.publishEvent(d);
    },
    async close() {
      await server.close();
      await history.close();
    },
  };
}
