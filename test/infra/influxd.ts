/**
 * A real InfluxDB server (Debian's `influxdb` package, 1.x) for the line-protocol sink: its own config, data
 * dirs and free ports per test file, authentication on (an admin user made through the first-user
 * bootstrap), torn down with the test. Not in test/harness: only infra tests use it.
 */
import { writeFile } from 'node:fs/promises';
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
