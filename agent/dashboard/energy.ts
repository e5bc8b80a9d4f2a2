/**
 * Energy from cumulative counters, per time bucket — pure functions, no I/O.
 *
 * The contract sends energy as the meter's cumulative counter, never as deltas (DESIGN §2); a counter that
 * goes down is a reset and a new serial number is a meter swap, both events (agent/daemon/agent.ts
 * `checkCounters`). The same rules decide here:
 *
 * - Each step between two consecutive readings of one meter belongs to the bucket of the later reading.
 * - A step across a reset (counter lower than before) or a swap (serial changed) counts 0: what the old
 *   register did after its last reading is unknown, and the new one starts where it starts. Counting from
 *   there on resumes with the next reading. Never more energy than the registers show, never negative.
 * - A bucket keeps, per counter, the span `first` (the reading before its first step) → `last` and the
 *   energy of spans closed by a reset (`carried`). Energy = carried + (last − first): one subtraction of two
 *   register values, so an hour without reset is *exactly* the counter difference, with no float drift from
 *   summing steps. Joining adjacent buckets (hours into days) keeps that: a continuous join is again one span.
 *
 * The Athena saved query "energy per thing per hour" (infra-cfn/templates/lake.yaml) applies the same rules
 * in SQL (per-step differences, steps that go down count 0, each step in the hour of its later reading); the
 * cloud table has no serial number, so there a swap is seen only when the new counter is lower.
 */

/** Counters the history keeps (import/export totals, and the DSMR tariff registers that add up to them). */
export const HISTORY_COUNTERS = [
  'energy_import_kwh',
  'energy_export_kwh',
  'energy_import_t1_kwh',
  'energy_import_t2_kwh',
  'energy_export_t1_kwh',
  'energy_export_t2_kwh',
] as const;
export type HistoryCounter = (typeof HISTORY_COUNTERS)[number];

/** One counter within one bucket: energy = carried + (last − first). */
export interface Span {
  first: number;
  last: number;
  carried: number;
}

export interface Stat {
  sum: number;
  min: number;
  max: number;
  n: number;
}

/** Aggregates of one meter over one minute or one hour. JSON as stored. */
export interface Bucket {
  /** Start of the bucket, ms since the epoch. */
  t: number;
  /** Readings in it. */
  n: number;
  /** Total active power `power_w`. */
  p?: Stat;
  /** Per-phase active power `power_l1_w`…`power_l3_w` (sum and count each). */
  ph?: [Stat | null, Stat | null, Stat | null];
  /** Counter spans, by channel. */
  e: Partial<Record<HistoryCounter, Span>>;
  /** Readings in this bucket that followed a counter reset or a meter swap. */
  breaks?: number;
}

/** What the previous reading of a meter left behind. */
export interface CounterMemory {
  serial?: string;
  counters: Partial<Record<HistoryCounter, number>>;
}

export const spanEnergy = (s: Span): number => s.carried + (s.last - s.first);

export const emptyBucket = (t: number): Bucket => ({ t, n: 0, e: {} });

const addStat = (s: Stat | undefined | null, v: number): Stat =>
  s
    ? { sum: s.sum + v, min: Math.min(s.min, v), max: Math.max(s.max, v), n: s.n + 1 }
    : { sum: v, min: v, max: v, n: 1 };

/**
 * Adds one reading to the buckets it falls in (a minute and an hour, say), given the meter's memory of the
 * previous reading; returns the new memory. `values` are numbers in the contract's units.
 */
export function addReading(
  buckets: readonly Bucket[],
  memory: CounterMemory | undefined,
  values: Readonly<Record<string, number>>,
  serial?: string,
): CounterMemory {
  const swapped = serial !== undefined && memory?.serial !== undefined && memory.serial !== serial;
  const before = swapped ? {} : (memory?.counters ?? {});
  const counters: Partial<Record<HistoryCounter, number>> = { ...before };
  let broke = swapped;
  for (const ch of HISTORY_COUNTERS) {
    const v = values[ch];
    if (v === undefined || !Number.isFinite(v)) continue;
    const prev = before[ch];
    const continuous = prev !== undefined && v >= prev;
    if (prev !== undefined && !continuous) broke = true;
    for (const b of buckets) {
      const span = b.e[ch];
      if (!continuous) {
        if (span) b.e[ch] = { first: v, last: v, carried: spanEnergy(span) };
        else b.e[ch] = { first: v, last: v, carried: 0 };
      } else if (span) span.last = v;
      else b.e[ch] = { first: prev, last: v, carried: 0 };
    }
    counters[ch] = v;
  }
  const p = values.power_w;
  const phases = [values.power_l1_w, values.power_l2_w, values.power_l3_w];
  for (const b of buckets) {
    b.n++;
    if (p !== undefined && Number.isFinite(p)) b.p = addStat(b.p, p);
    if (phases.some((x) => x !== undefined)) {
      const ph = b.ph ?? [null, null, null];
      phases.forEach((x, i) => {
        if (x !== undefined && Number.isFinite(x)) ph[i] = addStat(ph[i], x);
      });
      b.ph = ph;
    }
    if (broke) b.breaks = (b.breaks ?? 0) + 1;
  }
  return {
    ...(serial !== undefined ? { serial } : memory?.serial !== undefined ? { serial: memory.serial } : {}),
    counters,
  };
}

/** Joins two adjacent buckets (`b` after `a`) into one starting at `a.t`; exact for continuous counters. */
export function joinBuckets(a: Bucket, b: Bucket): Bucket {
  const e: Partial<Record<HistoryCounter, Span>> = {};
  for (const ch of HISTORY_COUNTERS) {
    const x = a.e[ch];
    const y = b.e[ch];
    if (x && y)
      e[ch] =
        y.first === x.last
          ? { first: x.first, last: y.last, carried: x.carried + y.carried }
          : { first: y.first, last: y.last, carried: spanEnergy(x) + y.carried };
    else if (x || y) e[ch] = { ...((x ?? y) as Span) };
  }
  const stat = (s: Stat | null | undefined, u: Stat | null | undefined): Stat | undefined =>
    s && u
      ? { sum: s.sum + u.sum, min: Math.min(s.min, u.min), max: Math.max(s.max, u.max), n: s.n + u.n }
      : (s ?? u ?? undefined);
  const out: Bucket = { t: a.t, n: a.n + b.n, e };
  const p = stat(a.p, b.p);
  if (p) out.p = p;
  if (a.ph || b.ph) out.ph = [0, 1, 2].map((i) => stat(a.ph?.[i], b.ph?.[i]) ?? null) as Bucket['ph'];
  if (a.breaks || b.breaks) out.breaks = (a.breaks ?? 0) + (b.breaks ?? 0);
  return out;
}

/** Imported and exported kWh in a bucket: the meter's totals, else the sum of its tariff registers (DSMR). */
export function bucketEnergy(b: Bucket): { importKwh: number | null; exportKwh: number | null } {
  const pick = (dir: 'import' | 'export'): number | null => {
    const total = b.e[`energy_${dir}_kwh`];
    if (total) return spanEnergy(total);
    const t1 = b.e[`energy_${dir}_t1_kwh`];
    const t2 = b.e[`energy_${dir}_t2_kwh`];
    if (!t1 && !t2) return null;
    return (t1 ? spanEnergy(t1) : 0) + (t2 ? spanEnergy(t2) : 0);
  };
  return { importKwh: pick('import'), exportKwh: pick('export') };
}

/** Mean of a stat, or null. */
export const mean = (s: Stat | null | undefined): number | null => (s && s.n > 0 ? s.sum / s.n : null);
