import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { runCliCaptured } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';
import { parseConfig, type MeterConfig } from '../../agent/config/index.js';
import { exampleDrivers } from '../../agent/config/examples.js';

t.test('config example without a driver lists every meter interface, a line each', async (t) => {
  const r = await runCliCaptured(['config', 'example']);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.equal(lines.length, 1 + 5, 'a header and one line per driver');
  for (const driver of ['modbus-rtu', 'modbus-tcp', 'dsmr', 'sml', 'iec62056-21'])
    t.ok(
      lines.some((l) => l.trimStart().startsWith(`${driver} `)),
      `${driver} is listed`,
    );
});

t.test('each driver example is a complete config that config check accepts as it stands', async (t) => {
  t.same([...exampleDrivers].sort(), ['dsmr', 'iec62056-21', 'modbus-rtu', 'modbus-tcp', 'sml']);
  const dir = await tempDir(t);
  for (const driver of exampleDrivers) {
    const r = await runCliCaptured(['config', 'example', driver]);
    t.equal(r.code, 0, `${driver}: ${r.stderr}`);
    const file = `${dir}/${driver}.yaml`;
    await writeFile(file, r.stdout);
    const check = await runCliCaptured(['config', 'check', file]);
    t.equal(check.code, 0, `${driver}: config check: ${check.stdout}${check.stderr}`);
    const config = await parseConfig(r.stdout, file);
    t.ok(config.meters.length >= 1, `${driver}: has meters`);
    t.ok(
      config.meters.every((m: MeterConfig) => m.driver === driver),
      `${driver}: every meter uses the driver`,
    );
    t.equal(config.cloud, undefined, `${driver}: cloud is left for meterlink provision`);
  }
});

t.test('the examples carry what an installer must know for the interface', async (t) => {
  const text = async (d: string) => (await runCliCaptured(['config', 'example', d])).stdout;
  t.match(await text('modbus-rtu'), /Built-in profiles: .*eastron-sdm630/);
  t.match(await text('dsmr'), /# key: [0-9A-F]{32}/, 'encrypted P1 key shown, commented out');
  t.match(await text('sml'), /PIN/);
  t.match(await text('iec62056-21'), /mode: c/);
  // The commented-out lines are valid too: uncommenting the DSMR key gives an accepted encrypted meter.
  const dsmr = (await text('dsmr')).replace('# key:', 'key:');
  const config = await parseConfig(dsmr, 'dsmr-key.yaml');
  const grid = config.meters[0];
  t.equal(grid?.driver === 'dsmr' ? grid.key : undefined, '000102030405060708090A0B0C0D0E0F');
});

t.test('config example with an unknown driver is a usage error naming the choices', async (t) => {
  const r = await runCliCaptured(['config', 'example', 'mbus']);
  t.equal(r.code, 2);
  t.match(
    r.stderr,
    "config example: no driver 'mbus'; choose one of modbus-rtu, modbus-tcp, dsmr, sml, iec62056-21",
  );
  t.equal(r.stdout, '');
});
