import t from 'tap';
import { repoRoot, runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { summarize } from '../../agent/commands/config.js';
import { loadConfig } from '../../agent/config/index.js';

const fixtures = `${repoRoot}test/agent/fixtures/config`;

t.test('config check: a good file prints OK and a summary, exit 0', async (t) => {
  const file = `${fixtures}/good/full.yaml`;
  const r = await runCliCaptured(['config', 'check', file]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `OK ${file}\n`);
  t.match(r.stdout, 'thing apt-12-meterbox, 3 meters:');
  t.match(r.stdout, 'main: modbus-rtu /dev/ttyUSB0 9600 8N1 unit 1, eastron-sdm630, every 1s');
  t.match(r.stdout, 'pv: modbus-tcp 192.168.1.50:502 unit 1, carlo-gavazzi-em340, every 5s');
  t.match(r.stdout, 'grid: dsmr /dev/ttyUSB1 115200 baud, version auto');
  t.match(r.stdout, 'cloud a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883');
  t.match(r.stdout, 'buffer /var/lib/meterlink/buffer, up to 512MiB (drop-oldest)');
});

t.test('the summary names every kind of meter and the cloud options', async (t) => {
  const text = summarize(await loadConfig(`${fixtures}/good/everything.yaml`));
  t.match(text, 'b: modbus-rtu /dev/ttyUSB0 19200 8E1 unit 3, inline profile, every 1h30m');
  t.match(text, 'gw: modbus rtu-over-tcp gateway.local:4196 unit 7, abb-b23, every 1s');
  t.match(text, 'old-p1: dsmr /dev/ttyAMA0 9600 baud, version 2.2, every 10s');
  t.match(text, '(ALPN x-amzn-mqtt-ca), basic ingest rule meterlink_batches');
  const minimal = summarize(await loadConfig(`${fixtures}/good/minimal.yaml`));
  t.match(minimal, 'thing box-1, 1 meter:');
  t.match(minimal, 'cloud: not configured yet (run meterlink provision)');
});

t.test(
  'config check: a bad file prints every problem as file:line:col field: message (fix), exit 78',
  async (t) => {
    const file = `${fixtures}/bad/many.yaml`;
    const r = await runCliCaptured(['config', 'check', file]);
    t.equal(r.code, 78);
    const lines = r.stdout.trimEnd().split('\n');
    t.equal(lines.length, 5);
    t.equal(lines[0], `${file}:2:1 meterz: unknown key (did you mean meters?)`);
    t.equal(
      lines[1],
      `${file}:7:11 meters[0].baud: must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200; got 96000 (did you mean 9600?)`,
    );
    t.match(r.stderr, `${file}: 5 problems; fix them and run this again`);
  },
);

t.test('config check --json: one object, ok or the problems', async (t) => {
  const good = await runCliCaptured(['config', 'check', '--json', `${fixtures}/good/minimal.yaml`]);
  t.equal(good.code, 0);
  const g = JSON.parse(good.stdout) as { ok: boolean; config: { meters: { interval: number }[] } };
  t.equal(g.ok, true);
  t.equal(g.config.meters[0]?.interval, 1000);
  const bad = await runCliCaptured(['config', 'check', '--json', `${fixtures}/bad/baud.yaml`]);
  t.equal(bad.code, 78);
  const b = JSON.parse(bad.stdout) as {
    ok: boolean;
    problems: { code: string; line: number; field: string }[];
  };
  t.equal(b.ok, false);
  t.match(b.problems, [{ code: 'NOT_ALLOWED', line: 10, field: 'meters[1].baud' }]);
  t.match(bad.stderr, '1 problem; fix it');
});

t.test('config check --cloud applies the daemon checks; a missing file is a bad config too', async (t) => {
  const r = await runCliCaptured(['config', 'check', '--cloud', `${fixtures}/good/minimal.yaml`]);
  t.equal(r.code, 78);
  t.match(r.stdout, 'cloud: is required to run the agent');
  const missing = await runCliCaptured(['config', 'check', `${fixtures}/nope.yaml`]);
  t.equal(missing.code, 78);
  t.match(missing.stdout, 'nope.yaml: config file not found');
});

t.test('config check: usage and help', async (t) => {
  const none = await runCliCaptured(['config', 'check']);
  t.equal(none.code, 2);
  t.match(none.stderr, /missing required argument 'file'/);
  const help = await runCliCaptured(['config', 'check', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, 'Examples:');
  t.match(help.stdout, 'file:line:col field: message (fix)');
});

t.test('the executable exits 78 on a bad config (the status systemd does not restart on)', async (t) => {
  const p = spawnMeterlink(['config', 'check', `${fixtures}/bad/same-unit.yaml`]);
  await p.exited();
  t.equal(p.child.exitCode, 78, p.output());
  t.match(p.output(), 'meters[1].unit: unit 1 on /dev/ttyUSB0 is already meters[0] (flat-1)');
});
