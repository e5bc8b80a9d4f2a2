/**
 * The simulated apartment behind the DSMR emitter: three phases of household load with noise and appliance
 * steps, a small PV system on L3 that exports around noon, energy registers integrated exactly from the
 * power the telegram reports, and a gas meter stepping at its capture interval.
 *
 * Everything is kept in the integer units a meter prints (W, Wh, decivolt, centiampere, litre), so the
 * values a telegram carries are exactly the model's and tests can compare them without tolerance.
 */
import { seededRandom } from './random.js';

export { seededRandom };

export type Phase = 0 | 1 | 2;
type Triple = readonly [number, number, number];

/** One moment of the apartment, in a meter's integer units. */
export interface DsmrSnapshot {
  /** Model time, ms since the epoch, whole seconds (what 0-0:1.0.0 says). */
  readonly time: number;
  /** 1 = low (night/weekend), 2 = normal (DSMR NL numbering). */
  readonly tariff: 1 | 2;
  /** Energy registers in Wh: [tariff 1, tariff 2]. */
  readonly importWh: readonly [number, number];
  readonly exportWh: readonly [number, number];
  /** Per-phase active power in W, import and export (one of the two is 0 per phase). */
  readonly importW: Triple;
  readonly exportW: Triple;
  /** Total import/export power in W (the netted sum over phases, which the energy registers integrate). */
  readonly totalImportW: number;
  readonly totalExportW: number;
  /** Per-phase voltage in 0.1 V. */
  readonly voltageDv: Triple;
  /** Per-phase current in 0.01 A (DSMR 4/5 print whole amperes, e-MUCS two decimals). */
  readonly currentCa: Triple;
  /** Gas register in litres (0.001 m3) and the time the gas meter captured it. */
  readonly gasL: number;
  readonly gasTime: number;
  /** e-MUCS: average demand of the running 15-minute window (W) and this month's peak (W, time). */
  readonly avgDemandW: number;
  readonly maxDemandW: number;
  readonly maxDemandTime: number;
  readonly powerFailures: number;
  readonly longPowerFailures: number;
  readonly sags: Triple;
  readonly swells: Triple;
}

export interface DsmrModelOptions {
  readonly seed?: number;
  /** Model start time, ms since the epoch (default: now, whole seconds). */
  readonly startTime?: number;
  /** Gas meter capture interval, ms (DSMR 5: 5 minutes, DSMR 4: 1 hour). */
  readonly gasIntervalMs?: number;
}

interface Appliance {
  readonly phase: Phase;
  readonly watts: number;
  readonly durationMs: number;
  /** Chance per minute of switching on. */
  readonly perMinute: number;
  onUntil: number;
}

const WATT_MS_PER_WH = 3_600_000;

export class DsmrApartmentModel {
  private readonly rnd: () => number;
  private readonly gasIntervalMs: number;
  private time: number;
  private importWh: [number, number] = [1234567, 2345678];
  private exportWh: [number, number] = [123456, 234567];
  private importRemainder = 0; // W·ms not yet a whole Wh
  private exportRemainder = 0;
  private gasL = 4567890;
  private gasTime: number;
  private gasPending = 0; // millilitres
  private demandWindowStart: number;
  private demandWms = 0;
  private avgDemandW = 0;
  private maxDemandW = 0;
  private maxDemandTime: number;
  private readonly base: [number, number, number] = [140, 90, 60];
  private readonly appliances: Appliance[] = [
    { phase: 0, watts: 2000, durationMs: 180_000, perMinute: 0.05, onUntil: 0 }, // kettle
    { phase: 1, watts: 1800, durationMs: 1_800_000, perMinute: 0.01, onUntil: 0 }, // washing machine
    { phase: 2, watts: 120, durationMs: 600_000, perMinute: 0.2, onUntil: 0 }, // fridge compressor
  ];
  private counters = { powerFailures: 4, longPowerFailures: 2, sags: [2, 1, 0], swells: [0, 3, 0] };
  private current: DsmrSnapshot;

  constructor(opts: DsmrModelOptions = {}) {
    this.rnd = seededRandom(opts.seed ?? 1);
    this.time = Math.floor((opts.startTime ?? Date.now()) / 1000) * 1000;
    this.gasIntervalMs = opts.gasIntervalMs ?? 300_000;
    this.gasTime = this.time - (this.time % this.gasIntervalMs);
    this.demandWindowStart = this.time - (this.time % 900_000);
    this.maxDemandTime = this.time;
    this.current = this.sample();
  }

  /** The state now. */
  snapshot(): DsmrSnapshot {
    return this.current;
  }

  /**
   * Advances the model by `dtMs` (whole seconds): the energy registers integrate the power of the interval
   * that ends now (the power the previous telegram showed), then the power takes its new value.
   */
  step(dtMs: number): DsmrSnapshot {
    const dt = Math.max(0, Math.round(dtMs / 1000) * 1000);
    const prev = this.current;
    const t = prev.tariff - 1;
    this.importRemainder += prev.totalImportW * dt;
    this.exportRemainder += prev.totalExportW * dt;
    const impWh = Math.floor(this.importRemainder / WATT_MS_PER_WH);
    const expWh = Math.floor(this.exportRemainder / WATT_MS_PER_WH);
    this.importRemainder -= impWh * WATT_MS_PER_WH;
    this.exportRemainder -= expWh * WATT_MS_PER_WH;
    this.importWh[t] = (this.importWh[t] ?? 0) + impWh;
    this.exportWh[t] = (this.exportWh[t] ?? 0) + expWh;

    // Gas: heating burns 0–3 litres a minute (kept in millilitres); the meter reports only at its capture
    // interval, in whole litres.
    this.gasPending += Math.round((this.rnd() * 3 * dt) / 60);
    const newTime = this.time + dt;
    if (Math.floor(newTime / this.gasIntervalMs) > Math.floor(this.time / this.gasIntervalMs)) {
      this.gasL += Math.floor(this.gasPending / 1000);
      this.gasPending %= 1000;
      this.gasTime = newTime - (newTime % this.gasIntervalMs);
    }

    // e-MUCS demand: the average import power of the running quarter hour; the month's peak.
    if (Math.floor(newTime / 900_000) > Math.floor(this.time / 900_000)) {
      this.demandWindowStart = newTime - (newTime % 900_000);
      this.demandWms = 0;
    }
    this.demandWms += prev.totalImportW * dt;
    const windowMs = Math.max(1000, newTime - this.demandWindowStart);
    this.avgDemandW = Math.round(this.demandWms / windowMs);
    if (this.avgDemandW > this.maxDemandW) {
      this.maxDemandW = this.avgDemandW;
      this.maxDemandTime = newTime;
    }

    // A rare sag on a random phase, to keep the counters honest.
    if (this.rnd() < dt / 3_600_000) this.counters.sags[Math.floor(this.rnd() * 3)]! += 1;

    this.time = newTime;
    this.current = this.sample(dt);
    return this.current;
  }

  private sample(dt = 0): DsmrSnapshot {
    const hourUtc = new Date(this.time).getUTCHours();
    const day = new Date(this.time).getUTCDay();
    // DSMR NL: tariff 1 (low) at night 23–07 local and at weekends; local ≈ UTC+1.
    const localHour = (hourUtc + 1) % 24;
    const tariff: 1 | 2 = day === 0 || day === 6 || localHour >= 23 || localHour < 7 ? 1 : 2;
    for (const a of this.appliances) {
      if (a.onUntil <= this.time && this.rnd() < (a.perMinute * dt) / 60_000)
        a.onUntil = this.time + a.durationMs;
    }
    // PV on L3: a sine over 07–19 local, up to 1.8 kW, with cloud noise.
    const solarPhase = (localHour + new Date(this.time).getUTCMinutes() / 60 - 7) / 12;
    const pv =
      solarPhase > 0 && solarPhase < 1
        ? Math.round(1800 * Math.sin(Math.PI * solarPhase) * (0.7 + 0.3 * this.rnd()))
        : 0;
    const net = [0, 1, 2].map((p) => {
      let w = this.base[p]! + Math.round((this.rnd() - 0.5) * 40);
      for (const a of this.appliances) if (a.phase === p && a.onUntil > this.time) w += a.watts;
      return p === 2 ? w - pv : w;
    });
    const importW = net.map((w) => Math.max(0, w)) as unknown as Triple;
    const exportW = net.map((w) => Math.max(0, -w)) as unknown as Triple;
    const total = net.reduce((s, w) => s + w, 0);
    const voltageDv = net.map(
      (w) => 2300 + Math.round((this.rnd() - 0.5) * 40) - Math.round(w / 200),
    ) as unknown as Triple;
    const currentCa = net.map((w, i) =>
      Math.round((Math.abs(w) * 1000) / voltageDv[i]!),
    ) as unknown as Triple;
    return Object.freeze({
      time: this.time,
      tariff,
      importWh: [this.importWh[0], this.importWh[1]] as const,
      exportWh: [this.exportWh[0], this.exportWh[1]] as const,
      importW,
      exportW,
      totalImportW: Math.max(0, total),
      totalExportW: Math.max(0, -total),
      voltageDv,
      currentCa,
      gasL: this.gasL,
      gasTime: this.gasTime,
      avgDemandW: this.avgDemandW,
      maxDemandW: this.maxDemandW,
      maxDemandTime: this.maxDemandTime,
      powerFailures: this.counters.powerFailures,
      longPowerFailures: this.counters.longPowerFailures,
      sags: [...this.counters.sags] as unknown as Triple,
      swells: [...this.counters.swells] as unknown as Triple,
    });
  }
}
