/**
 * The dashboard's HTTP/SSE API on a real socket: static page and bundled uPlot, /api/live, /api/history from
 * a real LevelDB history, /api/stream events, and the access rules (loopback Host check, token on /api,
 * config refusing a network address without a token).
 */
import t, { type Test } from 'tap';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseConfig, type ConfigError } from '../../agent/config/index.js';
import { loadAssets } from '../../agent/dashboard/index.js';
import { openHistory } from '../../agent/dashboard/history.js';
import {
  dashboardUrl,
  isLoopback,
  listenProblem,
  parseListen,
  tokenProblem,
} from '../../agent/dashboard/listen.js';
import { liveView } from '../../agent/dashboard/live.js';
import { startDashboardServer, type DashboardServerOptions } from '../../agent/dashboard/server.js';
import type { AgentStatus } from '../../agent/daemon/status-file.js';
import { tempDir } from '../harness/tmp.js';

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);

function status(powerW: number): AgentStatus {
  return {
    v: 1,
    pid: 1,
    thing: 'apt-12',
    version: '0.1.0',
    startedAt: NOW - 60_000,
    updatedAt: NOW,
    connection: { state: 'connected', endpoint: 'x:8883', lastError: null, since: NOW - 50_000 },
    buffer: { depth: 12, bytes: 1200, oldestTs: NOW - 12_000, newestSeq: 40, lastSeq: 40, dropped: 0 },
    publisher: {
      batchesAcked: 3,
      samplesAcked: 28,
      bytesAcked: 2000,
      inFlight: 0,
      lastAckAt: NOW - 3_000,
      lastError: null,
      pausedUntil: null,
    },
    clock: { synced: true, lastStepMs: null, source: 'kernel', detail: 'kernel: synchronised' },
    meters: [
      {
        id: 'main',
        label: 'modbus-rtu /dev/ttyUSB0 unit 1',
        ok: true,
        polls: 40,
        failures: 0,
        skipped: 0,
        lastTs: NOW - 1_000,
        lastValues: {
          power_w: powerW,
          power_l1_w: powerW / 2,
          power_l2_w: powerW / 2,
          power_l3_w: 0,
          energy_import_kwh: 12.5,
        },
        lastError: null,
        lastErrorAt: null,
      },
      {
        id: 'grid',
        label: 'dsmr /dev/ttyUSB1',
        ok: false,
        polls: 40,
        failures: 2,
        skipped: 0,
        lastTs: null,
        lastValues: { energy_import_t1_kwh: 1, energy_import_t2_kwh: 2 },
        lastError: 'TIMEOUT: no telegram',
        lastErrorAt: NOW,
      },
    ],
    recentErrors: [],
  };
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads SSE messages until `want` of them have arrived. */
function stream(
  port: number,
  path: string,
  want: number,
  onOpen?: () => void,
): Promise<{ event: string; data: string }[]> {
  return new Promise((resolve, reject) => {
    const got: { event: string; data: string }[] = [];
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      let buf = '';
      res.setEncoding('utf8');
      let opened = false;
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data !== undefined) got.push({ event, data });
          if (!opened && event) {
            opened = true;
            onOpen?.();
          }
          if (got.length >= want) {
            req.destroy();
            resolve(got);
          }
        }
      });
    });
    req.on('error', (e) => (got.length >= want ? undefined : reject(e)));
    req.end();
  });
}

async function server(t: Test, extra: Partial<DashboardServerOptions> = {}) {
  let power = 1000;
  const dir = await tempDir(t, 'meterlink-dash-');
  const history = await openHistory(join(dir, 'history'));
  t.teardown(() => history.close());
  history.record('main', NOW - 2 * 3_600_000, { energy_import_kwh: 10, power_w: 400 });
  history.record('main', NOW - 3_600_000, { energy_import_kwh: 11, power_w: 600 });
  history.record('main', NOW - 30_000, { energy_import_kwh: 12.5, power_w: 1000 });
  const s = await startDashboardServer({
    listen: parseListen('127.0.0.1:0'),
    assets: await loadAssets(),
    live: async () =>
      liveView(status(power++), [{ ts: NOW, event: 'agent_started', severity: 'info', message: 'up' }], NOW),
    history,
    meters: async () => ['main', 'grid'],
    streamMs: 50,
    now: () => NOW,
    ...extra,
  });
  t.teardown(() => s.close());
  return s;
}

t.test('page, bundled uPlot, live and history on loopback', async (t) => {
  const s = await server(t);
  t.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await get(s.port, '/');
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /text\/html/);
  t.match(page.body, /<script src="uPlot\.iife\.min\.js"><\/script>/, 'uPlot from the agent, no CDN');
  t.notMatch(page.body, /https?:\/\//, 'no external URL in the page');
  t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'/, 'strict CSP');
  const uplot = await get(s.port, '/uPlot.iife.min.js');
  t.equal(uplot.status, 200);
  t.ok(uplot.body.length > 30_000 && uplot.body.includes('uPlot'), 'uPlot served');
  t.equal((await get(s.port, '/app.js')).status, 200);
  t.equal((await get(s.port, '/style.css')).status, 200);
  t.equal((await get(s.port, '/uPlot.min.css')).status, 200);

  const live = JSON.parse((await get(s.port, '/api/live')).body);
  t.equal(live.thing, 'apt-12');
  t.equal(live.buffer.depth, 12);
  t.equal(live.buffer.ageMs, 12_000, 'buffer age from its oldest sample');
  t.same(live.meters[0].phasesW, [live.meters[0].powerW / 2, live.meters[0].powerW / 2, 0], 'per phase');
  t.equal(live.meters[0].ageMs, 1_000, 'last reading age');
  t.equal(live.meters[1].importKwh, 3, 'DSMR tariffs summed');
  t.equal(live.meters[1].powerW, null, 'no power: null');
  t.equal(live.meters[1].ok, false);
  t.equal(live.events[0].event, 'agent_started');

  const hist = JSON.parse((await get(s.port, '/api/history')).body);
  t.equal(hist.available, true);
  t.same(Object.keys(hist.meters), ['main', 'grid'], 'configured meters, in order');
  t.equal(hist.meters.main.power.length, 3, 'three minutes in the last 24 h');
  t.same(hist.meters.main.power[2], [Math.floor((NOW - 30_000) / 60_000) * 60_000, 1000, 1000, 1000]);
  t.same(
    hist.meters.main.hours.map((r: number[]) => r[1]),
    [0, 2.5],
    'energy per hour: 0 (first reading at 10:00), 12.5 − 10 (11:00 and 11:59:30)',
  );
  t.equal(
    hist.meters.main.days.reduce((s: number, r: number[]) => s + (r[1] as number), 0),
    2.5,
    'days add up',
  );
  t.same(hist.meters.grid, { power: [], hours: [], days: [] }, 'a meter without history: empty');

  t.equal((await get(s.port, '/nope')).status, 404);
  t.equal((await get(s.port, '/api/nope')).status, 404);
  t.equal((await get(s.port, '/api/live', {}, 'POST')).status, 405, 'read-only');
});

t.test('SSE: live every period, events as they happen', async (t) => {
  const s = await server(t);
  const msgs = await stream(s.port, '/api/stream', 4, () =>
    s.publishEvent({ ts: NOW, event: 'meter_error', severity: 'warning', message: 'TIMEOUT' }),
  );
  const lives = msgs.filter((m) => m.event === 'live').map((m) => JSON.parse(m.data));
  const events = msgs.filter((m) => m.event === 'event').map((m) => JSON.parse(m.data));
  t.ok(lives.length >= 2, 'live documents stream');
  t.not(lives[0].meters[0].powerW, lives.at(-1).meters[0].powerW, 'each one fresh from the status');
  t.same(events[0]?.event, 'meter_error', 'the event pushed');
});

t.test('loopback: a foreign Host header is refused (DNS rebinding)', async (t) => {
  const s = await server(t);
  const r = await get(s.port, '/api/live', { host: 'attacker.example:8080' });
  t.equal(r.status, 421);
  t.match(JSON.parse(r.body).error, /host attacker\.example:8080 not served/);
  t.equal((await get(s.port, '/api/live', { host: `localhost:${s.port}` })).status, 200, 'localhost is fine');
  t.equal((await get(s.port, '/api/live', { host: `[::1]:${s.port}` })).status, 200, '[::1] is fine');
});

t.test('token: /api needs it (query or bearer), static files do not', async (t) => {
  const token = 'c0ffee-c0ffee-c0ffee';
  const s = await server(t, { token });
  const no = await get(s.port, '/api/live');
  t.equal(no.status, 401);
  t.match(JSON.parse(no.body).error, /needs its token: add \?token=/);
  t.equal((await get(s.port, '/api/live?token=wrong-wrong-wrong-wr')).status, 401, 'wrong token');
  t.equal((await get(s.port, '/api/live?token=short')).status, 401, 'wrong length');
  t.equal((await get(s.port, `/api/live?token=${token}`)).status, 200, 'query token');
  t.equal(
    (await get(s.port, '/api/history', { authorization: `Bearer ${token}` })).status,
    200,
    'bearer token',
  );
  t.equal((await get(s.port, '/api/stream')).status, 401, 'stream too');
  t.equal((await get(s.port, '/')).status, 200, 'the page itself is public code');
  t.equal(
    (await get(s.port, '/api/live', { host: 'box.lan', authorization: `Bearer ${token}` })).status,
    200,
    'any Host with the token',
  );
});

t.test('too many streams: the oldest gives way (a browser reconnects by itself)', async (t) => {
  const s = await server(t, { maxClients: 1 });
  const first = new Promise<void>((resolve) => {
    const req = request({ host: '127.0.0.1', port: s.port, path: '/api/stream' }, (res) => {
      res.once('data', () => resolve());
      res.on('error', () => {});
    });
    req.on('error', () => {});
    t.teardown(() => req.destroy());
    req.end();
  });
  await first;
  const msgs = await stream(s.port, '/api/stream', 1);
  t.equal(msgs[0]?.event, 'live', 'the newcomer streams');
  t.equal(s.sseStats().dropped.evicted, 1, 'the older stream evicted');
});

t.test('tokens: a malformed or missing one keeps the server from starting', async (t) => {
  const assets = await loadAssets();
  const start = (listen: string, token?: string) =>
    startDashboardServer({
      listen: parseListen(listen),
      assets,
      live: async () => undefined,
      ...(token !== undefined ? { token } : {}),
    });
  await t.rejects(start('127.0.0.1:0', ''), { code: 'DASHBOARD_TOKEN', message: /token is empty/ });
  await t.rejects(start('127.0.0.1:0', 'x'), {
    code: 'DASHBOARD_TOKEN',
    message: /1 characters, fewer than 16/,
  });
  await t.rejects(start('0.0.0.0:0'), { code: 'DASHBOARD_TOKEN', message: /reachable from the network/ });
  t.match(tokenProblem('a b c d e f g h i j'), { message: /other than letters/ });
  t.equal(tokenProblem('0123456789abcdef'), undefined, '16 characters are enough');
  t.match(listenProblem('0.0.0.0:8080', ''), { message: /token is empty/ }, 'the config rule uses it');
  t.match(listenProblem('127.0.0.1:8080', 'short'), { message: /fewer than 16/ }, 'on loopback too');
});

t.test('no history store: the page says why', async (t) => {
  const s = await startDashboardServer({
    listen: parseListen('127.0.0.1:0'),
    assets: await loadAssets(),
    live: async () => undefined,
    historyNote: 'the agent holds the history',
  });
  t.teardown(() => s.close());
  const h = JSON.parse((await get(s.port, '/api/history')).body);
  t.same(h.meters, {});
  t.equal(h.available, false);
  t.equal(h.note, 'the agent holds the history');
  t.match(JSON.parse((await get(s.port, '/api/live')).body).error, /is the agent running/);
});

t.test('listen addresses', async (t) => {
  t.same(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080, loopback: true });
  t.same(parseListen('[::1]:80'), { host: '::1', port: 80, loopback: true });
  t.same(parseListen('localhost:8080').loopback, true);
  t.same(parseListen('127.3.2.1:1').loopback, true, 'all of 127/8');
  t.same(parseListen('0.0.0.0:8080').loopback, false);
  t.same(parseListen('[::]:8080').loopback, false);
  t.same(parseListen('192.168.1.20:8080').loopback, false);
  t.throws(() => parseListen('8080'), /not host:port/);
  t.throws(() => parseListen('127.0.0.1:99999'), /above 65535/);
  t.throws(() => parseListen('[zz]:80'), /not host:port/);
  t.throws(() => parseListen('[1.2.3.4]:80'), /not an IPv6 address/);
  t.equal(isLoopback('LOCALHOST'), true);
  t.equal(dashboardUrl({ host: '0.0.0.0', port: 8080 }, 'a b'), 'http://127.0.0.1:8080/?token=a%20b');
  t.equal(dashboardUrl({ host: '::', port: 8080 }), 'http://[::1]:8080/');
  t.equal(dashboardUrl({ host: 'fe80::1', port: 1 }), 'http://[fe80::1]:1/');
  t.equal(listenProblem('127.0.0.1:8080', undefined), undefined, 'loopback: no token needed');
  t.equal(listenProblem('0.0.0.0:8080', 'x'.repeat(16)), undefined, 'network with token: fine');
  t.match(listenProblem('0.0.0.0:8080', undefined), {
    message: /reachable from the network/,
    fix: /dashboard\.token/,
  });
  t.match(listenProblem('127.0.0.1:70000', undefined), { message: /above 65535/ });
});

const base =
  'thing: apt-1\nmeters:\n  - { id: main, driver: modbus-tcp, host: 10.0.0.2, profile: eastron-sdm630 }\n';

t.test('config: dashboard section', async (t) => {
  const off = await parseConfig(base, '/etc/meterlink/config.yaml');
  t.equal(off.dashboard, undefined, 'off by default');
  const on = await parseConfig(`${base}dashboard: {}\n`, '/etc/meterlink/config.yaml');
  t.same(on.dashboard, { listen: '127.0.0.1:8080' }, 'loopback 8080 when switched on');
  const net = await parseConfig(
    `${base}dashboard:\n  listen: 0.0.0.0:8080\n  token: 0123456789abcdef0123\n  history: /var/lib/meterlink/dash\n`,
    '/etc/meterlink/config.yaml',
  );
  t.equal(net.dashboard?.listen, '0.0.0.0:8080');
  const err = (await parseConfig(
    `${base}dashboard:\n  listen: 0.0.0.0:8080\n`,
    '/etc/meterlink/config.yaml',
  ).catch((e: unknown) => e)) as ConfigError;
  t.equal(err.problems.length, 1);
  t.match(err.problems[0], {
    code: 'DASHBOARD_TOKEN',
    file: '/etc/meterlink/config.yaml',
    line: 5,
    field: 'dashboard.listen',
    message: /0\.0\.0\.0:8080 is reachable from the network/,
    fix: /openssl rand -hex 16/,
  });
  const bad = (await parseConfig(`${base}dashboard:\n  listen: 8080\n  token: short\n`, '/c.yaml').catch(
    (e: unknown) => e,
  )) as ConfigError;
  t.same(
    bad.problems.map((p) => p.field).sort(),
    ['dashboard.listen', 'dashboard.token'],
    'format problems, one each',
  );
  const typo = (await parseConfig(`${base}dashboard:\n  lisen: 127.0.0.1:8080\n`, '/c.yaml').catch(
    (e: unknown) => e,
  )) as ConfigError;
  t.match(typo.problems[0], { code: 'UNKNOWN_KEY', field: 'dashboard.lisen' }, 'unknown key named');
});
