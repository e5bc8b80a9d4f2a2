/**
 * The dashboard inside the real agent (`startAgent`, LevelDB buffer, a simulated SDM630 over Modbus TCP),
 * and `meterlink dashboard` beside it: live values and history from the agent, off by default, closed with
 * the agent, the history continued after a restart; the command prints the agent's URL, or serves the status
 * file itself.
 */
import t, { type Test } from 'tap';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { startModbusSimulator } from '../../drivers/index.js';
import { parseConfig } from '../../agent/config/index.js';
import { startAgent } from '../../agent/daemon/agent.js';
import { runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON documents, checked field by field below
function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function setup(t: Test) {
  const dir = await tempDir(t, 'meterlink-agent-dash-');
  const sim = await startModbusSimulator({
    transport: { kind: 'tcp', port: 0, host: '127.0.0.1' },
    units: [{ unit: 1, profile: 'eastron-sdm630' }],
  });
  t.teardown(() => sim.stop());
  const yaml = (dashboard: string) =>
    [
      'thing: dash-box',
      'meters:',
      `  - { id: main, driver: modbus-tcp, host: 127.0.0.1, port: ${sim.port}, unit: 1, profile: eastron-sdm630, interval: 200ms }`,
      'buffer:',
      `  path: ${join(dir, 'buffer')}`,
      'time:',
      '  source: trust',
      'status:',
      `  file: ${join(dir, 'status.json')}`,
      dashboard,
      '',
    ].join('\n');
  return { dir, yaml };
}

const lines: string[] = [];
const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });

t.test('agent with dashboard: live, history, closed on stop; off by default', async (t) => {
  const { dir, yaml } = await setup(t);
  const off = await startAgent(await parseConfig(yaml(''), join(dir, 'c.yaml')), { log, env: {} });
  t.equal(off.dashboard, undefined, 'no dashboard unless configured');
  await off.stop();

  const config = await parseConfig(yaml('dashboard:\n  listen: 127.0.0.1:0'), join(dir, 'c.yaml'));
  let agent = await startAgent(config, { log, env: {} });
  t.teardown(() => agent.stop());
  const url = agent.dashboard?.url as string;
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'URL with the bound port');
  t.ok(
    lines.some((l) => l.includes(`dashboard on ${url}`)),
    'URL logged',
  );
  const live = await waitFor(
    async () => {
      const r = await getJson(`${url}api/live`);
      const m = r.body.meters?.[0];
      return m?.powerW !== null && m?.lastTs ? r.body : undefined;
    },
    { what: 'a reading on /api/live', timeout: 30_000, interval: 100 },
  );
  t.equal(live.thing, 'dash-box');
  t.equal(live.meters[0].id, 'main');
  t.equal(typeof live.meters[0].powerW, 'number', 'power from the real meter reading');
  t.equal(live.meters[0].phasesW.length, 3);
  t.ok(
    live.events.some((e: { event: string }) => e.event === 'agent_started'),
    'events shown',
  );
  const hist = await waitFor(
    async () => {
      const r = await getJson(`${url}api/history`);
      const p = r.body.meters?.main?.power ?? [];
      return p.length > 0 && p.at(-1)[1] !== null ? r.body : undefined;
    },
    { what: 'the open minute in /api/history', timeout: 30_000, interval: 100 },
  );
  t.equal(hist.meters.main.hours.length, 1, 'the open hour');
  const e1 = hist.meters.main.hours[0][1] as number;
  t.ok(e1 >= 0, `energy so far ${e1} kWh`);

  await agent.stop();
  await t.rejects(getJson(`${url}api/live`), { code: 'ECONNREFUSED' }, 'server closed with the agent');

  // Restart: the same history continues (the store was closed cleanly, the hour goes on).
  agent = await startAgent(config, { log, env: {} });
  const url2 = agent.dashboard?.url as string;
  const hist2 = await waitFor(
    async () => {
      const r = await getJson(`${url2}api/history`);
      return (r.body.meters?.main?.power?.length ?? 0) > 0 ? r.body : undefined;
    },
    { what: 'history after restart', timeout: 30_000, interval: 100 },
  );
  t.ok(hist2.meters.main.power.length >= 1, 'minutes from before the restart are still there');
  t.ok((hist2.meters.main.hours.at(-1)[1] as number) >= e1, 'the hour goes on from where it was');
});

t.test('agent on a network address warns; `meterlink dashboard` finds the agent', async (t) => {
  const { dir, yaml } = await setup(t);
  const token = 'tok-0123456789abcdef';
  const text = yaml(`dashboard:\n  listen: 0.0.0.0:0\n  token: ${token}`);
  const config = await parseConfig(text, join(dir, 'c.yaml'));
  lines.length = 0;
  const agent = await startAgent(config, { log, env: {} });
  t.teardown(() => agent.stop());
  t.ok(
    lines.some(
      (l) =>
        /"level":40/.test(l) && l.includes('reachable from the network: every request needs dashboard.token'),
    ),
    'warning logged',
  );
  const url = agent.dashboard?.url as string;
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, '0.0.0.0 shown as its loopback address');
  t.equal((await getJson(`${url}api/live`)).status, 401, 'token needed');
  t.equal((await getJson(`${url}api/live?token=${token}`)).status, 200);

  // `meterlink dashboard` with the agent's config points to the agent.
  const port = new URL(url).port;
  const cfgFile = join(dir, 'config.yaml');
  await writeFile(cfgFile, text.replace('0.0.0.0:0', `127.0.0.1:${port}`));
  const r = await runCliCaptured(['dashboard', '--config', cfgFile]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `the agent serves the dashboard: http://127.0.0.1:${port}/?token=${token}\n`);
  const wrong = await runCliCaptured(['dashboard', '--config', cfgFile, '--token', 'nope-nope-nope-nope']);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /answers 401 \(wrong or missing token/);
});

t.test('`meterlink dashboard` serves the status file when the agent has no dashboard', async (t) => {
  const { dir, yaml } = await setup(t);
  const cfgFile = join(dir, 'config.yaml');
  await writeFile(cfgFile, yaml(''));
  const agent = await startAgent(await parseConfig(yaml(''), cfgFile), {
    log,
    env: {},
    statusIntervalMs: 200,
  });
  t.teardown(() => agent.stop());
  const bad = await runCliCaptured(['dashboard', '--config', cfgFile, '--listen', '0.0.0.0:8080']);
  t.equal(bad.code, 2, 'usage error');
  t.match(bad.stderr, /reachable from the network.*dashboard\.token/);

  const cmd = spawnMeterlink(['dashboard', '--config', cfgFile, '--listen', '127.0.0.1:0']);
  t.teardown(() => cmd.kill('SIGKILL'));
  const url = await waitFor(() => /^dashboard on (http:\S+) \(live from /m.exec(cmd.output())?.[1], {
    what: 'the command to print its URL',
    timeout: 60_000,
    interval: 100,
  });
  const live = await waitFor(
    async () => {
      const r = await getJson(`${url}api/live`);
      return r.body.meters?.[0]?.lastTs ? r.body : undefined;
    },
    { what: 'live values from the status file', timeout: 30_000, interval: 100 },
  );
  t.equal(live.thing, 'dash-box', 'from the status file');
  const hist = await getJson(`${url}api/history`);
  t.equal(hist.body.available, false);
  t.match(
    hist.body.note,
    /add `dashboard: \{ listen: 127\.0\.0\.1:8080 \}` to the config/,
    'says how to get history',
  );
  cmd.kill('SIGINT');
  await waitFor(() => cmd.child.exitCode !== null, { what: 'the command to stop', timeout: 30_000 });
  t.equal(cmd.child.exitCode, 0, 'Ctrl-C stops it cleanly');
});

t.test('meterlink dashboard --help has an example', async (t) => {
  const r = await runCliCaptured(['dashboard', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Examples:\n {2}meterlink dashboard\n/);
});
