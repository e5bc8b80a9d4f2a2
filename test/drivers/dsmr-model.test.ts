import t from 'tap';
import { lineSettings, parseTelegram } from '../../drivers/dsmr/index.js';
import { DsmrApartmentModel } from '../../drivers/simulator/dsmr-model.js';
import { dsmrFlavours, fixed, renderTelegram } from '../../drivers/simulator/dsmr-render.js';

t.test('energy registers rise exactly as the reported power integrates', async (t) => {
  const m = new DsmrApartmentModel({ seed: 7, startTime: Date.UTC(2024, 5, 12, 6, 0, 0) });
  const start = m.snapshot();
  let importWms = 0;
  let exportWms = 0;
  let sawExport = false;
  let sawKettle = false;
  let falls = 0;
  let both = 0;
  let gasOffBoundary = 0;
  for (let i = 0; i < 6 * 3600; i++) {
    const before = m.snapshot();
    importWms += before.totalImportW * 1000;
    exportWms += before.totalExportW * 1000;
    const s = m.step(1000);
    if (s.importWh[0] < before.importWh[0] || s.importWh[1] < before.importWh[1]) falls++;
    if (s.importW.some((w, p) => w > 0 && s.exportW[p]! > 0)) both++;
    if (s.gasL !== before.gasL && s.gasTime === before.gasTime) gasOffBoundary++;
    sawExport ||= s.totalExportW > 0;
    sawKettle ||= s.importW[0] > 1500;
  }
  t.equal(falls, 0, 'energy registers never fall');
  t.equal(both, 0, 'a phase imports or exports, never both');
  t.equal(gasOffBoundary, 0, 'gas changes only with a new capture time');
  const end = m.snapshot();
  const dImport = end.importWh[0] + end.importWh[1] - start.importWh[0] - start.importWh[1];
  const dExport = end.exportWh[0] + end.exportWh[1] - start.exportWh[0] - start.exportWh[1];
  t.equal(dImport, Math.floor(importWms / 3_600_000), 'Δ import Wh = ∫ import power');
  t.equal(dExport, Math.floor(exportWms / 3_600_000), 'Δ export Wh = ∫ export power');
  t.ok(sawExport, 'PV exported around noon');
  t.ok(sawKettle, 'appliance steps happen');
  t.ok(end.gasL > start.gasL, 'gas rose');
  t.equal(end.gasTime % 300_000, 0, 'gas captured on 5-minute boundaries');
  t.ok(end.maxDemandW >= end.avgDemandW, 'the monthly peak is at least the current demand');
  t.ok(
    end.voltageDv.every((v) => v > 2200 && v < 2400),
    'voltages around nominal',
  );
});

t.test('gas steps only at its capture interval; the same seed gives the same apartment', async (t) => {
  const a = new DsmrApartmentModel({
    seed: 3,
    startTime: Date.UTC(2024, 0, 1, 0, 0, 0),
    gasIntervalMs: 3_600_000,
  });
  const b = new DsmrApartmentModel({
    seed: 3,
    startTime: Date.UTC(2024, 0, 1, 0, 0, 0),
    gasIntervalMs: 3_600_000,
  });
  const times = new Set<number>();
  let differ = 0;
  for (let i = 0; i < 7200; i += 10) {
    const s = a.step(10_000);
    if (JSON.stringify(b.step(10_000)) !== JSON.stringify(s)) differ++;
    times.add(s.gasTime);
  }
  t.equal(differ, 0, 'same seed, same snapshots');
  t.same(
    [...times].map((x) => new Date(x).toISOString()),
    ['2024-01-01T00:00:00.000Z', '2024-01-01T01:00:00.000Z', '2024-01-01T02:00:00.000Z'],
  );
  t.equal(a.snapshot().tariff, 1, 'night: low tariff');
});

t.test('rendered telegrams of every flavour parse back without problems', async (t) => {
  const m = new DsmrApartmentModel({ seed: 11, startTime: Date.UTC(2024, 2, 5, 12, 0, 0) });
  for (let i = 0; i < 5; i++) m.step(60_000);
  for (const f of dsmrFlavours) {
    const r = parseTelegram(renderTelegram(f, m.snapshot(), { serial: 'X1' }), { requireCrc: f !== '2.2' });
    t.ok(r.ok, `${f} parses`);
    if (r.ok) {
      t.same(r.telegram.problems, []);
      t.equal(r.telegram.serial, 'X1');
    }
  }
  t.equal(fixed(1193, 2, 3), '01.193');
  t.equal(fixed(5, 3, 0), '005');
  t.equal(fixed(-15, 2, 1), '-01.5');
});

t.test('line settings per version', async (t) => {
  const e7 = { dataBits: 7, parity: 'even', stopBits: 1 };
  const n8 = { dataBits: 8, parity: 'none', stopBits: 1 };
  t.same(lineSettings({}), { baudRate: 115200, ...n8 });
  t.same(lineSettings({ version: '5' }), { baudRate: 115200, ...n8 });
  t.same(lineSettings({ version: '2.2' }), { baudRate: 9600, ...e7 });
  t.same(lineSettings({ version: '3', baud: 19200 }), { baudRate: 19200, ...e7 });
  t.same(
    lineSettings({ version: 'auto', baud: 9600 }),
    { baudRate: 9600, ...e7 },
    'auto at 9600 is DSMR 2.2/3',
  );
  t.same(lineSettings({ version: 'smarty', baud: 9600 }), { baudRate: 9600, ...n8 });
});
