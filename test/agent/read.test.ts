/**
 * `meterlink read` end to end: config file → agent/meters.ts → real drivers → the simulators over kernel pty
 * pairs (Modbus RTU, DSMR P1) and TCP (Modbus TCP), values compared with what the simulators served.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startModbusSimulator, startDsmrEmitter } from '../../drivers/index.js';
import { startPtyPair } from '../harness/pty.js';
import { tempDir } from '../harness/tmp.js';
import { runCliCaptured } from '../harness/cli.js';

interface JsonReading {
  meter: string;
  ts: number;
  values: Record<string, number>;
  flags: string[];
  missing?: string[];
  error?: { code: string; message: string };
}

const fixed = Date.UTC(2024, 0, 15, 8);

t.test('read polls every meter once: Modbus RTU over a pty, Modbus TCP, DSMR P1 over a pty', async (t) => {
  const dir = await tempDir(t);
  const bus = await startPtyPair(t);
  const p1 = await startPtyPair(t);
  const rtu = await startModbusSimulator({
    transport: { kind: 'rtu', path: bus.a, baud: 9600 },
    units: [
      { unit: 1, profile: 'eastron-sdm630' },
      { unit: 2, profile: 'eastron-sdm120' },
    ],
    now: () => fixed,
  });
  t.teardown(() => rtu.stop());
  const tcp = await startModbusSimulator({
    transport: { kind: 'tcp', port: 0 },
    units: [{ unit: 1, profile: 'carlo-gavazzi-em340' }],
    now: () => fixed,
  });
  t.teardown(() => tcp.stop());
  const dsmr = await startDsmrEmitter({ path: p1.a, flavour: '5', intervalMs: 100, stepMs: 1000 });
  t.teardown(() => dsmr.stop());

  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `thing: box-1
meters:
  - { id: main, driver: modbus-rtu, port: ${bus.b}, unit: 1, profile: eastron-sdm630 }
  - { id: flat, driver: modbus-rtu, port: ${bus.b}, unit: 2, profile: eastron-sdm120 }
  - { id: pv, driver: modbus-tcp, host: 127.0.0.1, port: ${tcp.port}, profile: carlo-gavazzi-em340 }
  - { id: grid, driver: dsmr, port: ${p1.b}, version: 5 }
`,
  );
  const r = await runCliCaptured(['read', '--config', config, '--json']);
  t.equal(r.code, 0, r.stderr);
  const out = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as JsonReading);
  t.same(
    out.map((o) => o.meter),
    ['main', 'flat', 'pv', 'grid'],
  );
  const served = [rtu.unit(1).expected(), rtu.unit(2).expected(), tcp.unit(1).expected()];
  for (const [i, exp] of served.entries()) {
    const o = out[i] as JsonReading;
    t.same(o.flags, [], `${o.meter} clean read`);
    t.ok(Object.keys(o.values).length >= 8, `${o.meter} has its channels`);
    for (const [ch, v] of Object.entries(o.values)) t.equal(v, exp[ch], `${o.meter} ${ch}`);
  }
  const grid = out[3] as JsonReading;
  t.same(grid.flags, []);
  t.type(grid.values.energy_import_t1_kwh, 'number');
  t.type(grid.values.power_w, 'number');
  t.ok(Math.abs(grid.ts - Date.now()) < 60_000);

  // Text output, one meter: channels with their units.
  const text = await runCliCaptured(['read', '--config', config, '--meter', 'main']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, `main (modbus-rtu ${bus.b} unit 1, eastron-sdm630) at `);
  t.match(text.stdout, /\n {2}voltage_l1_v +[0-9.]+ V\n/);
  t.match(text.stdout, /\n {2}energy_import_kwh +[0-9.]+ kWh\n/);
  t.notMatch(text.stdout, 'flat');
});

t.test('a meter that does not answer is reported, the others still read; exit 1', async (t) => {
  const dir = await tempDir(t);
  const bus = await startPtyPair(t);
  const rtu = await startModbusSimulator({
    transport: { kind: 'rtu', path: bus.a, baud: 9600 },
    units: [{ unit: 1, profile: 'eastron-sdm630' }],
    now: () => fixed,
  });
  t.teardown(() => rtu.stop());
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `thing: box-1
meters:
  - { id: main, driver: modbus-rtu, port: ${bus.b}, unit: 1, profile: eastron-sdm630 }
  - { id: ghost, driver: modbus-rtu, port: ${bus.b}, unit: 9, profile: eastron-sdm630, timeout: 200ms, retries: 0 }
`,
  );
  const r = await runCliCaptured(['read', '--config', config]);
  t.equal(r.code, 1);
  t.match(r.stdout, /main \(modbus-rtu .* unit 1, eastron-sdm630\) at /);
  t.match(r.stdout, /\n {2}current_l1_a +[0-9.]+ A\n/);
  t.match(r.stdout, /ghost \(.*unit 9.*\n {2}no reading: TIMEOUT: /);
  t.match(r.stderr, '1 of 2 meters could not be read');
  const j = await runCliCaptured(['read', '--config', config, '--json', '--meter', 'ghost']);
  t.equal(j.code, 1);
  t.match(JSON.parse(j.stdout), { meter: 'ghost', values: {}, error: { code: 'TIMEOUT' } });
});

t.test('read needs a good config (exit 78) and a known meter id (exit 2)', async (t) => {
  const dir = await tempDir(t);
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    'thing: box-1\nmeters:\n  - { id: main, driver: modbus-rtu, port: /dev/null, profile: eastron-sdm630, baud: 96000 }\n',
  );
  const bad = await runCliCaptured(['read', '--config', config]);
  t.equal(bad.code, 78);
  t.match(bad.stderr, `${config}:3:`);
  t.match(bad.stderr, 'did you mean 9600?');
  t.match(bad.stderr, `meterlink config check ${config}`);
  await writeFile(
    config,
    'thing: box-1\nmeters:\n  - { id: main, driver: modbus-rtu, port: /dev/null, profile: eastron-sdm630 }\n',
  );
  const unknown = await runCliCaptured(['read', '--config', config, '--meter', 'pv']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, 'no meter "pv"');
  t.match(unknown.stderr, 'its meters are main');
  const help = await runCliCaptured(['read', '--help']);
  t.match(help.stdout, '/etc/meterlink/config.yaml');
});
