import t from 'tap';
import { checkSample, decodeSample, encodeSample } from '../../buffer/sample-codec.js';
import type { SampleInput } from '../../cloud-contract/sample.js';
import { seededRandom } from '../../drivers/simulator/random.js';

// checkSample is the buffer's verifying scan on open: it must accept and reject exactly what decodeSample
// does (a sample it lets through must be readable later), and give the same ts.
const samples: SampleInput[] = [
  {
    meter: 'main',
    ts: 1_767_225_600_000,
    flags: 0,
    values: {
      energy_import_wh: { type: 'int', mantissa: 12_345_678, exponent: 0 },
      power_w: { type: 'int', mantissa: -153, exponent: 0 },
      voltage_l1_v: { type: 'f32', mantissa: Math.fround(230.4), exponent: 0 },
      frequency_hz: { type: 'f64', mantissa: 49.987, exponent: -3 },
      'vendor.odd_register': { type: 'int', mantissa: 7, exponent: 40 },
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
];

t.test('checkSample returns the ts of every valid sample', async (t) => {
  for (const s of samples) t.equal(checkSample(1, encodeSample(s)), s.ts);
});

t.test('checkSample rejects exactly what decodeSample rejects, with the same coded error', async (t) => {
  const rnd = seededRandom(12);
  let rejected = 0;
  let accepted = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const base = encodeSample(samples[i % samples.length]!);
    const b = Buffer.from(base);
    const kind = i % 3;
    let bytes: Buffer;
    if (kind === 0)
      bytes = b.subarray(0, Math.floor(rnd() * b.length)); // truncated
    else if (kind === 1) {
      b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256); // one byte changed
      bytes = b;
    } else bytes = Buffer.concat([b, Buffer.from([Math.floor(rnd() * 256)])]); // a byte appended
    let decoded: { ts: number } | Error;
    let checked: number | Error;
    try {
      decoded = decodeSample(i, bytes);
    } catch (err) {
      decoded = err as Error;
    }
    try {
      checked = checkSample(i, bytes);
    } catch (err) {
      checked = err as Error;
    }
    if (decoded instanceof Error) {
      rejected++;
      const same =
        checked instanceof Error &&
        checked.message === decoded.message &&
        (checked as Error & { code?: string }).code === 'BUFFER_DECODE';
      if (!same) mismatches.push(`${bytes.toString('hex')}: decode rejects, check gave ${String(checked)}`);
    } else {
      accepted++;
      if (checked !== decoded.ts)
        mismatches.push(`${bytes.toString('hex')}: ts ${decoded.ts}, check gave ${String(checked)}`);
    }
  }
  t.same(mismatches.slice(0, 5), [], 'no input where the two disagree');
  t.ok(
    rejected > 1000 && accepted > 1000,
    `both outcomes exercised (${rejected} rejected, ${accepted} accepted)`,
  );
});
