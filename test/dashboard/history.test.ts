/**
 * The dashboard's history store on a real LevelDB in a temp dir: hours exactly the counter difference, also
 * across a restart; the open minute and hour are kept on close; the ring keeps 48 h of minutes and 60 days
 * of hours; readings going back in time are left out; an unreadable store is set aside.
 */
import t from 'tap';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createApartmentModel } from '../../drivers/index.js';
import { bucketEnergy } from '../../agent/dashboard/energy.js';
import {
  HOUR_MS,
  MINUTE_MS,
  localDayStart,
  openHistory,
  type HistoryStore,
} from '../../agent/dashboard/history.js';
import { tempDir } from '../harness/tmp.js';

const START = Date.UTC(2024, 5, 1, 0, 0, 0);

async function feed(
  h: HistoryStore,
  meter: string,
  model: ReturnType<typeof createApartmentModel>,
  from: number,
  to: number,
  step: number,
) {
  const seen: { ts: number; kwh: number }[] = [];
  for (let ts = from; ts < to; ts += step) {
    model.advanceTo(ts);
    const v = model.channels();
    h.record(meter, ts, v, 'SN-1');
    seen.push({ ts, kwh: v.energy_import_kwh as number });
  }
  await h.flushed();
  return seen;
}

t.test('hours from the apartment model equal the counter difference, across a restart', async (t) => {
  const dir = join(await tempDir(t, 'meterlink-history-'), 'history');
  const model = createApartmentModel(5, { phases: 3, start: START });
  let h = await openHistory(dir);
  const a = await feed(h, 'main', model, START + 1_000, START + 2 * HOUR_MS + 30 * MINUTE_MS, 5_000);
  await h.close();
  // The agent restarts 90 s later (readings during the gap are simply not there).
  h = await openHistory(dir);
  t.teardown(() => h.close());
  const b = await feed(h, 'main', model, START + 2 * HOUR_MS + 32 * MINUTE_MS, START + 4 * HOUR_MS, 5_000);
  const all = [...a, ...b];
  const lastBefore = (ts: number) => all.filter((r) => r.ts < ts).at(-1)?.kwh as number;
  const hours = await h.hours('main', START, START + 4 * HOUR_MS);
  t.equal(hours.length, 4, 'four hours');
  for (const hr of hours.slice(1))
    t.equal(
      bucketEnergy(hr).importKwh,
      lastBefore(hr.t + HOUR_MS) - lastBefore(hr.t),
      `hour ${new Date(hr.t).toISOString().slice(11, 16)}: exact counter difference (restart inside hour 2)`,
    );
  const minutes = await h.minutes('main', START, START + 4 * HOUR_MS);
  t.equal(minutes.length, 4 * 60 - 2, 'a minute per minute, but the two of the restart gap');
  const gapEnd = minutes.find((m) => m.t === START + 2 * HOUR_MS + 32 * MINUTE_MS);
  t.ok(
    (bucketEnergy(gapEnd as never).importKwh as number) > 0,
    'the gap energy lands in the first minute after it',
  );
  const days = await h.days('main', START, START + 4 * HOUR_MS);
  t.ok(
    days.length >= 1 && days.length <= 2,
    'one local day (two where the zone puts midnight inside the run)',
  );
  const dayTotal = days.reduce((s, d) => s + (bucketEnergy(d).importKwh ?? 0), 0);
  t.ok(Math.abs(dayTotal - (all.at(-1)!.kwh - all[0]!.kwh)) < 1e-9, 'days add up to the whole run');
  t.equal(days[0]?.t, localDayStart(START), 'days start at local midnight');
  t.same(await h.meters(), ['main'], 'meters known');
});

t.test('the open minute and hour survive close + reopen within the same minute', async (t) => {
  const dir = join(await tempDir(t, 'meterlink-history-'), 'h');
  let h = await openHistory(dir);
  h.record('m', START + 1_000, { energy_import_kwh: 10, power_w: 100 });
  h.record('m', START + 2_000, { energy_import_kwh: 10.5, power_w: 300 });
  await h.close();
  h.record('m', START + 2_500, { energy_import_kwh: 99 }); // after close: ignored
  h = await openHistory(dir);
  t.teardown(() => h.close());
  h.record('m', START + 3_000, { energy_import_kwh: 11, power_w: 200 });
  const [minute] = await h.minutes('m', START, START + MINUTE_MS);
  t.equal(minute?.n, 3, 'three readings in the minute, across the restart');
  t.equal(bucketEnergy(minute as never).importKwh, 1, '11 − 10');
  t.same(minute?.p, { sum: 600, min: 100, max: 300, n: 3 }, 'power statistics continued');
});

t.test('ring: 48 h of minutes, 60 days of hours, relative to the newest reading', async (t) => {
  const dir = join(await tempDir(t, 'meterlink-history-'), 'h');
  const h = await openHistory(dir);
  t.teardown(() => h.close());
  // One reading every 30 min for 62 days: each closes a minute and, every other one, an hour.
  let kwh = 0;
  const end = START + 62 * 24 * HOUR_MS;
  for (let ts = START; ts < end; ts += 30 * MINUTE_MS) {
    kwh += 0.25;
    h.record('m', ts, { energy_import_kwh: kwh, power_w: 500 });
  }
  await h.flushed();
  const newest = end - 30 * MINUTE_MS;
  const minutes = await h.minutes('m', 0, end + HOUR_MS);
  const hours = await h.hours('m', 0, end + HOUR_MS);
  t.ok(
    minutes.length <= 97 && minutes.length >= 96,
    `minutes kept: ${minutes.length} (48 h at one per 30 min)`,
  );
  t.ok(minutes[0]!.t >= newest - 48 * HOUR_MS, 'no minute older than 48 h');
  t.ok(hours.length >= 60 * 24 - 1 && hours.length <= 60 * 24 + 1, `hours kept: ${hours.length} (60 days)`);
  t.ok(hours[0]!.t >= newest - 60 * 24 * HOUR_MS, 'no hour older than 60 days');
  const hr = hours.at(-2);
  t.equal(bucketEnergy(hr as never).importKwh, 0.5, 'two readings of 0.25 kWh per hour');
});

t.test(
  'a reading older than the open minute (clock stepped back) is left out; its energy comes with the next',
  async (t) => {
    const dir = join(await tempDir(t, 'meterlink-history-'), 'h');
    const h = await openHistory(dir);
    t.teardown(() => h.close());
    h.record('m', START + 5 * MINUTE_MS, { energy_import_kwh: 1 });
    h.record('m', START + 1 * MINUTE_MS, { energy_import_kwh: 2 }); // 4 minutes back
    h.record('m', START + 5 * MINUTE_MS + 30_000, { energy_import_kwh: 3 });
    const minutes = await h.minutes('m', START, START + HOUR_MS);
    t.same(
      minutes.map((m) => m.t),
      [START + 5 * MINUTE_MS],
      'only the minute in order',
    );
    t.equal(bucketEnergy(minutes[0] as never).importKwh, 2, '1 → 3, nothing lost');
  },
);

t.test('an unreadable store is set aside and a fresh one started', async (t) => {
  const base = await tempDir(t, 'meterlink-history-');
  const dir = join(base, 'h');
  await mkdir(dir);
  await writeFile(join(dir, 'CURRENT'), 'MANIFEST-999999\n'); // names a manifest that is not there
  let movedTo = '';
  const h = await openHistory(dir, { onSetAside: (to) => (movedTo = to) });
  t.teardown(() => h.close());
  t.match(movedTo, /h\.unreadable-\d+$/, 'moved aside');
  t.ok(
    (await readdir(base)).some((f) => f.startsWith('h.unreadable-')),
    'the old one is kept for a look',
  );
  h.record('m', START, { energy_import_kwh: 1 });
  t.equal((await h.minutes('m', START, START + MINUTE_MS)).length, 1, 'the fresh store works');
});

t.test('a store another process holds is an error, not set aside', async (t) => {
  const dir = join(await tempDir(t, 'meterlink-history-'), 'h');
  const h = await openHistory(dir);
  t.teardown(() => h.close());
  await t.rejects(openHistory(dir), 'second open of the same store fails');
  t.same(
    (await readdir(join(dir, '..'))).filter((f) => f.includes('unreadable')),
    [],
    'nothing set aside',
  );
});
