/**
 * Wire cost: bytes per sample of full batches on a realistic week-like 3-phase series, and the builder's
 * promise that a batch never exceeds its byte budget.
 */
import t from 'tap';
import {
  BatchBuilder,
  DEFAULT_BATCH_MAX_BYTES,
  DEFAULT_DECODE_LIMITS,
  DEFAULT_MAX_DOCUMENT_BYTES,
  IOT_MAX_MESSAGE_BYTES,
  billingUnits,
  createBatchSigner,
  decodeBatchMessage,
  inspectBatchMessage,
  type Sample,
} from '../../cloud-contract/index.js';
import { intValue } from '../../cloud-contract/sample.js';
import { makeDevice, prng, threePhaseSeries } from './fixtures.js';

const dev = await makeDevice();
const signer = createBatchSigner({ privateKey: dev.issued.keyPem, certDer: dev.issued.certDer });

/** Runs samples through builders the way the batcher does (deferred samples start the next batch). */
function drain(samples: readonly Sample[], maxBytes?: number): { messages: Uint8Array[]; carried: Sample[] } {
  const b = new BatchBuilder({ device: dev.thing, signer, ...(maxBytes !== undefined ? { maxBytes } : {}) });
  const messages: Uint8Array[] = [];
  const carried: Sample[] = [];
  // samples[start..i) are in the builder
  let start = 0;
  for (let i = 0; i < samples.length || !b.isEmpty; i++) {
    const s = samples[i];
    if (s !== undefined && b.tryAdd(s)) continue;
    const r = b.finish();
    if (r === undefined) throw new Error('builder refused a sample while empty');
    if (r.count + r.deferred !== i - start)
      throw new Error(`count ${r.count} + deferred ${r.deferred} ≠ ${i - start}`);
    if (r.firstSeq !== samples[start]?.seq || r.lastSeq !== samples[start + r.count - 1]?.seq)
      throw new Error(`seq range ${r.firstSeq}..${r.lastSeq} is not the samples'`);
    messages.push(r.message);
    carried.push(...samples.slice(start, start + r.count));
    // deferred samples go first into the next batch
    start += r.count;
    i = start - 1;
  }
  return { messages, carried };
}

t.test('bytes per sample on a week-like 3-phase series (20 channels, 1 Hz) ≤ 64', async (t) => {
  // One 2-hour window from each day of a week, at a different time of day each (night, morning peak, ...).
  const samples: Sample[] = [];
  let seq = 1;
  for (let day = 0; day < 7; day++) {
    const startTs = Date.UTC(2025, 0, 6 + day, (day * 7) % 24);
    const part = threePhaseSeries({ count: 7200, startTs, startSeq: seq, seed: 100 + day });
    seq += part.length;
    samples.push(...part);
  }
  const { messages, carried } = drain(samples);
  t.equal(carried.length, samples.length, 'every sample is in exactly one batch');
  const bytes = messages.reduce((a, m) => a + m.length, 0);
  const full = messages.slice(0, -1);
  const perSample = bytes / samples.length;
  const units = messages.reduce((a, m) => a + billingUnits(m.length), 0);
  t.ok(perSample <= 64, `${perSample.toFixed(2)} B/sample`);
  t.ok(
    full.every((m) => m.length <= DEFAULT_BATCH_MAX_BYTES && m.length > DEFAULT_BATCH_MAX_BYTES - 1024),
    'full batches fill their 25 billing units',
  );
  t.comment(
    `wire cost: ${perSample.toFixed(2)} B/sample over ${samples.length} samples in ${messages.length} batches, ` +
      `${((units / samples.length) * 1000).toFixed(2)} billable 5-KB units per 1000 samples`,
  );
  // Worst case for compression: full float32 precision noise on every gauge.
  const noisy = threePhaseSeries({ count: 20_000, precision: 'noisy', seed: 9 });
  const n = drain(noisy);
  const noisyPer = n.messages.reduce((a, m) => a + m.length, 0) / noisy.length;
  t.comment(`wire cost, full-precision float32 noise: ${noisyPer.toFixed(2)} B/sample`);
  const last = inspectBatchMessage(messages[0] as Uint8Array);
  t.ok(last.ok && last.compressed, 'deflate is used (declared in the protected header)');
});

t.test('a batch never exceeds its budget, whatever the data and the budget', async (t) => {
  const rand = prng(77);
  const budgets = [512, 1000, 5 * 1024, 20_000, 64 * 1024, DEFAULT_BATCH_MAX_BYTES, IOT_MAX_MESSAGE_BYTES];
  for (const maxBytes of budgets) {
    // Compressible data that turns into noise part-way, two meters interleaved: the estimate gets beaten.
    const n = Math.min(1500, Math.ceil(maxBytes / 40));
    const a = threePhaseSeries({ count: n, meter: 'a', seed: int(1000) });
    const b = threePhaseSeries({
      count: 2 * n,
      meter: 'b',
      precision: 'noisy',
      seed: int(1000),
      startSeq: n + 1,
    });
    const samples = [...a, ...b];
    const { messages, carried } = drain(samples, maxBytes);
    t.equal(carried.length, samples.length, `${maxBytes}: all samples carried`);
    t.ok(
      messages.every((m) => m.length <= maxBytes),
      `${maxBytes}: largest ${Math.max(...messages.map((m) => m.length))} in ${messages.length} batches`,
    );
    const last = messages[messages.length - 1] as Uint8Array;
    const r = await decodeBatchMessage(last, { resolveKey: () => dev.issued.certDer });
    t.ok(r.ok, `${maxBytes}: last batch verifies`);
  }
  function int(n: number): number {
    return Math.floor(rand() * n);
  }
  t.throws(() => new BatchBuilder({ device: dev.thing, signer, maxBytes: 200_000 }), { code: 'TOO_LARGE' });
  t.throws(() => new BatchBuilder({ device: 'bad name', signer }), { code: 'BAD_THING_NAME' });
  const one = new BatchBuilder({ device: dev.thing, signer, maxSamples: 2 });
  t.equal(one.finish(), undefined, 'empty builder finishes to nothing');
  const s = threePhaseSeries({ count: 3 });
  t.ok(one.tryAdd(s[0] as Sample) && one.tryAdd(s[1] as Sample));
  t.notOk(one.tryAdd(s[2] as Sample), 'maxSamples');
  t.equal(one.count, 2);
  t.throws(() => one.tryAdd(s[0] as Sample), { code: 'BAD_SAMPLE' }, 'seq must rise');
  const fin = one.finish();
  t.equal(fin?.firstSeq, s[0]?.seq);
  t.equal(fin?.lastSeq, s[1]?.seq);
  t.ok(one.isEmpty, 'reset after finish');
});

t.test(
  'every batch the builder makes with its defaults is one the decoder accepts: a meter that does not move',
  async (t) => {
    // A vacant flat at night: every value repeats, so deflate makes each sample nearly free and the message
    // budget never ends the batch. The document cap must then keep it within the decoder's item limit.
    const frozen = threePhaseSeries({ count: 1 })[0] as Sample;
    const values = Object.fromEntries(
      Object.keys(frozen.values).map((name, i) => [name, intValue(1000 + i, -1)] as const),
    );
    const b = new BatchBuilder({ device: dev.thing, signer });
    const ts0 = Date.UTC(2026, 11, 1);
    let seq = 1;
    while (seq <= DEFAULT_DECODE_LIMITS.maxSamples + 1) {
      if (!b.tryAdd({ ...frozen, values, seq, ts: ts0 + seq * 1000 })) break;
      seq++;
    }
    const built = b.finish();
    if (built === undefined) throw new Error('no batch');
    t.ok(
      built.message.length < DEFAULT_BATCH_MAX_BYTES / 10,
      `the message budget did not decide (${built.message.length} B)`,
    );
    t.ok(
      built.documentBytes <= DEFAULT_MAX_DOCUMENT_BYTES,
      `document ${built.documentBytes} B within the cap`,
    );
    const r = await decodeBatchMessage(built.message, { resolveKey: () => dev.issued.certDer });
    t.ok(r.ok, r.ok ? `${built.count} samples decode` : `refused: ${r.reason} ${r.detail}`);
    if (r.ok) t.equal(r.batch.samples.length, built.count, 'every sample is in the decoded batch');
  },
);
