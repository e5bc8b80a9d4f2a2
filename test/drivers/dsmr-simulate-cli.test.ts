import t from 'tap';
import { createDsmrMeter } from '../../drivers/dsmr/index.js';
import { runCliCaptured } from '../harness/cli.js';
import { startPtyPair } from '../harness/pty.js';

t.test('meterlink simulate dsmr writes telegrams a reader accepts, then stops after --count', async (t) => {
  const pty = await startPtyPair(t);
  const meter = createDsmrMeter({ id: 'grid', port: pty.b, version: 'e-mucs', readTimeoutMs: 10_000 });
  t.teardown(() => meter.close());
  const first = meter.read(); // opens the port before the simulator starts writing
  const cli = runCliCaptured([
    'simulate',
    'dsmr',
    '--port',
    pty.a,
    '--flavour',
    'e-mucs',
    '--interval',
    '30ms',
    '--step',
    '1s',
    '--count',
    '6',
    '--corrupt-crc-every',
    '2',
    '--garbage-every',
    '3',
    '--serial',
    'CLI-METER-1',
  ]);
  const r = await first;
  t.equal(r.serial, 'CLI-METER-1');
  t.ok(r.values.power_avg_demand_w, 'e-MUCS demand register present');
  const res = await cli;
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /simulating a DSMR e-mucs P1 port/);
  t.match(res.stdout, /telegram 2 corrupt-crc/);
  t.match(res.stdout, /telegram 3 good \+40 garbage bytes/);
  t.match(res.stdout, /sent 6 telegrams \(3 good\)/);
});

t.test('usage errors name the option and the fix', async (t) => {
  const bad = async (args: string[], re: RegExp) => {
    const r = await runCliCaptured(['simulate', 'dsmr', '--port', '/tmp/x', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, re);
  };
  await bad(['--flavour', '6'], /--flavour 6: expected one of 2\.2, 4, 5, e-mucs/);
  await bad(['--interval', 'soon'], /--interval soon: expected a duration/);
  await bad(['--interval', '0ms'], /at least 1ms/);
  await bad(['--count', '-1'], /--count -1: expected a whole number/);
  await bad(['--seed', 'x'], /--seed x/);
  const missing = await runCliCaptured(['simulate', 'dsmr', '--port', '/nonexistent/ttyP1', '--quiet']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot open \/nonexistent\/ttyP1/);
  const help = await runCliCaptured(['simulate', 'dsmr', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Examples:[\s\S]*--flavour e-mucs/);
});
