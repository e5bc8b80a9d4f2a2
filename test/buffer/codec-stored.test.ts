/**
 * The publisher's read path: `decodeHead` + `decodeStoredValues` must give exactly what
 * `decodeSample` gives — same head, same values and missing channels in the same order, the same rejections —
 * without building a `Value` per value.
 */
import t from 'tap';
import { decodeHead, decodeSample, decodeStoredValues, encodeSample } from '../../buffer/sample-codec.js';
import { channelById, channelByName } from '../../cloud-contract/channels.js';
import type { ValueSink } from '../../cloud-contract/batch.js';
import { ContractError } from '../../cloud-contract/errors.js';
import type { Sample, SampleInput, Value } from '../../cloud-contract/sample.js';
import { seededRandom } from '../../drivers/simulator/random.js';

const samples: SampleInput[] = [
  {
    meter: 'main',
    ts: 1_767_225_600_000,
    flags: 0,
    values: {
      energy_import_kwh: { type: 'int', mantissa: 12_345_678, exponent: -3 },
      power_w: { type: 'int', mantissa: -153, exponent: 0 },
      voltage_l1_v: { type: 'f32', mantissa: Math.fround(230.4), exponent: 0 },
      frequency_hz: { type: 'f64', mantissa: 49.987, exponent: -3 },
      'vendor.odd_register': { type: 'int', mantissa: 7, exponent: 40 },
      big_exp: { type: 'f32', mantissa: -0, exponent: -70_000 },
    },
    missing: ['current_l3_a', 'x.unknown'],
  },
  {
    meter: 'flat-ü',
    ts: -5,
    flags: 3,
    values: {},
    clock: { monoMs: 8_123_456, boot: '3f0c1d2e-0000-4000-8000-000000000001' },
  },
  {
    meter: 'pv',
    ts: 5,
    flags: 2,
    values: { power_l1_w: { type: 'f32', mantissa: NaN, exponent: 1 } },
    missing: ['gas_m3'],
    clock: { monoMs: -3, boot: 'b' },
  },
];

/** Rebuilds a sample from the sink calls: names for ids, the values in call order. */
function recorded(seq: number, bytes: Buffer): Pick<Sample, 'values' | 'missing'> {
  const values: Record<string, Value> = {};
  const missing: string[] = [];
  const name = (ch: number | string) => (typeof ch === 'number' ? channelById(ch)!.name : ch);
  decodeStoredValues(
    { seq, bytes },
    {
      value: (ch, type, mantissa, exponent) => void (values[name(ch)] = { type, mantissa, exponent }),
      missing: (ch) => void missing.push(name(ch)),
    },
  );
  return missing.length > 0 ? { values, missing } : { values };
}

t.test('head + stored values = decodeSample, field for field and in order', async (t) => {
  for (const [i, s] of samples.entries()) {
    const bytes = encodeSample(s);
    const full = decodeSample(i + 1, bytes);
    const head = decodeHead(i + 1, bytes);
    const { values, missing } = recorded(i + 1, bytes);
    t.same(
      { seq: head.seq, meter: head.meter, ts: head.ts, flags: head.flags, clock: head.clock },
      { seq: full.seq, meter: full.meter, ts: full.ts, flags: full.flags, clock: full.clock },
      `sample ${i}: head`,
    );
    t.equal(head.bytes, bytes, 'the head keeps the stored bytes themselves (no copy)');
    t.same(Object.keys(values), Object.keys(full.values), `sample ${i}: channels in stored order`);
    for (const [k, v] of Object.entries(full.values)) {
      const got = values[k]!;
      t.ok(
        got.type === v.type && got.exponent === v.exponent && Object.is(got.mantissa, v.mantissa),
        `sample ${i} ${k}: ${JSON.stringify(got)} is ${JSON.stringify(v)} bit for bit`,
      );
    }
    t.same(missing, full.missing, `sample ${i}: missing`);
    t.notOk('clock' in head && head.clock === undefined, 'no clock key on a synchronised sample');
  }
  t.equal(decodeHead(1, encodeSample(samples[0]!)).clock, undefined);
});

t.test('registry channels reach the sink as ids, others as names', async (t) => {
  const calls: (number | string)[] = [];
  decodeStoredValues(
    { seq: 1, bytes: encodeSample(samples[0]!) },
    { value: (ch) => void calls.push(ch), missing: (ch) => void calls.push(ch) },
  );
  const names = [...Object.keys(samples[0]!.values), ...samples[0]!.missing!];
  t.same(
    calls,
    names.map((n) => channelByName(n)?.id ?? n),
  );
  t.same(
    calls.filter((c) => typeof c === 'string'),
    ['vendor.odd_register', 'big_exp', 'x.unknown'],
  );
});

t.test(
  'an error the sink throws passes through as it is; bytes that do not decode are BUFFER_DECODE',
  async (t) => {
    const bytes = encodeSample(samples[0]!);
    const err = new ContractError('BAD_SAMPLE', 'no', {});
    const throwing: ValueSink = {
      value: () => {
        throw err;
      },
      missing: () => undefined,
    };
    t.throws(() => decodeStoredValues({ seq: 9, bytes }, throwing), err);
    const missingThrows: ValueSink = {
      value: () => undefined,
      missing: () => {
        throw err;
      },
    };
    t.throws(() => decodeStoredValues({ seq: 9, bytes }, missingThrows), err);
    const quiet: ValueSink = { value: () => undefined, missing: () => undefined };
    t.throws(() => decodeStoredValues({ seq: 9, bytes: bytes.subarray(0, 20) }, quiet), {
      code: 'BUFFER_DECODE',
    });
    t.throws(() => decodeHead(9, bytes.subarray(0, bytes.length - 1)), { code: 'BUFFER_DECODE' });
  },
);

t.test('decodeHead and decodeStoredValues reject exactly what decodeSample rejects', async (t) => {
  const rnd = seededRandom(21);
  let rejected = 0;
  let accepted = 0;
  const mismatches: string[] = [];
  const quiet: ValueSink = { value: () => undefined, missing: () => undefined };
  const outcome = (f: () => unknown): string => {
    try {
      f();
      return 'ok';
    } catch (err) {
      return `${(err as { code?: string }).code}: ${(err as Error).message}`;
    }
  };
  for (let i = 0; i < 20_000; i++) {
    const b = Buffer.from(encodeSample(samples[i % samples.length]!));
    let bytes: Buffer;
    if (i % 3 === 0) bytes = b.subarray(0, Math.floor(rnd() * b.length));
    else if (i % 3 === 1) {
      b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      bytes = b;
    } else bytes = Buffer.concat([b, Buffer.from([Math.floor(rnd() * 256)])]);
    const want = outcome(() => decodeSample(i, bytes));
    const head = outcome(() => decodeHead(i, bytes));
    const values = outcome(() => decodeStoredValues({ seq: i, bytes }, quiet));
    if (want === 'ok') accepted++;
    else rejected++;
    if (head !== want || values !== want)
      mismatches.push(`${bytes.toString('hex')}: ${want} / head ${head} / values ${values}`);
    if (want === 'ok') {
      const full = decodeSample(i, bytes);
      const got = recorded(i, bytes);
      if (
        JSON.stringify(got.values) !== JSON.stringify(full.values) ||
        JSON.stringify(got.missing) !== JSON.stringify(full.missing)
      )
        mismatches.push(`${bytes.toString('hex')}: values differ`);
    }
  }
  t.same(mismatches.slice(0, 5), [], 'no input where they disagree');
  t.ok(
    rejected > 1000 && accepted > 1000,
    `both outcomes exercised (${rejected} rejected, ${accepted} accepted)`,
  );
});
