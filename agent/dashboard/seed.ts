/**
 * The demo's past: a few days of the simulated apartment (drivers' apartment model: appliances switching,
 * base load, a balcony PV panel at midday) written into a fresh history through the same aggregation the
 * agent uses, so `meterlink demo` opens on a believable day instead of an empty chart. The counters are
 * shifted so that they end just below where the live simulated meter starts: the live readings continue the
 * seeded history without a reset.
 */
import { createApartmentModel } from '../../drivers/index.js';
import { openHistory } from './history.js';

export interface SeedOptions {
  /** History directory (must not be open elsewhere). */
  path: string;
  meter: string;
  /** Seed of the live simulator's model (its counters are where the seeded ones must end). */
  liveSeed: number;
  phases: 1 | 3;
  /** End of the seeded past (real time, ms) — the live readings start after it. */
  end: number;
  /** How far back (default 7 days). */
  days?: number;
  /** Simulated time minus real time (the demo's `--sim-time`), so the PV peak falls at the simulated noon. */
  simShiftMs?: number;
  /** Reading period (default 10 s). */
  stepMs?: number;
}

export async function seedDemoHistory(opts: SeedOptions): Promise<{ readings: number }> {
  const step = opts.stepMs ?? 10_000;
  const shift = opts.simShiftMs ?? 0;
  const start = opts.end - (opts.days ?? 7) * 86_400_000;
  const live = createApartmentModel(opts.liveSeed, { phases: opts.phases, start: opts.end + shift }).state();
  const model = createApartmentModel(opts.liveSeed + 1000, { phases: opts.phases, start: start + shift });
  const n = Math.floor((opts.end - start) / step);
  const cols = 6;
  const rows = new Float64Array(n * cols);
  for (let i = 0; i < n; i++) {
    model.advanceTo(start + shift + i * step);
    const s = model.state();
    rows.set(
      [s.power[0] + s.power[1] + s.power[2], s.power[0], s.power[1], s.power[2], s.importKwh, s.exportKwh],
      i * cols,
    );
  }
  // End 0.01 kWh below the live counters (float32 registers round by ~0.002 kWh at 16,000 kWh).
  const last = model.state();
  const dImport = live.importKwh - 0.01 - last.importKwh;
  const dExport = live.exportKwh - 0.01 - last.exportKwh;
  const history = await openHistory(opts.path);
  for (let i = 0; i < n; i++) {
    const o = i * cols;
    const values: Record<string, number> = {
      power_w: rows[o] as number,
      power_l1_w: rows[o + 1] as number,
      energy_import_kwh: (rows[o + 4] as number) + dImport,
      energy_export_kwh: (rows[o + 5] as number) + dExport,
    };
    if (opts.phases === 3) Object.assign(values, { power_l2_w: rows[o + 2], power_l3_w: rows[o + 3] });
    history.record(opts.meter, start + i * step, values);
    if (i % 2000 === 0) await history.flushed();
  }
  await history.close();
  return { readings: n };
}
