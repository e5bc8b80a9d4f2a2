/** The apartment value model: deterministic, realistic, and counters consistent with power. */
import t from 'tap';
import { createApartmentModel } from '../../drivers/simulator/apartment-model.js';

t.test('same seed, same values; counters integrate the power; values stay realistic', async (t) => {
  const start = Date.UTC(2024, 5, 1);
  const a = createApartmentModel(11, { start });
  const b = createApartmentModel(11, { start });
  const hour = 3_600_000;
  let integratedImport = 0;
  let integratedExport = 0;
  const e0 = a.state();
  const powers = new Set<number>();
  for (let s = 1; s <= 6 * 3600; s++) {
    a.advanceTo(start + s * 1000);
    const st = a.state();
    const p = st.power[0] + st.power[1] + st.power[2];
    if (p >= 0) integratedImport += p / 3.6e6;
    else integratedExport += -p / 3.6e6;
    powers.add(Math.round(p / 100));
    if (st.voltage.some((v) => v < 215 || v > 245)) t.fail('voltage near 230 V');
    if (Math.abs(st.frequency - 50) > 0.1) t.fail('frequency near 50 Hz');
  }
  b.advanceTo(start + 6 * hour);
  t.same(b.state(), a.state(), 'deterministic for a seed');
  const e1 = a.state();
  t.ok(Math.abs(e1.importKwh - e0.importKwh - integratedImport) < 1e-6, 'import counter = ∫ power');
  t.ok(Math.abs(e1.exportKwh - e0.exportKwh - integratedExport) < 1e-6, 'export counter = ∫ −power');
  t.ok(powers.size > 5, 'power steps as appliances switch');
  const ch = a.channels();
  t.ok(ch.voltage_l1_l2_v! > 390 && ch.voltage_l1_l2_v! < 420);
  t.equal(ch.energy_total_kwh, ch.energy_import_kwh! + ch.energy_export_kwh!);
  const single = createApartmentModel(3, { phases: 1, pvPeakW: 0, start });
  single.advanceTo(start + hour);
  t.equal(single.channels().voltage_l2_v, undefined, 'single phase has no L2');
  t.equal(single.state().exportKwh, 0, 'no PV, no export');
});
