/** `meterlink scan` and `meterlink simulate modbus-*` against the simulator on a pty. */
import t from 'tap';
import { scanModbusBus } from '../../drivers/modbus/scan.js';
import { startModbusSimulator } from '../../drivers/simulator/modbus-simulator.js';
import { createModbusMeter } from '../../drivers/modbus/meter.js';
// The CLI harness first: it loads the command table that agent/commands/scan.ts is part of.
import { runCliCaptured, spawnMeterlink } from '../harness/cli.js';
import { parseUnitList } from '../../agent/commands/scan.js';
import { startPtyPair } from '../harness/pty.js';
import { waitFor } from '../harness/wait.js';

t.test('scan finds two meters on one bus and names their profiles', async (t) => {
  const pty = await startPtyPair(t);
  const sim = await startModbusSimulator({
    transport: { kind: 'rtu', path: pty.a },
    units: [
      { unit: 2, profile: 'eastron-sdm630' },
      { unit: 5, profile: 'abb-b23' },
    ],
  });
  t.teardown(() => sim.stop());
  const progress: string[] = [];
  const result = await scanModbusBus({
    port: pty.b,
    bauds: [9600],
    units: [1, 2, 3, 4, 5, 6],
    // Absent units cost the whole timeout; present ones answer at once. So the timeout is set far above what
    // a present simulator needs even on a busy machine (it shares the CPU with the scan): 80 ms was not.
    timeout: 400,
    onProgress: (l) => progress.push(l),
  });
  t.match(progress, [/9600 baud: probed 6 unit ids, found unit 2, 5/]);
  t.match(result.found, [
    { baud: 9600, unit: 2, profiles: ['eastron-sdm630'] },
    { baud: 9600, unit: 5, profiles: ['abb-b23'] },
  ]);
  t.ok(result.found[0]!.values.voltage_l1_v! > 200);

  const cli = await runCliCaptured([
    'scan',
    '--port',
    pty.b,
    '--baud',
    '9600,19200',
    '--units',
    '1-3,5',
    '--timeout',
    '400',
  ]);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /9600 baud: probed 4 unit ids, found unit 2, 5/);
  t.match(cli.stdout, /19200 baud: probed 4 unit ids, no answer/, 'units found once are not probed again');
  t.match(cli.stdout, /unit\s+baud\s+likely profile/);
  t.match(cli.stdout, /\n2\s+9600\s+eastron-sdm630/);
  t.match(cli.stdout, /\n5\s+9600\s+abb-b23/);
  const json = await runCliCaptured([
    'scan',
    '--port',
    pty.b,
    '--baud',
    '9600',
    '--units',
    '5',
    '--timeout',
    '2000', // present: costs nothing unless the machine is very busy
    '--json',
  ]);
  t.equal(json.code, 0);
  t.match(JSON.parse(json.stdout), [{ unit: 5, profiles: ['abb-b23'] }]);
  t.match(json.stderr, /9600 baud/);
});

t.test('scan: a single-phase Eastron is named with its look-alike, an empty bus says so', async (t) => {
  const pty = await startPtyPair(t);
  const sim = await startModbusSimulator({
    transport: { kind: 'rtu', path: pty.a },
    units: [{ unit: 1, profile: 'eastron-sdm120' }],
  });
  t.teardown(() => sim.stop());
  const r = await scanModbusBus({ port: pty.b, bauds: [9600], units: [1], timeout: 2000 });
  t.same([...r.found[0]!.profiles].sort(), ['eastron-sdm120', 'eastron-sdm230']);
  const empty = await runCliCaptured([
    'scan',
    '--port',
    pty.b,
    '--baud',
    '9600',
    '--units',
    '3',
    '--timeout',
    '50',
  ]);
  t.match(empty.stdout, /no Modbus meter answered/);
  const gone = await runCliCaptured([
    'scan',
    '--port',
    '/nonexistent/ttyX',
    '--baud',
    '9600',
    '--units',
    '1',
  ]);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /scan of \/nonexistent\/ttyX failed: cannot open/);
});

t.test('scan argument errors are usage errors', async (t) => {
  t.same(parseUnitList('1-3,7,2'), [1, 2, 3, 7]);
  for (const args of [
    ['--units', '0-5'],
    ['--units', 'x'],
    ['--baud', 'fast'],
    ['--parity', 'mark'],
    ['--timeout', '1'],
  ]) {
    const r = await runCliCaptured(['scan', '--port', '/dev/null', ...args]);
    t.equal(r.code, 2, args.join(' '));
  }
});

t.test('meterlink simulate modbus-rtu serves the meters a driver then reads', async (t) => {
  const pty = await startPtyPair(t);
  const child = spawnMeterlink([
    'simulate',
    'modbus-rtu',
    '--port',
    pty.a,
    '--meter',
    '3:finder-7m38',
    '--delay',
    '1',
  ]);
  t.teardown(() => child.kill('SIGTERM'));
  await waitFor(() => /simulating Modbus meters 3:finder-7m38/.test(child.output()), {
    timeout: 30_000,
    what: 'the simulator',
  });
  const meter = createModbusMeter({
    id: 'f',
    transport: { kind: 'rtu', port: pty.b },
    unit: 3,
    profile: 'finder-7m38',
    timeout: 2000,
  });
  t.teardown(() => meter.close());
  const r = await meter.read();
  t.equal(r.flags, 0);
  t.equal(Object.keys(r.values).length, 24);
  const bad = await runCliCaptured(['simulate', 'modbus-rtu', '--port', pty.a, '--meter', '1:acme-x']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown profile/);
  const bad2 = await runCliCaptured(['simulate', 'modbus-tcp', '--meter', 'one', '--listen', '0']);
  t.equal(bad2.code, 2);
  const bad3 = await runCliCaptured(['simulate', 'modbus-tcp', '--drop', '2']);
  t.equal(bad3.code, 2);
});
