/**
 * Energy per minute, hour and day from cumulative counters (agent/dashboard/energy.ts), against the drivers'
 * apartment model: an hour's energy is exactly the counter difference, joining buckets keeps it exact, and a
 * counter reset or a meter swap counts 0 for the step across it — never a negative hour, never the jump.
 */
import t from 'tap';
import { createApartmentModel } from '../../drivers/index.js';
import {
  addReading,
  bucketEnergy,
  emptyBucket,
  joinBuckets,
  mean,
  spanEnergy,
  type Bucket,
  type CounterMemory,
} from '../../agent/dashboard/energy.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const START = Date.UTC(2024, 5, 1, 0, 0, 0);

interface Reading {
  ts: number;
  values: Record<string, number>;
}

/** The apartment at `stepMs`, over `hours` hours. */
function apartment(hours: number, stepMs: number, seed = 3): Reading[] {
  const m = createApartmentModel(seed, { phases: 3, start: START });
  const out: Reading[] = [];
  for (let ts = START + stepMs; ts < START + hours * HOUR; ts += stepMs) {
    m.advanceTo(ts);
    out.push({ ts, values: m.channels() });
  }
  return out;
}

/** Minute and hour buckets the way the history builds them. */
function aggregate(readings: readonly Reading[], serialOf?: (r: Reading) => string | undefined) {
  const minutes = new Map<number, Bucket>();
  const hours = new Map<number, Bucket>();
  let memory: CounterMemory | undefined;
  for (const r of readings) {
    const m0 = Math.floor(r.ts / MINUTE) * MINUTE;
    const h0 = Math.floor(r.ts / HOUR) * HOUR;
    if (!minutes.has(m0)) minutes.set(m0, emptyBucket(m0));
    if (!hours.has(h0)) hours.set(h0, emptyBucket(h0));
    memory = addReading(
      [minutes.get(m0) as Bucket, hours.get(h0) as Bucket],
      memory,
      r.values,
      serialOf?.(r),
    );
  }
  return { minutes: [...minutes.values()], hours: [...hours.values()] };
}

t.test('apartment model, 1 Hz for 6 h: each hour is exactly the counter difference', async (t) => {
  const readings = apartment(6, 1_000);
  const { minutes, hours } = aggregate(readings);
  t.equal(hours.length, 6, 'six hours');
  t.equal(minutes.length, 360, '360 minutes');
  // The last reading of each hour: the counter at the hour's end as the meter showed it.
  const lastIn = (h: number, ch: string) =>
    readings.filter((r) => r.ts < h + HOUR).at(-1)?.values[ch] as number;
  const firstReading = readings[0] as Reading;
  for (const [i, b] of hours.entries()) {
    for (const ch of ['energy_import_kwh', 'energy_export_kwh'] as const) {
      const before = i === 0 ? (firstReading.values[ch] as number) : lastIn(b.t - HOUR, ch);
      const expected = lastIn(b.t, ch) - before;
      t.equal(spanEnergy(b.e[ch] as never), expected, `hour ${i} ${ch}: ${expected} kWh, bit-exact`);
    }
    t.equal(b.breaks, undefined, 'no reset, no swap');
    t.ok(b.n === 3600 || (i === 0 && b.n === 3599), `hour ${i} holds its readings (${b.n})`);
  }
  // The hour is the sum of its minutes (to float rounding), and joining the minutes gives it exactly.
  for (const h of hours) {
    const mins = minutes.filter((m) => m.t >= h.t && m.t < h.t + HOUR);
    const sum = mins.reduce((s, m) => s + (bucketEnergy(m).importKwh ?? 0), 0);
    t.ok(Math.abs(sum - (bucketEnergy(h).importKwh as number)) < 1e-9, 'minutes add up to the hour');
    const joined = mins.reduce((a, b) => joinBuckets(a, b));
    t.equal(bucketEnergy(joined).importKwh, bucketEnergy(h).importKwh, 'joined minutes = the hour, exactly');
    t.equal(joined.n, h.n, 'reading counts add up');
  }
  // A day of hours, joined: last counter − first counter, exactly.
  const day = hours.reduce((a, b) => joinBuckets(a, b));
  const last = readings.at(-1) as Reading;
  t.equal(
    bucketEnergy(day).importKwh,
    (last.values.energy_import_kwh as number) - (firstReading.values.energy_import_kwh as number),
    'six joined hours = counter difference over the whole run',
  );
  // Power statistics: mean of the readings, min and max among them.
  const h0 = hours[0] as Bucket;
  const p = readings.filter((r) => r.ts < START + HOUR).map((r) => r.values.power_w as number);
  t.equal(h0.p?.min, Math.min(...p), 'min power');
  t.equal(h0.p?.max, Math.max(...p), 'max power');
  t.ok(Math.abs((mean(h0.p) as number) - p.reduce((a, b) => a + b, 0) / p.length) < 1e-6, 'mean power');
  t.equal(h0.ph?.length, 3, 'per-phase power kept');
  t.ok(
    Math.abs(
      (mean(h0.ph?.[0]) ?? 0) + (mean(h0.ph?.[1]) ?? 0) + (mean(h0.ph?.[2]) ?? 0) - (mean(h0.p) as number),
    ) < 1e-6,
    'phases add up to the total',
  );
});

t.test('a reading every 7 s (hours do not start on a reading): still the exact difference', async (t) => {
  const readings = apartment(3, 7_000, 11);
  const { hours } = aggregate(readings);
  const lastBefore = (t0: number) =>
    readings.filter((r) => r.ts < t0).at(-1)?.values.energy_import_kwh as number;
  for (const h of hours.slice(1))
    t.equal(
      bucketEnergy(h).importKwh,
      lastBefore(h.t + HOUR) - lastBefore(h.t),
      `hour at ${new Date(h.t).toISOString()}`,
    );
});

t.test('counter reset: the step across it counts 0, counting resumes from the new value', async (t) => {
  const r = (ts: number, kwh: number): Reading => ({ ts, values: { energy_import_kwh: kwh, power_w: 500 } });
  const { hours } = aggregate([
    r(START + 1_000, 100),
    r(START + 2_000, 101.5),
    r(START + 3_000, 102),
    r(START + 4_000, 0.25), // reset (meter replaced its register, or a firmware update)
    r(START + 5_000, 1),
    r(START + HOUR + 1_000, 3), // next hour continues from 1
  ]);
  const [h0, h1] = hours as [Bucket, Bucket];
  t.equal(bucketEnergy(h0).importKwh, 2 + 0.75, '2 kWh before the reset + 0.75 after, nothing for the drop');
  t.equal(h0.breaks, 1, 'one reading after a break');
  t.equal(bucketEnergy(h1).importKwh, 2, 'next hour: 3 − 1');
  t.equal(h1.breaks, undefined, 'no break in the next hour');
  t.equal(bucketEnergy(joinBuckets(h0, h1)).importKwh, 4.75, 'the day joins both, exactly');
});

t.test('meter swap (new serial): the jump to the new meter counts 0, even upwards', async (t) => {
  const readings: (Reading & { serial: string })[] = [
    { ts: START + 1_000, serial: 'A1', values: { energy_import_kwh: 100 } },
    { ts: START + 2_000, serial: 'A1', values: { energy_import_kwh: 101 } },
    { ts: START + 3_000, serial: 'B7', values: { energy_import_kwh: 5000 } }, // higher: a plain diff would say 4,899 kWh
    { ts: START + 4_000, serial: 'B7', values: { energy_import_kwh: 5002 } },
    { ts: START + 5_000, serial: 'C3', values: { energy_import_kwh: 7 } }, // lower
    { ts: START + 6_000, serial: 'C3', values: { energy_import_kwh: 7.5 } },
  ];
  const { hours } = aggregate(readings, (r) => (r as { serial?: string }).serial);
  const h = hours[0] as Bucket;
  t.equal(bucketEnergy(h).importKwh, 1 + 2 + 0.5, 'each meter its own difference, nothing for the swaps');
  t.equal(h.breaks, 2, 'two swaps');
  t.ok((bucketEnergy(h).importKwh as number) >= 0, 'never negative');
});

t.test('DSMR tariff registers add up to import/export; missing and NaN values are skipped', async (t) => {
  const b = emptyBucket(START);
  let mem = addReading([b], undefined, {
    energy_import_t1_kwh: 10,
    energy_import_t2_kwh: 20,
    energy_export_t1_kwh: 1,
  });
  mem = addReading([b], mem, {
    energy_import_t1_kwh: 10.5,
    energy_import_t2_kwh: 21,
    energy_export_t1_kwh: 1.25,
  });
  mem = addReading([b], mem, { energy_import_t1_kwh: Number.NaN, power_w: Number.NaN });
  t.same(bucketEnergy(b), { importKwh: 1.5, exportKwh: 0.25 }, 'tariffs summed');
  t.equal(mem.counters.energy_import_t1_kwh, 10.5, 'a NaN reading leaves the counter memory alone');
  t.equal(b.p, undefined, 'no power statistic from NaN');
  t.same(bucketEnergy(emptyBucket(0)), { importKwh: null, exportKwh: null }, 'no counters: null, not 0');
  t.equal(mean(undefined), null);
  const kept = addReading([emptyBucket(0)], { serial: 'X', counters: {} }, { energy_import_kwh: 1 });
  t.equal(kept.serial, 'X', 'a reading without serial keeps the known serial');
});

t.test('joining buckets with a gap in the counter (a reset between them) carries both spans', async (t) => {
  const a: Bucket = { t: 0, n: 2, e: { energy_import_kwh: { first: 10, last: 12, carried: 0 } } };
  const b: Bucket = {
    t: HOUR,
    n: 2,
    e: {
      energy_import_kwh: { first: 1, last: 4, carried: 0.5 },
      energy_export_kwh: { first: 2, last: 3, carried: 0 },
    },
    p: { sum: 10, min: 1, max: 9, n: 2 },
    breaks: 1,
  };
  const j = joinBuckets(a, b);
  t.equal(bucketEnergy(j).importKwh, 2 + 0.5 + 3, 'both spans and the carried energy');
  t.equal(bucketEnergy(j).exportKwh, 1, 'a counter only in the later bucket');
  t.same(j.p, b.p, 'power from the bucket that has it');
  t.equal(j.breaks, 1);
  t.equal(j.t, 0, 'starts where the first starts');
});
