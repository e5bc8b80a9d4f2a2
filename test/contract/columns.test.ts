/**
 * The batch document's encoder gathers samples in columns (`ColumnSet`). These tests pin its bytes:
 * the golden hashes were taken from the encoder before the change (one object per value), so wire format v1
 * has not moved; and every way into the columns — sample objects, a sink fed from the buffer's stored bytes,
 * prefixes, truncation — gives the very same document.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { decodeHead, decodeStoredValues, encodeSample } from '../../buffer/sample-codec.js';
import { ColumnSet, fillFromSample, type ValueSink } from '../../cloud-contract/batch.js';
import {
  BatchBuilder,
  createBatchSigner,
  decodeBatchMessage,
  encodeBatch,
  type Sample,
} from '../../cloud-contract/index.js';
import { f32Value, f64Value } from '../../cloud-contract/sample.js';
import { makeDevice } from './fixtures.js';
import { goldenSets } from './golden-sets.js';

const device = 'apt-12-meterbox';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** [bytes, sha256] of encodeBatch for each golden set, from the row-by-row encoder that preceded the column encoder. */
const GOLDEN: Record<string, [number, string]> = {
  'three-phase 600, meter precision': [
    17107,
    '53ea0928222b4cbe0a18322d615c935d11228d34e6c2900e1083e76da2d5a6f1',
  ],
  'three-phase 300, noisy float32': [
    26675,
    '20440d9253b022366adf712684fcd7d88d230d271d426f56a428cc946b6c618e',
  ],
  'one sample': [301, 'b1a398b7be380542d3915d40e601a3494806f05893a6fa371ded6bbfb4d1d335'],
  'two samples': [330, '1509ab84e3810c9fcf73bfe765db4eeb428244e8b3827f5dbe53d99c7544780f'],
  'mixed 400 (4 meters, custom channels, missing, type/exponent changes)': [
    15885,
    '4d348e766dfb4a1bfb4c34d617791218f4e5419439ed9157a043e92c4aa12e31',
  ],
  'mixed 57': [2932, '8505a9cc4d81a29a81d991cfe5d766bb77e002851417ece4a86876f01327fcb4'],
  'mixed 3': [340, 'cb7258c8f5936f054fe52b51331ac1bae435ede31e7232c352773f25f7f9db0d'],
};

/** The samples as the agent's buffer hands them to the publisher: stored bytes, head decoded. */
function stored(samples: readonly Sample[]) {
  return samples.map((s) => decodeHead(s.seq, encodeSample(s)));
}

t.test('the document bytes are those of the row-by-row encoder (golden)', async (t) => {
  for (const [name, samples] of goldenSets()) {
    const doc = encodeBatch({ device, samples });
    t.same([doc.length, sha(doc)], GOLDEN[name], name);
  }
});

t.test('columns filled from stored bytes give the same document as the sample objects', async (t) => {
  for (const [name, samples] of goldenSets()) {
    const set = new ColumnSet();
    for (const h of stored(samples)) set.add(h, (sink) => decodeStoredValues(h, sink), true);
    t.equal(sha(set.write(device)), GOLDEN[name]![1], name);
  }
});

t.test('a prefix is written as the batch of just those samples; truncate forgets the rest', async (t) => {
  for (const [name, samples] of goldenSets()) {
    const set = new ColumnSet();
    for (const s of samples) set.add(s, (sink) => fillFromSample(s, sink), false);
    const n = samples.length;
    for (const k of new Set([1, 2, Math.floor(n / 3), n - 1, n].filter((k) => k >= 1 && k <= n))) {
      const want = sha(encodeBatch({ device, samples: samples.slice(0, k) }));
      t.equal(sha(set.write(device, k)), want, `${name}: prefix ${k}`);
    }
    const k = Math.max(1, Math.floor(n / 2));
    set.truncate(k);
    t.equal(set.count, k);
    t.equal(
      sha(set.write(device)),
      sha(encodeBatch({ device, samples: samples.slice(0, k) })),
      `${name}: truncated`,
    );
    for (const s of samples.slice(k)) set.add(s, (sink) => fillFromSample(s, sink), false);
    t.equal(sha(set.write(device)), GOLDEN[name]![1], `${name}: truncated, then the rest added again`);
  }
});

t.test('a sample the contract cannot carry is refused whole: the columns are as before', async (t) => {
  const [, samples] = goldenSets()[4]!;
  const head = samples.slice(0, 10);
  const set = new ColumnSet();
  for (const s of head) set.add(s, (sink) => fillFromSample(s, sink), true);
  const before = sha(set.write(device));
  const next = samples[10]!;
  const cases: [string, (sink: ValueSink) => void][] = [
    [
      'exponent out of ±64',
      (sink) => (sink.value('power_w', 'int', 5, 0), sink.value('gas_m3', 'int', 1, 65)),
    ],
    ['f32 not a float32', (sink) => sink.value('power_w', 'f32', 0.1, 0)],
    ['int not safe', (sink) => sink.value('new_channel', 'int', 2 ** 53, 0)],
    ['bad custom name', (sink) => sink.value('Bad-Name', 'int', 1, 0)],
    ['unknown registry id', (sink) => sink.value(9999, 'int', 1, 0)],
    ['a channel twice', (sink) => (sink.value('power_w', 'int', 1, 0), sink.value('power_w', 'f32', 1, 0))],
    [
      'a channel twice by id and name',
      (sink) => (sink.value(1, 'int', 1, 0), sink.value('voltage_l1_v', 'int', 1, 0)),
    ],
    ['missing twice', (sink) => (sink.missing('gas_m3'), sink.missing('gas_m3'))],
    ['bad missing name', (sink) => sink.missing('9x')],
  ];
  for (const [why, fill] of cases) {
    t.throws(
      () => set.add({ ...next, meter: `fresh-${why.length}` }, fill, true),
      { code: 'BAD_SAMPLE' },
      why,
    );
    t.throws(() => set.add(next, fill, true), { code: 'BAD_SAMPLE' }, `${why} (existing block)`);
    t.equal(set.count, 10, `${why}: count unchanged`);
    t.equal(sha(set.write(device)), before, `${why}: the document is as before`);
  }
  // Without validation (sample objects already checked by validateSample) a channel given twice still throws.
  t.throws(() => set.add(next, (sink) => (sink.value(1, 'int', 1, 0), sink.value(1, 'int', 2, 0)), false), {
    code: 'BAD_SAMPLE',
  });
  set.add(next, (sink) => fillFromSample(next, sink), true);
  t.equal(
    sha(set.write(device)),
    sha(encodeBatch({ device, samples: samples.slice(0, 11) })),
    'then it goes on',
  );
});

t.test('BatchBuilder.tryAddWith: the same batches and errors as tryAdd', async (t) => {
  const dev = await makeDevice();
  const signer = createBatchSigner({ privateKey: dev.issued.keyPem, certDer: dev.issued.certDer });
  const resolveKey = () => dev.issued.certDer;
  const [, samples] = goldenSets()[4]!;
  const heads = stored(samples);
  for (const maxBytes of [512, 2000, 20_000]) {
    const a = new BatchBuilder({ device, signer, maxBytes });
    const b = new BatchBuilder({ device, signer, maxBytes });
    let i = 0;
    while (i < samples.length) {
      let n = 0;
      while (i + n < samples.length) {
        const h = heads[i + n]!;
        const x = a.tryAdd(samples[i + n]!);
        const y = b.tryAddWith(h, (sink) => decodeStoredValues(h, sink));
        if (x !== y) t.fail(`${maxBytes}: sample ${i + n}: tryAdd ${x}, tryAddWith ${y}`);
        if (!x) break;
        n++;
      }
      const ra = a.finish()!;
      const rb = b.finish()!;
      t.same(
        [rb.count, rb.firstSeq, rb.lastSeq, rb.documentBytes, rb.deferred],
        [ra.count, ra.firstSeq, ra.lastSeq, ra.documentBytes, ra.deferred],
        `${maxBytes}: batch at ${i}`,
      );
      const da = await decodeBatchMessage(ra.message, { resolveKey });
      const db = await decodeBatchMessage(rb.message, { resolveKey });
      t.ok(
        da.ok && db.ok && JSON.stringify(da.batch.samples) === JSON.stringify(db.batch.samples),
        'same samples',
      );
      i += ra.count;
    }
  }
  // Errors: an invalid sample throws even when the batch is full (maxSamples), and leaves the batch as it was.
  const one = new BatchBuilder({ device, signer, maxSamples: 1 });
  const h0 = heads[0]!;
  t.ok(one.tryAddWith(h0, (sink) => decodeStoredValues(h0, sink)));
  const h1 = heads[1]!;
  t.notOk(
    one.tryAddWith(h1, (sink) => decodeStoredValues(h1, sink)),
    'maxSamples',
  );
  t.throws(() => one.tryAddWith(h1, (sink) => sink.value('power_w', 'int', 1, 99)), { code: 'BAD_SAMPLE' });
  t.throws(() => one.tryAddWith({ ...h1, meter: 'no spaces' }, () => undefined), { code: 'BAD_SAMPLE' });
  t.throws(() => one.tryAddWith({ ...h1, ts: -1 }, () => undefined), { code: 'BAD_SAMPLE' });
  t.throws(() => one.tryAddWith({ ...h1, flags: 0x10000 }, () => undefined), { code: 'BAD_SAMPLE' });
  t.throws(() => one.tryAddWith(h0, () => undefined), { code: 'BAD_SAMPLE' }, 'seq must rise');
  const fin = one.finish()!;
  t.same([fin.count, fin.firstSeq, fin.lastSeq, fin.deferred], [1, h0.seq, h0.seq, 0]);
  // Too large alone: TOO_LARGE, and the builder stays empty.
  const tiny = new BatchBuilder({ device, signer, maxBytes: 512 });
  const fat = (sink: ValueSink) => {
    for (let c = 0; c < 200; c++) sink.value(`noise_${c}`, 'f64', Math.random(), 0);
  };
  t.throws(() => tiny.tryAddWith(h0, fat), { code: 'TOO_LARGE' });
  t.ok(tiny.isEmpty);
});

t.test(
  'a set written as it grows (the builder proving a batch) writes each prefix as its own batch',
  async (t) => {
    // A float column's decimal scale is carried from one write to the next: here it rises mid-way
    // (0 → 1 → 3 digits), meets a value no scale carries (raw from then on), and truncation replaces values
    // already scanned by others; shorter prefixes (the builder's bisection) are written between longer ones.
    const volts = [230, 231, 230.5, 229.5, 230.125, 230, 0.1, 230.2, 231.75, 229.001];
    const samples: Sample[] = volts.map((v, i) => ({
      meter: 'main',
      seq: 100 + i,
      ts: Date.UTC(2025, 0, 6) + 1000 * i,
      flags: 0,
      values: {
        voltage_l1_v: f32Value(v),
        current_l1_a: f32Value(i < 6 ? 1 + i / 4 : Math.fround(1 / 3)),
        frequency_hz: f64Value(50 + i / 100),
      },
    }));
    const prefixOk = (set: ColumnSet, k: number, list: Sample[], what: string) =>
      t.equal(sha(set.write(device, k)), sha(encodeBatch({ device, samples: list.slice(0, k) })), what);
    const set = new ColumnSet();
    samples.forEach((s, i) => {
      set.add(s, (sink) => fillFromSample(s, sink), false);
      prefixOk(set, i + 1, samples, `grown to ${i + 1}`);
      if (i >= 3) prefixOk(set, i - 2, samples, `prefix ${i - 2} after ${i + 1}`);
    });
    set.truncate(4);
    // Other values of the same scales (what was kept for the old ones must not be reused), and beyond the old
    // length.
    const other = [
      ...samples.slice(0, 4),
      ...[...samples.slice(4), samples[4]!, samples[5]!].map((s, i) => ({
        ...s,
        seq: 104 + i,
        ts: Date.UTC(2025, 0, 6) + 1000 * (4 + i),
        values: { ...s.values, voltage_l1_v: f32Value(i === 6 ? 229.002 : (volts[4 + i] ?? 230) + 1) },
      })),
    ];
    other.slice(4).forEach((s, i) => {
      set.add(s, (sink) => fillFromSample(s, sink), false);
      prefixOk(set, 5 + i, other, `truncated to 4, regrown to ${5 + i} with other values`);
    });
  },
);
