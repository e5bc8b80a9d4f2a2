/**
 * InfluxDB for the line-protocol sink, two ways. `startInfluxd`: a real server (Debian's `influxdb` package,
 * 1.x) with its own config, data dirs and free ports per test file, authentication on (an admin user made
 * through the first-user bootstrap), torn down with the test. `startInflux2Api`: InfluxDB 2's documented
 * v1-compatible write contract with tokens, which no server here runs. Not in test/harness: only infra tests
 * use them.
 */
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { freePort } from '../harness/net.js';
import { spawnLogged } from '../harness/process.js';
import { tempDir, type Teardown } from '../harness/tmp.js';
import { GiveUp, waitFor } from '../harness/wait.js';

export interface Influx {
  readonly url: string;
  readonly database: string;
  readonly username: string;
  readonly password: string;
  /** Runs an InfluxQL query (as admin) and returns the first series' rows as objects (epoch ms times). */
  query(q: string): Promise<Record<string, unknown>[]>;
}

export async function startInfluxd(t: Teardown): Promise<Influx> {
  const dir = await tempDir(t, 'meterlink-influx-');
  const port = await freePort();
  const rpc = await freePort();
  const conf = join(dir, 'influxdb.conf');
  await writeFile(
    conf,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${rpc}"`,
      '[meta]',
      `  dir = "${join(dir, 'meta')}"`,
      '[data]',
      `  dir = "${join(dir, 'data')}"`,
      `  wal-dir = "${join(dir, 'wal')}"`,
      '  query-log-enabled = false',
      '[http]',
      '  enabled = true',
      `  bind-address = "127.0.0.1:${port}"`,
      '  auth-enabled = true',
      '  log-enabled = false',
      '[monitor]',
      '  store-enabled = false',
      '[subscriber]',
      '  enabled = false',
      '[continuous_queries]',
      '  enabled = false',
      '',
    ].join('\n'),
  );
  const proc = spawnLogged('influxd', ['-config', conf]);
  t.teardown(() => proc.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null)
        throw new GiveUp(`influxd exited: ${proc.output() || 'is influxdb installed?'}`);
      return (await fetch(`${url}/ping`)).status === 204;
    },
    { what: `influxd on ${url}`, timeout: 30_000, interval: 50 },
  );
  const username = 'admin';
  const password = 'meterlink-test';
  const run = async (q: string, auth: boolean, db?: string) => {
    const u = new URL('/query', url);
    u.searchParams.set('q', q);
    u.searchParams.set('epoch', 'ms');
    if (db) u.searchParams.set('db', db);
    const headers: Record<string, string> = {};
    if (auth) headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    const res = await fetch(u, { method: 'POST', headers });
    const body = (await res.json()) as {
      results?: { series?: { columns: string[]; values: unknown[][] }[]; error?: string }[];
      error?: string;
    };
    if (!res.ok || body.error || body.results?.[0]?.error)
      throw new Error(`influx query ${q} failed: ${JSON.stringify(body)}`);
    return body;
  };
  // With auth on and no users yet, InfluxDB 1.x accepts exactly this bootstrap statement unauthenticated.
  await run(`CREATE USER ${username} WITH PASSWORD '${password}' WITH ALL PRIVILEGES`, false);
  await run('CREATE DATABASE meterlink', true);
  return {
    url,
    database: 'meterlink',
    username,
    password,
    async query(q) {
      const body = await run(q, true, 'meterlink');
      const series = body.results?.[0]?.series?.[0];
      if (!series) return [];
      return series.values.map((row) => Object.fromEntries(series.columns.map((c, i) => [c, row[i]])));
    },
  };
}

/**
 * InfluxDB 2's v1-compatible write API (`POST /write`, what Timestream for InfluxDB serves), as documented
 * (docs.influxdata.com: InfluxDB OSS v2 API "Write data (v1-compatible)", "Troubleshoot issues writing data"),
 * on a loopback port: Debian ships only InfluxDB 1.x, which knows no tokens. It implements exactly the request
 * contract the sink relies on, and keeps the points it accepts:
 * - auth: `Authorization: Token <token>` (or `Bearer`), or v1 credentials — `u`/`p` query parameters or Basic —
 *   whose password is the token; anything else 401 `{"code":"unauthorized"}`;
 * - `db` (and optional `rp`) name the bucket (`db` or `db/rp`), else 404 `{"code":"not found"}`; `precision` one
 *   of ns, u, ms, s, m, h;
 * - a body over `maxBodyBytes` 413; a malformed line 400 and nothing written; a field whose type differs from
 *   the stored one 422; else 204 and every point stored (same series and time: fields overwritten);
 * - `answer()` queues answers (429/503 with Retry-After, …) for the next authenticated requests.
 */

export interface InfluxPoint {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | string>;
  /** Epoch ms. */
  time: number;
}

export interface Influx2Request {
  authorization: string | undefined;
  query: Record<string, string>;
  bytes: number;
  status: number;
}

export interface Influx2Api {
  readonly url: string;
  readonly bucket: string;
  readonly token: string;
  readonly requests: Influx2Request[];
  maxBodyBytes: number;
  answer(...answers: { status: number; headers?: Record<string, string>; body?: string }[]): void;
  points(): InfluxPoint[];
}

const PRECISION_MS: Record<string, number> = { ns: 1e-6, u: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** Splits at `sep` outside backslash escapes and double quotes. */
function splitLp(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + (s[++i] as string);
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}
const unescapeLp = (s: string) => s.replace(/\\(.)/g, '$1');

function parseLine(line: string, precisionMs: number): InfluxPoint {
  const parts = splitLp(line, ' ');
  if (parts.length !== 3) throw new Error('expected measurement[,tags] fields timestamp');
  const [series, fieldText, timeText] = parts as [string, string, string];
  const [measurement, ...tagParts] = splitLp(series, ',');
  if (!measurement) throw new Error('missing measurement');
  const tags: Record<string, string> = {};
  for (const tp of tagParts) {
    const kv = splitLp(tp, '=');
    if (kv.length !== 2 || !kv[0] || !kv[1]) throw new Error(`bad tag ${tp}`);
    tags[unescapeLp(kv[0])] = unescapeLp(kv[1]);
  }
  const fields: Record<string, number | string> = {};
  for (const fp of splitLp(fieldText, ',')) {
    const kv = splitLp(fp, '=');
    if (kv.length !== 2 || !kv[0] || !kv[1]) throw new Error(`bad field ${fp}`);
    const v = kv[1];
    let value: number | string;
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) value = v.slice(1, -1);
    else if (/^-?\d+i$/.test(v)) value = Number(v.slice(0, -1));
    else if (/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v)) value = Number(v);
    else throw new Error(`bad field value ${v}`);
    fields[unescapeLp(kv[0])] = value;
  }
  if (!/^-?\d+$/.test(timeText)) throw new Error(`bad timestamp ${timeText}`);
  return { measurement: unescapeLp(measurement), tags, fields, time: Number(timeText) * precisionMs };
}

const fieldKind = (v: number | string, raw: string) =>
  typeof v === 'string' ? 'string' : /i$/.test(raw) ? 'integer' : 'float';

export async function startInflux2Api(t: Teardown): Promise<Influx2Api> {
  const bucket = 'meterlink';
  const token = 'apiv2-token-ABCDEF0123456789';
  const stored = new Map<string, InfluxPoint>();
  const kinds = new Map<string, string>();
  const queued: { status: number; headers?: Record<string, string>; body?: string }[] = [];
  const requests: Influx2Request[] = [];
  const api = {
    url: '',
    bucket,
    token,
    requests,
    maxBodyBytes: 25 * 1024 * 1024,
    answer: (...a: (typeof queued)[number][]) => void queued.push(...a),
    points: () => [...stored.values()],
  };
  const credential = (req: IncomingMessage, q: URLSearchParams): string | undefined => {
    const h = req.headers.authorization;
    const m = /^(Token|Bearer|Basic) (.+)$/.exec(h ?? '');
    if (m?.[1] === 'Basic')
      return Buffer.from(m[2] as string, 'base64')
        .toString()
        .split(':')
        .slice(1)
        .join(':');
    if (m) return m[2];
    return q.get('p') ?? undefined;
  };
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const q = u.searchParams;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const reply = (status: number, json?: object, headers: Record<string, string> = {}) => {
        requests.push({
          authorization: req.headers.authorization,
          query: Object.fromEntries(q),
          bytes: body.length,
          status,
        });
        res.writeHead(status, { ...(json ? { 'content-type': 'application/json' } : {}), ...headers });
        res.end(json ? JSON.stringify(json) : undefined);
      };
      if (req.method !== 'POST' || u.pathname !== '/write')
        return reply(404, { code: 'not found', message: 'path not found' });
      if (credential(req, q) !== token)
        return reply(401, { code: 'unauthorized', message: 'unauthorized access' });
      const next = queued.shift();
      if (next) {
        requests.push({
          authorization: req.headers.authorization,
          query: Object.fromEntries(q),
          bytes: body.length,
          status: next.status,
        });
        res.writeHead(next.status, next.headers ?? {});
        return res.end(next.body ?? '');
      }
      const db = q.get('db');
      const rp = q.get('rp');
      if (!db || (db !== bucket && `${db}/${rp ?? ''}` !== `${bucket}/autogen`))
        return reply(404, { code: 'not found', message: `bucket "${db}${rp ? `/${rp}` : ''}" not found` });
      const precision = PRECISION_MS[q.get('precision') ?? 'ns'];
      if (precision === undefined) return reply(400, { code: 'invalid', message: 'invalid precision' });
      if (body.length > api.maxBodyBytes)
        return reply(413, {
          code: 'request too large',
          message: 'unable to read data: points batch is too large',
        });
      const points: [InfluxPoint, Record<string, string>][] = [];
      for (const line of body.toString('utf8').split('\n')) {
        if (line.trim() === '' || line.startsWith('#')) continue;
        try {
          const raw = Object.fromEntries(
            splitLp(splitLp(line, ' ')[1] ?? '', ',').map((f) => splitLp(f, '=') as [string, string]),
          );
          points.push([parseLine(line, precision), raw]);
        } catch (err) {
          return reply(400, {
            code: 'invalid',
            message: `unable to parse '${line}': ${(err as Error).message}`,
          });
        }
      }
      for (const [p, raw] of points)
        for (const [k, v] of Object.entries(p.fields)) {
          const kind = fieldKind(v, raw[k] ?? '');
          const had = kinds.get(`${p.measurement}\u0000${k}`);
          if (had && had !== kind)
            return reply(422, {
              code: 'unprocessable entity',
              message: `failure writing points to database: partial write: field type conflict: input field "${k}" on measurement "${p.measurement}" is type ${kind}, already exists as type ${had} dropped=1`,
            });
        }
      for (const [p, raw] of points) {
        for (const [k, v] of Object.entries(p.fields))
          kinds.set(`${p.measurement}\u0000${k}`, fieldKind(v, raw[k] ?? ''));
        const key = `${p.measurement},${Object.entries(p.tags)
          .sort()
          .map(([k, v]) => `${k}=${v}`)
          .join(',')} ${p.time}`;
        const before = stored.get(key);
        stored.set(key, before ? { ...p, fields: { ...before.fields, ...p.fields } } : p);
      }
      return reply(204);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.teardown(() => new Promise<void>((ok) => server.close(() => ok())));
  const addr = server.address();
  api.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return api;
}
