import t from 'tap';
import type { Test } from 'tap';
import {
  QualityFlag,
  decodeBatchDocument,
  encodeBatch,
  f32Value,
  f64Value,
  intValue,
  isContractError,
  type Sample,
} from '../../cloud-contract/index.js';
import { prng, threePhaseSeries } from './fixtures.js';

const device = 'apt-12-meterbox';

function roundTrip(samples: Sample[]): Sample[] {
  const r = decodeBatchDocument(encodeBatch({ device, samples }));
  if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
  return [...r.batch.samples];
}

/** Bit-exact comparison: Object.is per mantissa (distinguishes -0 and NaN), same type and exponent. */
function assertBitExact(t: Test, got: readonly Sample[], want: readonly Sample[]): void {
  t.equal(got.length, want.length, 'same sample count');
  want.forEach((w, i) => {
    const g = got[i] as Sample;
    t.same(
      { meter: g.meter, ts: g.ts, seq: g.seq, flags: g.flags, missing: g.missing },
      { meter: w.meter, ts: w.ts, seq: w.seq, flags: w.flags, missing: w.missing },
    );
    t.same(Object.keys(g.values).sort(), Object.keys(w.values).sort(), `sample ${w.seq} channels`);
    for (const [name, v] of Object.entries(w.values)) {
      const gv = g.values[name];
      if (
        gv === undefined ||
        gv.type !== v.type ||
        gv.exponent !== v.exponent ||
        !Object.is(gv.mantissa, v.type === 'int' && v.mantissa === 0 ? 0 : v.mantissa)
      )
        t.fail(`sample ${w.seq} ${name}: got ${JSON.stringify(gv)} want ${JSON.stringify(v)}`);
    }
  });
}

t.test('a realistic 3-phase series round-trips bit for bit', async (t) => {
  for (const precision of ['meter', 'noisy'] as const) {
    const samples = threePhaseSeries({ count: 2000, precision, seed: 3 });
    assertBitExact(t, roundTrip(samples), samples);
  }
});

t.test('edge values: f32 specials, DSMR decimals, safe-integer extremes, negatives, f64', async (t) => {
  const f32s = [
    0,
    -0,
    1.5,
    -230.1,
    3.4028234663852886e38,
    -3.4028234663852886e38,
    1e-45,
    NaN,
    Infinity,
    -Infinity,
  ];
  const ints = [0, -1, 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 12345678, -12345678, 2 ** 40];
  const f64s = [0.1, -0.1, 1e300, -1e-300, Math.PI, 230.12345678901, 5e-324, NaN, -0];
  const samples: Sample[] = [];
  const n = Math.max(f32s.length, ints.length, f64s.length);
  for (let i = 0; i < n; i++) {
    const values: Record<string, ReturnType<typeof intValue>> = {};
    if (i < f32s.length) values.voltage_l1_v = f32Value(f32s[i] as number);
    if (i < ints.length) values.energy_import_kwh = intValue(ints[i] as number, -3);
    if (i < f64s.length) values.power_w = f64Value(f64s[i] as number, 3);
    // DSMR: `012345.678*kWh` is mantissa 12345678, exponent -3; gas with exponent -3 too.
    values.energy_import_t1_kwh = intValue(12345678 + i, -3);
    values.gas_m3 = intValue(4567890 - i * 7, -3);
    samples.push({ meter: 'grid', ts: 1_700_000_000_000 + i * 10_000, seq: 100 + i * 3, values, flags: 0 });
  }
  assertBitExact(t, roundTrip(samples), samples);
});

t.test(
  'flags, partial samples with missing channels, custom channels, multiple meters interleaved',
  async (t) => {
    const rand = prng(11);
    const samples: Sample[] = [];
    let ts = Date.UTC(2025, 5, 1);
    for (let seq = 1; seq <= 600; seq++) {
      const meter = ['main', 'pv', 'grid'][seq % 3] as string;
      const partial = rand() < 0.1;
      const values: Record<string, ReturnType<typeof intValue>> = {
        power_w: f32Value(Math.round(rand() * 50000) / 10),
      };
      if (!partial) values.voltage_l1_v = f32Value(230 + Math.round(rand() * 20) / 10);
      if (meter === 'pv') values.inverter_temp_c = intValue(Math.round(rand() * 600), -1);
      // exponent change mid-stream (a kW register after a profile switch) becomes its own column
      values.energy_export_kwh = seq < 300 ? intValue(1000 + seq, 0) : intValue(1_000_000 + seq, -3);
      samples.push({
        meter,
        ts,
        seq,
        values,
        flags: (partial ? QualityFlag.partial : 0) | (seq < 50 ? QualityFlag.clockUnsynced : 0),
        ...(partial ? { missing: ['voltage_l1_v', 'custom_thing'] } : {}),
      });
      // clock steps backwards once: order stays by seq, ts as given
      ts += seq === 200 ? -3_600_000 : 1000 + Math.round(rand() * 10);
    }
    const back = roundTrip(samples);
    assertBitExact(t, back, samples);
    const r = decodeBatchDocument(encodeBatch({ device, samples }));
    t.ok(r.ok);
    if (r.ok) {
      t.same(r.batch.meters, ['pv', 'grid', 'main']);
      t.equal(r.batch.firstSeq, 1);
      t.equal(r.batch.lastSeq, 600);
      t.equal(r.batch.device, device);
    }
  },
);

t.test('a single sample, and samples with no values at all', async (t) => {
  const one: Sample[] = [{ meter: 'm', ts: 0, seq: 0, values: {}, flags: QualityFlag.meterError }];
  assertBitExact(t, roundTrip(one), one);
  const two: Sample[] = [
    { meter: 'm', ts: 5, seq: 7, values: { power_w: intValue(-5) }, flags: 0 },
    { meter: 'm', ts: 5, seq: 8, values: {}, flags: 0 },
  ];
  assertBitExact(t, roundTrip(two), two);
});

t.test('encoder refuses what it cannot carry losslessly, with BAD_SAMPLE / BAD_THING_NAME', async (t) => {
  const ok: Sample = { meter: 'm', ts: 1000, seq: 1, values: { power_w: intValue(1) }, flags: 0 };
  const bad: [string, unknown][] = [
    ['seq not increasing', [ok, { ...ok }]],
    [
      'non-f32 mantissa in f32',
      [{ ...ok, values: { power_w: { type: 'f32', mantissa: 0.1, exponent: 0 } } }],
    ],
    ['unsafe int', [{ ...ok, values: { power_w: { type: 'int', mantissa: 2 ** 60, exponent: 0 } } }]],
    ['fractional int', [{ ...ok, values: { power_w: { type: 'int', mantissa: 1.5, exponent: 0 } } }]],
    ['unknown type', [{ ...ok, values: { power_w: { type: 'f16', mantissa: 1, exponent: 0 } } }]],
    ['huge exponent', [{ ...ok, values: { power_w: { type: 'int', mantissa: 1, exponent: 1000 } } }]],
    ['bad channel name', [{ ...ok, values: { 'Power W': intValue(1) } }]],
    ['negative ts', [{ ...ok, ts: -1 }]],
    ['bad meter id', [{ ...ok, meter: 'a b' }]],
    ['bad flags', [{ ...ok, flags: -1 }]],
    ['duplicate missing', [{ ...ok, missing: ['power_w', 'power_w'] }]],
    ['empty batch', []],
  ];
  for (const [what, samples] of bad) {
    t.throws(() => encodeBatch({ device, samples: samples as Sample[] }), { code: 'BAD_SAMPLE' }, what);
  }
  t.throws(() => encodeBatch({ device: 'no spaces', samples: [ok] }), { code: 'BAD_THING_NAME' });
  try {
    encodeBatch({ device, samples: [ok, ok] });
  } catch (err) {
    t.ok(isContractError(err, 'BAD_SAMPLE'), 'type guard');
  }
});
