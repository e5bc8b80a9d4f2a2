import t from 'tap';
import { checkSample, decodeHead, decodeSample, encodeSample } from '../../buffer/sample-codec.js';
import type { StoredSample } from '../../buffer/reading-buffer.js';
import type { Sample, SampleInput } from '../../cloud-contract/sample.js';
import { seededRandom } from '../../drivers/simulator/random.js';

// checkSample is the buffer's verifying scan on open, decodeHead the publisher's read: each must accept and
// reject exactly what decodeSample does (a sample they let through must be readable later), and give the same
// ts (and head). Both take a flattened walk for bytes that decode and leave everything else to the one parser.
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
  {
    // a varint channel tag past one byte (a long custom name), the largest ints, a clock with a negative monoMs
    meter: 'pv',
    ts: 1_767_225_600_123,
    flags: 0x1_0000,
    values: {
      ['vendor.' + 'x'.repeat(70)]: { type: 'int', mantissa: Number.MAX_SAFE_INTEGER, exponent: -2 },
      energy_export_wh: { type: 'int', mantissa: -Number.MAX_SAFE_INTEGER, exponent: -700 },
      power_l1_w: { type: 'f32', mantissa: Math.fround(-0.5), exponent: 1 },
    },
    missing: ['voltage_l2_v'],
    clock: { monoMs: -1, boot: '' },
  },
];

t.test('checkSample returns the ts of every valid sample, decodeHead its head', async (t) => {
  for (const s of samples) {
    const bytes = encodeSample(s);
    t.equal(checkSample(1, bytes), s.ts);
    t.same(decodeHead(7, bytes), {
      seq: 7,
      meter: s.meter,
      ts: s.ts,
      flags: s.flags,
      bytes,
      ...(s.clock ? { clock: s.clock } : {}),
    });
  }
});

t.test(
  'checkSample and decodeHead reject exactly what decodeSample rejects, with the same coded error',
  async (t) => {
    const rnd = seededRandom(12);
    let rejected = 0;
    let accepted = 0;
    const mismatches: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const base = encodeSample(samples[i % samples.length]!);
      const b = Buffer.from(base);
      const kind = Math.floor(i / samples.length) % 3;
      let bytes: Buffer;
      if (kind === 0)
        bytes = b.subarray(0, Math.floor(rnd() * b.length)); // truncated
      else if (kind === 1) {
        b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256); // one byte changed
        bytes = b;
      } else bytes = Buffer.concat([b, Buffer.from([Math.floor(rnd() * 256)])]); // a byte appended
      const attempt = <T>(f: () => T): T | Error => {
        try {
          return f();
        } catch (err) {
          return err as Error;
        }
      };
      const decoded = attempt(() => decodeSample(i, bytes));
      const checked = attempt(() => checkSample(i, bytes));
      const head = attempt(() => decodeHead(i, bytes));
      if (decoded instanceof Error) {
        rejected++;
        for (const [what, got] of [
          ['check', checked],
          ['head', head],
        ] as const) {
          const same =
            got instanceof Error &&
            got.message === decoded.message &&
            (got as Error & { code?: string }).code === 'BUFFER_DECODE';
          if (!same) mismatches.push(`${bytes.toString('hex')}: decode rejects, ${what} gave ${String(got)}`);
        }
      } else {
        accepted++;
        if (checked !== decoded.ts)
          mismatches.push(`${bytes.toString('hex')}: ts ${decoded.ts}, check gave ${String(checked)}`);
        const { seq, meter, ts, flags, clock } = decoded as Sample;
        const want = JSON.stringify({ seq, meter, ts, flags, ...(clock ? { clock } : {}) });
        const got = head instanceof Error ? String(head) : JSON.stringify({ ...head, bytes: undefined });
        if (got !== want || (head as StoredSample).bytes !== bytes)
          mismatches.push(`${bytes.toString('hex')}: head ${want}, decodeHead gave ${got}`);
      }
    }
    t.same(mismatches.slice(0, 5), [], 'no input where the two disagree');
    t.ok(
      rejected > 1000 && accepted > 1000,
      `both outcomes exercised (${rejected} rejected, ${accepted} accepted)`,
    );
  },
);
