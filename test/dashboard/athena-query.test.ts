/**
 * The saved Athena queries (infra-cfn/templates/lake.yaml) against the box's dashboard, for real: the meters
 * of one box over 52 hours → the agent's batch encoder (signed batches, live and backlog) → the ingest
 * Lambda's verification and lake records → Parquet in the Glue table's schema and `dt=` layout →
 * every saved query in DuckDB (test/infra/athena-lake.ts: the Trino → DuckDB translation) → compared with what
 * the agent's dashboard (history + /api/history document) computes from the same readings.
 *
 * Three meters: two apartment-model Modbus meters (import/export totals) and a DSMR P1 meter (tariff registers
 * only). The data carry what a fleet sends: partial reads without an energy counter (~1 in 1,000, and some on
 * hour boundaries), duplicated batches, a counter reset, a meter swap to a new meter with lower counters, samples
 * corrected after a late NTP sync, samples from a boot whose clock never synchronised (wrong ts, flagged),
 * an outage across an hour boundary, a backlog drained late in large batches, a batch delivered a day late,
 * and ten minutes of readings lost on the box (a sequence gap; the dashboard had recorded them).
 */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import {
  QualityFlag,
  f32Value,
  intValue,
  valueToNumber,
  type Sample,
  type Value,
} from '../../cloud-contract/index.js';
import {
  DsmrApartmentModel,
  createApartmentModel,
  seededRandom,
  type ApartmentModel,
} from '../../drivers/index.js';
import { createBatchEncoder } from '../../agent/publisher/batch-encoder.js';
import { startDashboard } from '../../agent/dashboard/index.js';
import { bucketEnergy, type Bucket } from '../../agent/dashboard/energy.js';
import { HOUR_MS } from '../../agent/dashboard/history.js';
import { historyDoc } from '../../agent/dashboard/server.js';
import type { CertificateSource } from '../../infra-cfn/lambda/certificates.js';
import { buildRuleEnvelope } from '../../infra-cfn/lambda/envelope.js';
import { lakeRecords, rowDate } from '../../infra-cfn/lambda/lake.js';
import type { SampleRow } from '../../infra-cfn/lambda/rows.js';
import { verifyRecord } from '../../infra-cfn/lambda/verify.js';
import { issueCert, makeCa } from '../harness/pki.js';
import { tempDir } from '../harness/tmp.js';
import {
  athenaToDuckDb,
  duckDbType,
  glueSamplesTable,
  installTrinoMacros,
  openLake,
  readLakeTemplate,
  savedQueries,
  writeLakeParquet,
  type LakeFile,
} from '../infra/athena-lake.js';

// The dashboard joins hours into days in the box's time zone; the lake's days are UTC.
process.env.TZ = 'UTC';

const THING = 'apt-0042';
const METERS = ['main', 'heat', 'p1'];
const STEP = 10_000;
const MINUTE = 60_000;
const START = Date.UTC(2025, 2, 10, 21, 17, 0);
const TICKS = 52 * 360;
const END = START + (TICKS - 1) * STEP;
/** The queries' "now": just after the newest reading. */
const NOW = END + 25_000;
const hourOf = (ts: number) => Math.floor(ts / HOUR_MS) * HOUR_MS;
/** First tick at or after `ts`. */
const tickAt = (ts: number) => Math.ceil((ts - START) / STEP);
/** Counters are sent in Wh (int, exponent −3), as the meters' energy registers are: 1 Wh resolution. */
const wh = (kwh: number) => Math.round(kwh * 1000);

// Scenario, in ticks (one reading of each meter per tick).
const RESET_HEAT = tickAt(START + 20.5 * HOUR_MS); // heat's register reset to 0
const SWAP_MAIN = tickAt(START + 30.25 * HOUR_MS); // main replaced by a meter starting at 2.5 kWh
const OFF = [tickAt(hourOf(START + 12 * HOUR_MS) - 4 * MINUTE), 48] as const; // box off 8 min across an hour
const LOST = [tickAt(hourOf(START + 44 * HOUR_MS) + 20 * MINUTE), 60] as const; // read, stored, then lost
const CORRECTED = [tickAt(hourOf(START + 40 * HOUR_MS) + 10 * MINUTE), 30] as const; // unsynced, then corrected
const WRONG_CLOCK = [tickAt(hourOf(START + 47 * HOUR_MS) + 30 * MINUTE), 20] as const; // unsynced, never corrected
const WRONG_CLOCK_SHIFT = -5 * HOUR_MS;
const OFFLINE = [tickAt(START + 22 * HOUR_MS), tickAt(START + 27 * HOUR_MS)] as const; // backlog, drained late
const within = (k: number, [from, n]: readonly [number, number]) => k >= from && k < from + n;

interface Taken {
  /** Tick: when the box read it. */
  k: number;
  /** As the box stored it (what its dashboard recorded). */
  box: Sample;
  serial: string;
  /** As the cloud receives it, or undefined when the box lost it. */
  sent: Sample | undefined;
}

function takeReadings(): Taken[] {
  // Two Modbus meters (import/export totals) and a DSMR P1 meter (tariff registers only, in Wh).
  const apartment = (model: ApartmentModel) => ({
    advance: (ts: number) => model.advanceTo(ts),
    channels: () => model.channels(),
  });
  const dsmr = new DsmrApartmentModel({ seed: 7, startTime: START - STEP });
  const p1 = {
    advance: () => void dsmr.step(STEP),
    channels: () => {
      const x = dsmr.snapshot();
      return {
        power_w: x.totalImportW - x.totalExportW,
        energy_import_t1_kwh: x.importWh[0] / 1000,
        energy_import_t2_kwh: x.importWh[1] / 1000,
        energy_export_t1_kwh: x.exportWh[0] / 1000,
        energy_export_t2_kwh: x.exportWh[1] / 1000,
      } as Record<string, number>;
    },
  };
  const meters = [
    { id: 'main', model: apartment(createApartmentModel(3, { phases: 3, start: START - STEP })) },
    { id: 'heat', model: apartment(createApartmentModel(5, { phases: 1, pvPeakW: 0, start: START - STEP })) },
    { id: 'p1', model: p1 },
  ];
  const offset = new Map<string, { i: number; e: number }>(meters.map((m) => [m.id, { i: 0, e: 0 }]));
  const rnd = seededRandom(30);
  const out: Taken[] = [];
  let seq = 1000;
  for (let k = 0; k < TICKS; k++) {
    const ts = START + k * STEP;
    for (const m of meters) {
      m.model.advance(ts);
      if (within(k, OFF)) continue;
      const ch = m.model.channels();
      const off = offset.get(m.id) as { i: number; e: number };
      if (m.id === 'heat' && k === RESET_HEAT) {
        off.i = -(ch.energy_import_kwh as number);
        off.e = -(ch.energy_export_kwh as number);
      }
      if (m.id === 'main' && k === SWAP_MAIN) {
        off.i = 2.5 - (ch.energy_import_kwh as number);
        off.e = 0.4 - (ch.energy_export_kwh as number);
      }
      const values: Record<string, Value> = { power_w: f32Value(ch.power_w as number) };
      if (m.id === 'p1')
        for (const c of Object.keys(ch).filter((x) => x.startsWith('energy_')))
          values[c] = intValue(wh(ch[c] as number), -3);
      else
        Object.assign(values, {
          power_l1_w: f32Value(ch.power_l1_w as number),
          voltage_l1_v: f32Value(ch.voltage_l1_v as number),
          energy_import_kwh: intValue(wh((ch.energy_import_kwh as number) + off.i), -3),
          energy_export_kwh: intValue(wh((ch.energy_export_kwh as number) + off.e), -3),
        });
      // Partial reads: an energy register did not answer (on P1, one tariff register). Random ones, and some
      // right at an hour's start or end.
      const counters = Object.keys(values).filter((c) => c.startsWith('energy_'));
      const atHourEdge = ts % HOUR_MS < STEP || ts % HOUR_MS >= HOUR_MS - STEP;
      let missing: string[] = [];
      if (rnd() < 0.001 || (atHourEdge && rnd() < 0.08))
        missing = rnd() < 0.7 ? counters.slice(0, 1) : counters.slice(0, 2);
      for (const c of missing) delete values[c];
      const flags = missing.length > 0 ? QualityFlag.partial : 0;
      const head = { meter: m.id, values, ...(missing.length > 0 ? { missing } : {}) };
      seq++;
      const serial = m.id === 'main' && k >= SWAP_MAIN ? 'SN-2002' : `SN-${m.id}-1`;
      let box: Sample = { ...head, ts, seq, flags };
      let sent: Sample | undefined = box;
      if (within(k, CORRECTED)) {
        // Stored unsynchronised (the dashboard skips it), shipped after NTP with ts corrected.
        box = { ...head, ts: ts + 37 * 86_400_000, seq, flags: flags | QualityFlag.clockUnsynced };
        sent = { ...head, ts, seq, flags: flags | QualityFlag.clockCorrected };
      } else if (within(k, WRONG_CLOCK)) {
        box = { ...head, ts: ts + WRONG_CLOCK_SHIFT, seq, flags: flags | QualityFlag.clockUnsynced };
        sent = box;
      }
      if (within(k, LOST)) sent = undefined;
      out.push({ k, box, serial, sent });
    }
  }
  return out;
}

interface Delivery {
  payload: Uint8Array;
  receivedAt: number;
}

/** The agent's batches as IoT Core receives them: live each minute, the offline stretch as a late backlog. */
async function deliveries(taken: readonly Taken[], device: { keyPem: string; certDer: Buffer }) {
  const encode = createBatchEncoder({ device: THING, privateKey: device.keyPem, certDer: device.certDer });
  const out: Delivery[] = [];
  const drain = async (samples: Sample[], receivedAt: () => number, maxBytes: number) => {
    let rest = samples;
    while (rest.length > 0) {
      const { payload, count } = await encode(rest, maxBytes);
      if (count === 0) throw new Error('a sample no batch can carry');
      out.push({ payload, receivedAt: receivedAt() });
      rest = rest.slice(count);
    }
  };
  const minuteOf = (x: Taken) => Math.floor(x.k / 6);
  const offline = (x: Taken) => x.k >= OFFLINE[0] && x.k < OFFLINE[1];
  // Live: one batch a minute, received a few seconds after the minute's last reading.
  const live = taken.filter((x) => x.sent && !offline(x));
  for (let i = 0; i < live.length;) {
    const minute = minuteOf(live[i] as Taken);
    let j = i;
    while (j < live.length && minuteOf(live[j] as Taken) === minute) j++;
    const batch = live.slice(i, j).map((x) => x.sent as Sample);
    await drain(batch, () => START + (minute + 1) * 6 * STEP + 3_000, 16_000);
    i = j;
  }
  // The backlog: after reconnecting, oldest first, full-size batches, received one after the other.
  const backlog = taken.filter((x) => x.sent && offline(x)).map((x) => x.sent as Sample);
  const reconnect = START + OFFLINE[1] * STEP + 2 * MINUTE;
  let n = 0;
  await drain(backlog, () => reconnect + 800 * n++, 128_000);
  return out;
}

t.test('saved queries over Parquet equal the dashboard', async (t) => {
  const dir = await tempDir(t, 'meterlink-athena-');
  const doc = await readLakeTemplate();
  const table = glueSamplesTable(doc);
  const queries = savedQueries(doc);
  const byName = (name: string) => {
    const q = queries.find((x) => x.name === name);
    if (!q) throw new Error(`no saved query ${name}`);
    return q.sql;
  };

  // The box: readings into its dashboard, in the order it took them.
  const taken = takeReadings();
  const dash = await startDashboard({
    config: {
      buffer: { path: join(dir, 'buffer') },
      dashboard: { listen: '127.0.0.1:0', history: join(dir, 'history') },
      meters: [{ id: 'main' }, { id: 'heat' }, { id: 'p1' }],
    } as never,
    status: () => ({}) as never,
    log: pino({ level: 'silent' }),
  });
  t.teardown(() => dash.close());
  for (const x of taken) dash.record(x.box, x.serial);
  await dash.history.flushed();

  // The wire and the cloud: signed batches, verified by the Lambda's code, rows as the lake gets them.
  const ca = await makeCa();
  const cert = await issueCert(ca, { cn: THING });
  const certs: CertificateSource = {
    get: async (id) =>
      id === cert.fingerprint
        ? {
            id,
            pem: cert.certPem,
            status: 'ACTIVE',
            publicKey: new X509Certificate(cert.certPem).publicKey,
          }
        : undefined,
    attachedTo: async (thing) => new Set(thing === THING ? [cert.fingerprint] : []),
    stats: { hits: 0, misses: 0 },
    clear() {},
  };
  const sent = await deliveries(taken, cert);
  // Duplicates: every 40th batch (and one backlog batch) arrives twice, the copy half a minute later.
  const dup = sent.filter((_, i) => i % 40 === 7 || i === sent.length - 3);
  // Late: one live batch is delivered a day late.
  const late = sent.length >> 1;
  const arrivals = [
    ...sent.map((d, i) => (i === late ? { ...d, receivedAt: d.receivedAt + 86_400_000 } : d)),
    ...dup.map((d) => ({ ...d, receivedAt: d.receivedAt + 30_000 })),
  ];
  // Firehose: objects per partition and per arrival hour.
  const objects = new Map<string, { dt: string; rows: SampleRow[] }>();
  for (const a of arrivals) {
    const env = buildRuleEnvelope({
      payload: a.payload,
      thing: THING,
      principal: cert.fingerprint,
      receivedAt: a.receivedAt,
      topic: `meterlink/v1/${THING}/batch`,
    });
    const outcome = await verifyRecord(new Uint8Array(env), certs);
    if (outcome.kind !== 'accepted') throw new Error(`batch not accepted: ${outcome.reason}`);
    // The ingest Lambda's lake records (newline-delimited rows); Firehose partitions each row by its own ts.
    for (const record of lakeRecords(outcome))
      for (const line of record.toString('utf8').split('\n')) {
        if (line === '') continue;
        const row = JSON.parse(line) as SampleRow;
        const dt = rowDate(row.ts);
        const key = `${dt}/${Math.floor(a.receivedAt / HOUR_MS)}`;
        const o = objects.get(key) ?? { dt, rows: [] };
        o.rows.push(row);
        objects.set(key, o);
      }
  }
  const files: LakeFile[] = [...objects.values()];
  const lakeDir = join(dir, 'lake');
  const lake = await openLakeAfterWrite(lakeDir, files);
  t.teardown(() => lake.close());

  t.test('the Parquet files have the Glue schema and partitions', async (t) => {
    const cols = (await lake.conn.runAndReadAll('DESCRIBE samples')).getRowObjectsJson() as {
      column_name: string;
      column_type: string;
    }[];
    t.same(
      cols.map((c) => [c.column_name, c.column_type]),
      [...table.columns, ...table.partitionKeys].map((c) => [c.Name, duckDbType(c.Type)]),
      'column names, order and types as the Glue table declares them',
    );
    const n = (await lake.query('SELECT count(*) AS n FROM samples', NOW))[0]?.n;
    t.equal(
      Number(n),
      files.reduce((s, f) => s + f.rows.length, 0),
      'every row written is read back',
    );
    const dts = await lake.query('SELECT DISTINCT dt FROM samples ORDER BY dt', NOW);
    t.ok(dts.length >= 3, `rows in ${dts.length} dt= partitions`);
  });

  const dashboardHours = async (meter: string, from: number) =>
    (await dash.history.hours(meter, from, NOW + HOUR_MS)).map((b: Bucket) => ({
      t: b.t,
      ...bucketEnergy(b),
      breaks: b.breaks ?? 0,
    }));
  const asMs = (v: unknown) => Date.parse(`${String(v).replace(' ', 'T')}Z`);
  const whOrNull = (v: unknown) => (v === null || v === undefined ? null : wh(Number(v)));

  t.test('energy per thing per hour', async (t) => {
    const rows = await lake.query(byName('energy per thing per hour'), NOW);
    const from = hourOf(NOW - 48 * HOUR_MS);
    for (const meter of METERS) {
      const sql = rows
        .filter((r) => r.meter === meter && r.thing === THING)
        .map((r) => ({
          t: asMs(r.hour),
          importWh: whOrNull(r.import_kwh),
          exportWh: whOrNull(r.export_kwh),
          breaks: Number(r.counter_breaks),
        }));
      const box = (await dashboardHours(meter, from)).map((b) => ({
        t: b.t,
        importWh: b.importKwh === null ? null : wh(b.importKwh),
        exportWh: b.exportKwh === null ? null : wh(b.exportKwh),
        breaks: b.breaks,
      }));
      t.equal(sql.length, 49, `${meter}: 49 hours (the one holding now − 48 h, to now)`);
      t.same(sql, box, `${meter}: kWh per hour to the Wh, and counter breaks, as on the box`);
      // What the dashboard serves: its 48-hour document is the same hours.
      const served = (await historyDoc(dash.history, [meter], NOW)).meters[meter]?.hours ?? [];
      for (const [ht, imp, exp] of served) {
        const s = sql.find((x) => x.t === ht);
        t.same(
          [s?.importWh, s?.exportWh],
          [imp === null ? null : wh(imp), exp === null ? null : wh(exp)],
          `${meter} ${new Date(ht).toISOString()}: /api/history agrees`,
        );
      }
    }
    const total = rows.reduce((s, r) => s + Number(r.import_kwh ?? 0), 0);
    t.ok(total > 10, `some energy at all (${total.toFixed(3)} kWh)`);

    // The data exercise the partial reads: the same query with NULLs respected loses steps.
    const respectNulls = byName('energy per thing per hour').replaceAll(' IGNORE NULLS OVER', ' OVER');
    const naive = await lake.query(respectNulls, NOW);
    const differ = naive.filter((r, i) => whOrNull(r.import_kwh) !== whOrNull(rows[i]?.import_kwh)).length;
    t.ok(differ >= 5, `without IGNORE NULLS ${differ} hours would differ`);
    // And the other rules matter on these data: the reset and the swap, the wrong-clock samples, duplicates.
    t.equal(
      rows.reduce((s, r) => s + Number(r.counter_breaks), 0),
      2,
      'one counter reset and one meter swap, each a break',
    );
    const withUnsynced = await lake.query(
      byName('energy per thing per hour').replaceAll('AND bitwise_and(flags, 2) = 0', ''),
      NOW,
    );
    t.not(
      JSON.stringify(withUnsynced.map((r) => whOrNull(r.import_kwh))),
      JSON.stringify(rows.map((r) => whOrNull(r.import_kwh))),
      'counting clock-unsynchronised samples would change the hours',
    );
    const withDuplicates = await lake.query(
      byName('energy per thing per hour').replace('SELECT DISTINCT', 'SELECT'),
      NOW,
    );
    t.ok(
      withDuplicates.reduce((s, r) => s + Number(r.readings), 0) >
        rows.reduce((s, r) => s + Number(r.readings), 0),
      'the lake holds duplicate rows, which the query removes',
    );
  });

  t.test('daily kWh per meter', async (t) => {
    const rows = await lake.query(byName('daily kWh per meter'), NOW);
    for (const meter of METERS) {
      const days = await dash.history.days(meter, NOW - 31 * 86_400_000, NOW + HOUR_MS);
      t.same(
        rows
          .filter((r) => r.meter === meter)
          .map((r) => [
            String(r.day),
            whOrNull(r.import_kwh),
            whOrNull(r.export_kwh),
            Number(r.counter_breaks),
          ]),
        days.map((d) => {
          const e = bucketEnergy(d);
          return [
            new Date(d.t).toISOString().slice(0, 10),
            e.importKwh === null ? null : wh(e.importKwh),
            e.exportKwh === null ? null : wh(e.exportKwh),
            d.breaks ?? 0,
          ];
        }),
        `${meter}: kWh per UTC day as the dashboard's days`,
      );
    }
  });

  t.test('peak power per day', async (t) => {
    const rows = await lake.query(byName('peak power per day'), NOW);
    for (const meter of METERS) {
      const days = await dash.history.days(meter, NOW - 31 * 86_400_000, NOW + HOUR_MS);
      const sql = rows.filter((r) => r.meter === meter);
      t.same(
        sql.map((r) => [String(r.day), Number(r.peak_w)]),
        days.map((d) => [new Date(d.t).toISOString().slice(0, 10), d.p?.max]),
        `${meter}: daily peak W as the dashboard's`,
      );
      for (const r of sql) {
        const at = asMs(r.peak_at);
        const x = taken.find((y) => y.sent?.meter === meter && y.sent.ts === at)?.sent?.values.power_w;
        t.equal(
          x && valueToNumber(x),
          Number(r.peak_w),
          `${meter} peak_at ${r.peak_at}: that reading's power`,
        );
      }
    }
  });

  t.test('data gaps per device', async (t) => {
    const rows = await lake.query(byName('data gaps per device'), NOW);
    const expected: [string, number, number][] = [];
    for (const meter of METERS) {
      const ts = [
        ...new Set(
          taken
            .filter((x) => x.sent?.meter === meter && !(x.sent.flags & QualityFlag.clockUnsynced))
            .map((x) => x.sent?.ts as number),
        ),
      ].sort((a, b) => a - b);
      for (let i = 1; i < ts.length; i++)
        if ((ts[i] as number) - (ts[i - 1] as number) > 300_000)
          expected.push([meter, ts[i - 1] as number, ((ts[i] as number) - (ts[i - 1] as number)) / 1000]);
    }
    t.equal(expected.length, 2 * METERS.length, 'the outage and the lost readings, per meter');
    t.same(
      rows.map((r) => [r.meter, asMs(r.gap_start), Number(r.gap_seconds)]).sort(),
      expected.sort(),
      'the gaps the lake really has, clock-unsynchronised samples left out',
    );
  });

  t.test('sequence gaps per device', async (t) => {
    const rows = await lake.query(byName('sequence gaps per device'), NOW);
    const lost = taken.filter((x) => !x.sent).map((x) => x.box.seq);
    t.equal(lost.length, LOST[1] * METERS.length, 'ten minutes of every meter lost');
    const first = Math.min(...lost);
    const last = Math.max(...lost);
    t.equal(last - first + 1, lost.length, 'one contiguous range of sequence numbers');
    const before = taken.find((x) => x.box.seq === first - 1)?.sent?.ts;
    const after = taken.find((x) => x.box.seq === last + 1)?.sent?.ts;
    t.same(
      rows.map((r) => [
        r.device,
        Number(r.first_missing_seq),
        Number(r.last_missing_seq),
        Number(r.missing),
        asMs(r.last_before),
        asMs(r.first_after),
      ]),
      [[THING, first, last, lost.length, before, after]],
      'exactly the lost range; the outage (nothing read) and duplicates are no gap',
    );
  });
});

async function openLakeAfterWrite(root: string, files: LakeFile[]) {
  const doc = await readLakeTemplate();
  const table = glueSamplesTable(doc);
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await writeLakeParquet(conn, root, table, files);
  conn.closeSync();
  db.closeSync();
  return openLake(root, table);
}

t.test('the Trino → DuckDB translation', async (t) => {
  const sql =
    "SELECT lag(i) IGNORE NULLS OVER (ORDER BY ts) FROM samples WHERE ts >= current_timestamp - INTERVAL '1' HOUR AND dt >= date_format(current_date, '%Y-%m-%d')";
  t.equal(
    athenaToDuckDb(sql, Date.UTC(2025, 0, 2, 3, 4, 5, 6)),
    "SELECT lag(i IGNORE NULLS) OVER (ORDER BY ts) FROM samples WHERE ts >= TIMESTAMP '2025-01-02 03:04:05.006' - INTERVAL '1' HOUR AND dt >= date_format(DATE '2025-01-02', '%Y-%m-%d')",
    'now pinned; null treatment moved inside the call; nothing else touched',
  );
  t.throws(
    () => athenaToDuckDb('SELECT first_value(x) IGNORE NULLS OVER (ORDER BY y) FROM s', 0),
    'a form the translation does not cover is refused, not passed on',
  );
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  t.teardown(() => {
    conn.closeSync();
    db.closeSync();
  });
  await installTrinoMacros(conn);
  const row = (
    await conn.runAndReadAll(
      `SELECT element_at(MAP {'a': 1.5::DOUBLE}, 'a') AS hit, element_at(MAP {'a': 1.5::DOUBLE}, 'b') AS miss,
              date_format(DATE '2025-01-02' - INTERVAL '3' DAY, '%Y-%m-%d') AS day,
              bitwise_and(6, 2) AS b2, bitwise_and(5, 2) AS b0`,
    )
  ).getRowObjectsJson()[0];
  // Trino: element_at(map, key) is the value, NULL for a missing key; date_format('%Y-%m-%d') as MySQL's.
  t.same(row, { hit: 1.5, miss: null, day: '2024-12-30', b2: 2, b0: 0 }, 'macros mean what Trino means');
  const lagged = (
    await conn.runAndReadAll(
      athenaToDuckDb(
        'SELECT x - lag(x) IGNORE NULLS OVER (ORDER BY i) AS d FROM (VALUES (1, 1.0), (2, NULL), (3, 3.5)) t(i, x) ORDER BY i',
        0,
      ),
    )
  ).getRowObjectsJson();
  t.same(
    lagged.map((r) => (r.d === null ? null : Number(r.d))),
    [null, null, 2.5],
    'IGNORE NULLS: the step after a NULL reaches back to the last value',
  );
});
