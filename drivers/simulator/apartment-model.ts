/**
 * A deterministic apartment: what a meter at the entrance of a flat would measure. Appliances switch on and
 * off (steps), a base load hums with noise, an optional balcony PV panel pushes power back at midday, the
 * grid voltage wanders around 230 V and sags under load, the frequency around 50 Hz, and the energy counters
 * integrate exactly the power the model reports, so counters and power always agree.
 *
 * Same seed, same start, same sequence of `advanceTo` times → same values. Used by the Modbus simulator and
 * reusable for any generator of realistic samples (the drain benchmark makes a week of them).
 */
import { seededRandom } from './random.js';

export { seededRandom };

export interface ApartmentState {
  /** Model time, ms since the epoch. */
  readonly t: number;
  /** Per phase (index 0 = L1). Single-phase models leave L2/L3 at 0 V / 0 A / 0 W. */
  readonly voltage: readonly [number, number, number];
  readonly current: readonly [number, number, number];
  /** Active power per phase, W, import positive. */
  readonly power: readonly [number, number, number];
  readonly powerFactor: readonly [number, number, number];
  readonly frequency: number;
  /** Cumulative counters. */
  readonly importKwh: number;
  readonly exportKwh: number;
  readonly reactiveImportKvarh: number;
  readonly reactiveExportKvarh: number;
}

export interface ApartmentModel {
  readonly phases: 1 | 3;
  /** Moves model time forward (never back), integrating the energy counters in steps of ≤ 1 s. */
  advanceTo(t: number): void;
  state(): ApartmentState;
  /** The state as canonical channel values (cloud-contract/channels.ts names and units). */
  channels(): Record<string, number>;
}

export interface ApartmentModelOptions {
  readonly phases?: 1 | 3;
  /** Model start time, ms since the epoch (default 2024-06-01T00:00:00Z). */
  readonly start?: number;
  /** Peak output of a balcony PV panel on L1, W (default 600; 0 for none). */
  readonly pvPeakW?: number;
}

interface Appliance {
  readonly watts: number;
  readonly phase: 0 | 1 | 2;
  /** Switch-ons per hour while off. */
  readonly perHour: number;
  /** Mean on-time, s. */
  readonly meanOnS: number;
  readonly pf: number;
  on: boolean;
}

const DAY = 86_400_000;

export function createApartmentModel(seed = 1, opts: ApartmentModelOptions = {}): ApartmentModel {
  const phases = opts.phases ?? 3;
  const rnd = seededRandom(seed);
  const pvPeak = opts.pvPeakW ?? 600;
  let t = opts.start ?? Date.UTC(2024, 5, 1);
  const ph = (p: 0 | 1 | 2): 0 | 1 | 2 => (phases === 1 ? 0 : p);
  const appliances: Appliance[] = [
    { watts: 120, phase: ph(0), perHour: 3, meanOnS: 600, pf: 0.8, on: false }, // fridge compressor
    { watts: 2000, phase: ph(1), perHour: 0.6, meanOnS: 150, pf: 1, on: false }, // kettle
    { watts: 2200, phase: ph(2), perHour: 0.2, meanOnS: 2400, pf: 0.98, on: false }, // oven
    { watts: 1900, phase: ph(1), perHour: 0.15, meanOnS: 3000, pf: 0.9, on: false }, // washing machine
    { watts: 900, phase: ph(2), perHour: 0.3, meanOnS: 900, pf: 0.95, on: false }, // dishwasher heater
    { watts: 250, phase: ph(0), perHour: 0.5, meanOnS: 7200, pf: 0.92, on: false }, // TV + computer
  ];
  const base = [70 + rnd() * 60, phases === 3 ? 40 + rnd() * 40 : 0, phases === 3 ? 40 + rnd() * 40 : 0];
  let importKwh = 1000 + rnd() * 20_000;
  let exportKwh = pvPeak > 0 ? rnd() * 2000 : 0;
  let rImport = importKwh * 0.2;
  let rExport = 10 + rnd() * 50;
  let vOffset = [0, 0, 0].map(() => (rnd() - 0.5) * 6);
  let fOffset = 0;
  let noise = [0, 0, 0];

  const phasePower = (): [number, number, number] => {
    const p: [number, number, number] = [base[0]!, base[1]!, base[2]!];
    for (const a of appliances) if (a.on) p[a.phase] += a.watts;
    for (let i = 0; i < 3; i++) p[i] = p[i]! * (1 + noise[i]!);
    if (pvPeak > 0) {
      const hour = ((t % DAY) / DAY) * 24;
      p[0] -= pvPeak * Math.max(0, Math.sin((Math.PI * (hour - 6)) / 12));
    }
    if (phases === 1) return [p[0], 0, 0];
    return p;
  };
  const phasePf = (p: readonly number[]): [number, number, number] => {
    const pf = p.map((w) => (w === 0 ? 1 : Math.min(0.99, 0.82 + Math.min(Math.abs(w), 3000) / 20_000)));
    return [pf[0]!, pf[1]!, pf[2]!];
  };

  const step = (dtS: number) => {
    for (const a of appliances) {
      if (a.on) a.on = rnd() >= dtS / a.meanOnS;
      else a.on = rnd() < (a.perHour * dtS) / 3600;
    }
    noise = noise.map((n) => Math.max(-0.03, Math.min(0.03, n + (rnd() - 0.5) * 0.01)));
    vOffset = vOffset.map((v) => Math.max(-8, Math.min(8, v + (rnd() - 0.5) * 0.4)));
    fOffset = Math.max(-0.08, Math.min(0.08, fOffset + (rnd() - 0.5) * 0.01));
    const p = phasePower();
    const total = p[0] + p[1] + p[2];
    const pf = phasePf(p);
    const q = p.reduce((s, w, i) => s + Math.abs(w) * Math.tan(Math.acos(pf[i]!)), 0);
    const h = dtS / 3600;
    if (total >= 0) importKwh += (total * h) / 1000;
    else exportKwh += (-total * h) / 1000;
    if (total >= 0) rImport += (q * h) / 1000;
    else rExport += (q * h) / 1000;
  };

  const state = (): ApartmentState => {
    const power = phasePower();
    const pf = phasePf(power);
    const voltage = [0, 1, 2].map((i) =>
      phases === 1 && i > 0 ? 0 : 230 + vOffset[i]! - Math.abs(power[i]!) / 1000,
    ) as [number, number, number];
    const current = [0, 1, 2].map((i) =>
      voltage[i] === 0 ? 0 : Math.abs(power[i]!) / (voltage[i]! * pf[i]!),
    ) as [number, number, number];
    return {
      t,
      voltage,
      current,
      power,
      powerFactor: pf,
      frequency: 50 + fOffset,
      importKwh,
      exportKwh,
      reactiveImportKvarh: rImport,
      reactiveExportKvarh: rExport,
    };
  };

  return {
    phases,
    advanceTo(target) {
      while (t < target) {
        const dt = Math.min(1000, target - t);
        t += dt;
        step(dt / 1000);
      }
    },
    state,
    channels() {
      const s = state();
      const [v1, v2, v3] = s.voltage;
      const [i1, i2, i3] = s.current;
      const total = s.power[0] + s.power[1] + s.power[2];
      const reactive = s.power.reduce(
        (sum, w, i) => sum + Math.abs(w) * Math.tan(Math.acos(s.powerFactor[i]!)),
        0,
      );
      const apparent = s.power.reduce((sum, w, i) => sum + Math.abs(w) / s.powerFactor[i]!, 0);
      const ll = (a: number, b: number) => Math.sqrt(a * a + b * b + a * b);
      // Neutral current of three currents 120° apart (in phase with their voltages, close enough here).
      const inRe = i1 - 0.5 * i2 - 0.5 * i3;
      const inIm = (Math.sqrt(3) / 2) * (i2 - i3);
      const out: Record<string, number> = {
        voltage_l1_v: v1,
        current_l1_a: i1,
        power_l1_w: s.power[0],
        power_factor_l1: s.powerFactor[0],
        power_w: total,
        power_import_w: Math.max(0, total),
        power_export_w: Math.max(0, -total),
        power_factor: apparent === 0 ? 1 : Math.abs(total) / apparent,
        reactive_power_var: reactive,
        apparent_power_va: apparent,
        frequency_hz: s.frequency,
        energy_import_kwh: s.importKwh,
        energy_export_kwh: s.exportKwh,
        energy_total_kwh: s.importKwh + s.exportKwh,
        energy_reactive_import_kvarh: s.reactiveImportKvarh,
        energy_reactive_export_kvarh: s.reactiveExportKvarh,
      };
      if (phases === 3) {
        Object.assign(out, {
          voltage_l2_v: v2,
          voltage_l3_v: v3,
          current_l2_a: i2,
          current_l3_a: i3,
          power_l2_w: s.power[1],
          power_l3_w: s.power[2],
          power_factor_l2: s.powerFactor[1],
          power_factor_l3: s.powerFactor[2],
          voltage_l1_l2_v: ll(v1, v2),
          voltage_l2_l3_v: ll(v2, v3),
          voltage_l3_l1_v: ll(v3, v1),
          current_n_a: Math.hypot(inRe, inIm),
        });
      }
      return out;
    },
  };
}
