/**
 * The `ReadingBuffer` conformance suite: every implementation runs it (memory.test.ts, level.test.ts).
 * `make(t, opts)` opens a fresh, empty buffer and closes it at teardown.
 */
import { f32Value, f64Value, intValue, type SampleInput } from '../../cloud-contract/sample.js';
import {
  decodeSample,
  isBufferError,
  type BufferEvent,
  type BufferOptions,
  type ReadingBuffer,
} from '../../buffer/index.js';
import { waitFor } from '../harness/wait.js';
import { sampleAt, samplesFrom, T0, type TapTest } from './fixtures.js';

export type MakeBuffer = (t: TapTest, opts: BufferOptions) => Promise<ReadingBuffer>;

const big = { maxSize: Infinity } as const;

/** The stored size of `sampleAt(i)`-like samples, measured through the implementation itself. */
async function sizeOf(make: MakeBuffer, t: TapTest, s: SampleInput): Promise<number> {
  const b = await make(t, big);
  await b.append([s]);
  return b.stats().bytes;
}

function collect(b: ReadingBuffer): BufferEvent[] {
  const events: BufferEvent[] = [];
  b.on((e) => events.push(e));
  return events;
}

export function bufferSuite(t: TapTest, make: MakeBuffer): void {
  t.test('append assigns consecutive seqs in call order, from 1', async (t) => {
    const b = await make(t, big);
    t.same(b.stats(), {
      count: 0,
      bytes: 0,
      oldestSeq: null,
      newestSeq: null,
      oldestTs: null,
      newestTs: null,
      nextSeq: 1,
      droppedCount: 0,
      refusedCount: 0,
      effectiveMaxSize: Infinity,
      policy: 'drop-oldest',
    });
    t.equal(await b.append([]), null, 'an empty append is a no-op');
    // Concurrent appends share a group commit but keep call order.
    const ranges = await Promise.all([
      b.append(samplesFrom(0, 3)),
      b.append(samplesFrom(3, 1)),
      b.append(samplesFrom(4, 2)),
    ]);
    t.same(ranges, [
      { first: 1, last: 3 },
      { first: 4, last: 4 },
      { first: 5, last: 6 },
    ]);
    const all = await b.readOldest({ maxCount: 100 });
    t.same(
      all.map((s) => s.seq),
      [1, 2, 3, 4, 5, 6],
    );
    t.same(
      all.map((s) => s.ts),
      samplesFrom(0, 6).map((s) => s.ts),
    );
    const st = b.stats();
    t.equal(st.count, 6);
    t.equal(st.oldestSeq, 1);
    t.equal(st.newestSeq, 6);
    t.equal(st.oldestTs, T0);
    t.equal(st.newestTs, T0 + 5000);
    t.equal(st.nextSeq, 7);
    t.ok(st.bytes > 6 * 9, 'bytes count keys and values');
  });

  t.test('values come back exactly as appended', async (t) => {
    const b = await make(t, big);
    const tricky: SampleInput = {
      meter: 'grid-ünïcode',
      ts: -5, // before the epoch: still an integer ms time
      flags: 0b111111,
      values: {
        energy_import_kwh: intValue(Number.MAX_SAFE_INTEGER, -3),
        energy_export_kwh: intValue(Number.MIN_SAFE_INTEGER, 0),
        power_w: intValue(0, 300), // exponent outside the short form
        voltage_l1_v: f32Value(230.1), // not a "nice" double: stays the exact binary32
        current_l1_a: f32Value(-0),
        current_l2_a: f32Value(NaN),
        frequency_hz: f64Value(49.999_999_999_9, -200),
        power_factor: f64Value(-Infinity),
        vendor_specific_thing: intValue(-1, -1), // not in the registry: stored by name
      },
      missing: ['voltage_l2_v', 'another_unknown'],
    };
    await b.append([tricky, sampleAt(7)]);
    const [a, c] = await b.readOldest({ maxCount: 2 });
    t.same(a, { ...tricky, seq: 1 });
    t.ok(Object.is(a!.values.current_l1_a!.mantissa, -0), '-0 kept');
    t.ok(Number.isNaN(a!.values.current_l2_a!.mantissa), 'NaN kept');
    t.equal(a!.values.voltage_l1_v!.mantissa, Math.fround(230.1));
    t.same(c, { ...sampleAt(7), seq: 2 });
  });

  t.test('samples that cannot be stored losslessly are refused, nothing else is affected', async (t) => {
    const b = await make(t, big);
    await b.append(samplesFrom(0, 1));
    const bad: [string, SampleInput][] = [
      [
        'f32 not a binary32',
        { ...sampleAt(1), values: { power_w: { type: 'f32', mantissa: 0.1, exponent: 0 } } },
      ],
      [
        'int not an integer',
        { ...sampleAt(1), values: { power_w: { type: 'int', mantissa: 1.5, exponent: 0 } } },
      ],
      [
        'int too big',
        { ...sampleAt(1), values: { power_w: { type: 'int', mantissa: 2 ** 60, exponent: 0 } } },
      ],
      [
        'bad type',
        { ...sampleAt(1), values: { power_w: { type: 'f16' as 'int', mantissa: 1, exponent: 0 } } },
      ],
      [
        'fraction exponent',
        { ...sampleAt(1), values: { power_w: { type: 'int', mantissa: 1, exponent: 0.5 } } },
      ],
      [
        'string mantissa',
        { ...sampleAt(1), values: { power_w: { type: 'f64', mantissa: '1' as never, exponent: 0 } } },
      ],
      ['ts not integer', { ...sampleAt(1), ts: 1.5 }],
      ['flags negative', { ...sampleAt(1), flags: -1 }],
      ['meter missing', { ...sampleAt(1), meter: undefined as never }],
    ];
    for (const [what, s] of bad) {
      await t.rejects(b.append([sampleAt(2), s]), { code: 'BUFFER_INVALID_SAMPLE' }, what);
    }
    await t.rejects(b.append('nope' as never), { code: 'BUFFER_INVALID_ARGUMENT' });
    t.same(await b.append(samplesFrom(3, 1)), { first: 2, last: 2 }, 'refused appends burn no seq');
    t.equal(b.stats().count, 2);
  });

  t.test('readOldest: count, bytes, afterSeq (reading past batches in flight)', async (t) => {
    const b = await make(t, big);
    t.same(await b.readOldest({ maxCount: 10 }), [], 'empty buffer');
    await b.append(samplesFrom(0, 10));
    const one = (await b.readOldest({ maxCount: 1 }))[0]!;
    const size = b.stats().bytes / 10;
    t.same(
      (await b.readOldest({ maxCount: 3 })).map((s) => s.seq),
      [1, 2, 3],
    );
    t.same(
      (await b.readOldest({ maxCount: 3, afterSeq: 3 })).map((s) => s.seq),
      [4, 5, 6],
      'the next batch, while 1..3 are in flight',
    );
    t.same(
      (await b.readOldest({ maxCount: 100, afterSeq: 8 })).map((s) => s.seq),
      [9, 10],
    );
    t.same(await b.readOldest({ maxCount: 100, afterSeq: 10 }), []);
    // Sizes vary by a byte or two (missing list on every 7th): stay within 3.5 samples' worth.
    const byBytes = await b.readOldest({ maxCount: 100, maxBytes: Math.floor(size * 3.5) });
    t.ok(byBytes.length === 3 || byBytes.length === 4, `maxBytes limits (${byBytes.length})`);
    t.same(
      (await b.readOldest({ maxCount: 100, maxBytes: 1 })).map((s) => s.seq),
      [one.seq],
      'the first sample always comes, however large',
    );
    await t.rejects(b.readOldest({ maxCount: 0 }), { code: 'BUFFER_INVALID_ARGUMENT' });
    await t.rejects(b.readOldest({ maxCount: 1, afterSeq: -1 }), { code: 'BUFFER_INVALID_ARGUMENT' });
    await t.rejects(b.readOldest({ maxCount: 1, maxBytes: NaN }), { code: 'BUFFER_INVALID_ARGUMENT' });
  });

  t.test('only accepted samples are visible: a read during the write never returns its seqs', async (t) => {
    const b = await make(t, big);
    let accepted = false;
    const append = b.append(samplesFrom(0, 50)).then(() => (accepted = true));
    let reads = 0;
    while (!accepted) {
      const before = accepted;
      const got = await b.readOldest({ maxCount: 100 });
      if (!before) t.same(got, [], `read ${++reads} started before the append resolved: nothing`);
      // Let the commit's timer and I/O run between reads.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await append;
    t.equal((await b.readOldest({ maxCount: 100 })).length, 50, 'visible once accepted');
  });

  t.test('readStored: what readOldest reads, with the values left in their stored bytes', async (t) => {
    const b = await make(t, big);
    t.same(await b.readStored({ maxCount: 10 }), [], 'empty buffer');
    await b.append(samplesFrom(0, 2500));
    await b.ack(1000, 1100);
    const size = b.stats().bytes / b.stats().count;
    for (const opts of [
      { maxCount: 5000 },
      { maxCount: 3, afterSeq: 3 },
      { maxCount: 100, afterSeq: 990 },
      { maxCount: 100, maxBytes: Math.floor(size * 3.5) },
      { maxCount: 100, maxBytes: 1 },
    ]) {
      const full = await b.readOldest(opts);
      const heads = await b.readStored(opts);
      t.same(
        heads.map((h) => h.seq),
        full.map((s) => s.seq),
        `same samples for ${JSON.stringify(opts)}`,
      );
      const mismatch = heads.findIndex((h, i) => {
        const s = full[i]!;
        const back = decodeSample(h.seq, Buffer.from(h.bytes));
        return (
          h.meter !== s.meter ||
          h.ts !== s.ts ||
          h.flags !== s.flags ||
          JSON.stringify(h.clock) !== JSON.stringify(s.clock) ||
          JSON.stringify(back) !== JSON.stringify(s)
        );
      });
      t.equal(mismatch, -1, 'heads and bytes are those samples');
    }
    await t.rejects(b.readStored({ maxCount: 0 }), { code: 'BUFFER_INVALID_ARGUMENT' });
    await b.close();
    await t.rejects(b.readStored({ maxCount: 1 }), { code: 'BUFFER_CLOSED' });
  });

  t.test('readOldest across many chunks returns everything in order', async (t) => {
    const b = await make(t, big);
    await b.append(samplesFrom(0, 2500));
    await b.ack(1000, 1100);
    const all = await b.readOldest({ maxCount: 5000 });
    t.equal(all.length, 2500 - 101);
    t.ok(
      all.every((s, i) => i === 0 || s.seq > all[i - 1]!.seq),
      'strictly increasing',
    );
    t.notOk(
      all.some((s) => s.seq >= 1000 && s.seq <= 1100),
      'acked range gone',
    );
  });

  t.test('ack deletes a range atomically; twice, out of order or beyond is harmless', async (t) => {
    const b = await make(t, big);
    await b.append(samplesFrom(0, 10));
    const bytes10 = b.stats().bytes;
    await b.ack(4, 6); // a later batch acked before an earlier one
    t.same(
      (await b.readOldest({ maxCount: 100 })).map((s) => s.seq),
      [1, 2, 3, 7, 8, 9, 10],
    );
    t.equal(b.stats().oldestSeq, 1);
    await b.ack(1, 3);
    t.equal(b.stats().oldestSeq, 7, 'oldest moves past the earlier acked hole');
    t.equal(b.stats().oldestTs, T0 + 6000);
    await b.ack(1, 3);
    await b.ack(4, 6);
    await b.ack(0, 0);
    t.equal(b.stats().count, 4, 'acking twice changes nothing');
    await Promise.all([b.ack(7, 8), b.ack(8, 9), b.ack(7, 7)]);
    t.equal(b.stats().count, 1, 'overlapping acks in one group');
    t.ok(b.stats().bytes < bytes10 / 5);
    await b.ack(10, 1e12);
    t.same(b.stats(), { ...b.stats(), count: 0, bytes: 0, oldestSeq: null, newestSeq: null });
    await t.rejects(b.ack(5, 4), { code: 'BUFFER_INVALID_ARGUMENT' });
    await t.rejects(b.ack(1.5, 4), { code: 'BUFFER_INVALID_ARGUMENT' });
    t.same(await b.append(samplesFrom(10, 1)), { first: 11, last: 11 }, 'seqs are not reused after acks');
    t.equal(b.stats().oldestSeq, 11);
  });

  t.test('ack in the same group as appends only deletes what was stored before', async (t) => {
    const b = await make(t, big);
    await b.append(samplesFrom(0, 2));
    const [, r] = await Promise.all([b.ack(1, 1000), b.append(samplesFrom(2, 2))]);
    t.same(r, { first: 3, last: 4 });
    t.same(
      (await b.readOldest({ maxCount: 10 })).map((s) => s.seq),
      [3, 4],
    );
  });

  t.test('drop-oldest: over budget, whole oldest ranges go, with one event per group', async (t) => {
    const one = await sizeOf(make, t, sampleAt(1));
    const b = await make(t, { maxSize: one * 20 + one / 2 });
    const events = collect(b);
    await b.append(samplesFrom(0, 20));
    t.equal(b.stats().count, 20);
    t.same(events, [], 'at budget: nothing dropped');
    const r = await b.append(samplesFrom(20, 3));
    t.same(r, { first: 21, last: 23 });
    const st = b.stats();
    t.ok(st.bytes <= one * 20 + one / 2, 'within budget');
    t.equal(st.newestSeq, 23);
    t.equal(events.length, 1);
    const e = events[0]!;
    t.match(e, { type: 'dropped', reason: 'size', fromSeq: 1 });
    if (e.type !== 'dropped') throw new Error('unreachable');
    t.equal(e.count, e.toSeq - e.fromSeq + 1);
    t.ok(e.count >= 3, 'at least the room for the append');
    t.equal(e.fromTs, T0);
    t.equal(e.toTs, T0 + (e.count - 1) * 1000);
    t.equal(st.oldestSeq, e.toSeq + 1);
    t.equal(st.droppedCount, e.count);
    t.equal(st.count, 23 - e.count);
    // Acking a dropped range later is harmless.
    await b.ack(1, e.toSeq);
    t.equal(b.stats().count, 23 - e.count);
  });

  t.test('drop-oldest within one group can drop samples appended earlier in it', async (t) => {
    const one = await sizeOf(make, t, sampleAt(1));
    const b = await make(t, { maxSize: one * 3 + one / 2 });
    const events = collect(b);
    const rs = await Promise.all([b.append(samplesFrom(0, 3)), b.append(samplesFrom(3, 3))]);
    t.same(rs, [
      { first: 1, last: 3 },
      { first: 4, last: 6 },
    ]);
    t.same(
      (await b.readOldest({ maxCount: 10 })).map((s) => s.seq),
      [4, 5, 6],
    );
    t.match(events, [{ type: 'dropped', reason: 'size', fromSeq: 1, toSeq: 3, count: 3 }]);
  });

  t.test('refuse: over budget, the append is rejected with an event; nothing stored is lost', async (t) => {
    const one = await sizeOf(make, t, sampleAt(1));
    const b = await make(t, { maxSize: one * 5 + one / 2, policy: 'refuse' });
    const events = collect(b);
    await b.append(samplesFrom(0, 5));
    const err = await b.append(samplesFrom(5, 2)).catch((e: unknown) => e);
    t.ok(isBufferError(err, 'BUFFER_FULL'), String(err));
    t.match(String((err as Error).message), /refused 2 sample\(s\).*budget is reached/);
    t.same(events, [
      { type: 'refused', reason: 'size', count: 2, fromTs: T0 + 5000, toTs: T0 + 6000, at: events[0]?.at },
    ]);
    t.equal(b.stats().count, 5);
    t.equal(b.stats().refusedCount, 2);
    t.equal(b.stats().policy, 'refuse');
    await b.ack(1, 2);
    t.same(await b.append(samplesFrom(5, 2)), { first: 6, last: 7 }, 'room again after an ack');
  });

  t.test('an append larger than the whole budget is refused under either policy', async (t) => {
    const one = await sizeOf(make, t, sampleAt(1));
    for (const policy of ['drop-oldest', 'refuse'] as const) {
      const b = await make(t, { maxSize: one * 2, policy });
      const events = collect(b);
      await b.append(samplesFrom(0, 1));
      await t.rejects(b.append(samplesFrom(1, 3)), { code: 'BUFFER_FULL' }, policy);
      t.match(events, [{ type: 'refused', reason: 'size', count: 3 }]);
      t.equal(b.stats().count, 1, 'what was stored stays');
    }
  });

  t.test('maxAge drops the oldest by ts, from the front only, on writes and on the timer', async (t) => {
    let now = T0 + 100_000;
    const b = await make(t, { maxSize: Infinity, maxAge: 50_000, now: () => now, retentionIntervalMs: 10 });
    const events = collect(b);
    // ts 0 s … 59 s, then one out-of-order old sample (a clock step) in the middle of younger ones.
    await b.append(samplesFrom(0, 60));
    t.match(events, [
      { type: 'dropped', reason: 'age', fromSeq: 1, toSeq: 50, count: 50, fromTs: T0, toTs: T0 + 49_000 },
    ]);
    t.equal(b.stats().oldestSeq, 51);
    await b.append([sampleAt(1)]);
    t.equal(b.stats().count, 11, 'an old ts behind younger ones is not dropped out of order');
    now += 5_000;
    // Nothing appended: the retention timer does it.
    await waitFor(() => events.length === 2, { what: 'the age drop from the timer' });
    t.match(events[1], { type: 'dropped', reason: 'age', fromSeq: 51, toSeq: 55, count: 5 });
    t.equal(b.stats().droppedCount, 55);
  });

  t.test('events: unsubscribe, and a throwing listener does not break anything', async (t) => {
    const one = await sizeOf(make, t, sampleAt(1));
    const seen: string[] = [];
    const b = await make(t, { maxSize: one * 2 + one / 2, onEvent: (e) => seen.push(`opt:${e.type}`) });
    b.on(() => {
      throw new Error('listener bug');
    });
    const off = b.on((e) => seen.push(`on:${e.type}`));
    await b.append(samplesFrom(0, 2));
    await b.append(samplesFrom(2, 2));
    off();
    await b.append(samplesFrom(4, 2));
    t.same(seen, ['opt:dropped', 'on:dropped', 'opt:dropped']);
  });

  t.test('close lets pending appends finish; afterwards everything rejects BUFFER_CLOSED', async (t) => {
    const b = await make(t, big);
    const p = b.append(samplesFrom(0, 5));
    const a = b.ack(1, 1);
    await b.close();
    t.same(await p, { first: 1, last: 5 });
    await a;
    await b.close(); // idempotent
    await t.rejects(b.append(samplesFrom(5, 1)), { code: 'BUFFER_CLOSED' });
    await t.rejects(b.readOldest({ maxCount: 1 }), { code: 'BUFFER_CLOSED' });
    await t.rejects(b.ack(1, 2), { code: 'BUFFER_CLOSED' });
  });

  t.test('bad options are refused up front', async (t) => {
    await t.rejects(make(t, { maxSize: 0 }), { code: 'BUFFER_INVALID_ARGUMENT' });
    await t.rejects(make(t, { maxSize: 10, policy: 'keep-all' as 'refuse' }), {
      code: 'BUFFER_INVALID_ARGUMENT',
    });
    await t.rejects(make(t, { maxSize: 10, commitDelayMs: -1 }), { code: 'BUFFER_INVALID_ARGUMENT' });
    await t.rejects(make(t, { maxSize: 10, maxAge: 0 }), { code: 'BUFFER_INVALID_ARGUMENT' });
  });

  t.test('a drain with several batches in flight leaves nothing behind', async (t) => {
    const b = await make(t, { maxSize: Infinity, commitDelayMs: 0 });
    const total = 3000;
    const producer = (async () => {
      for (let i = 0; i < total; i += 100) await b.append(samplesFrom(i, 100));
    })();
    let cursor = 0;
    const inFlight: Promise<void>[] = [];
    const seen: number[] = [];
    while (seen.length < total) {
      const batch = await b.readOldest({ afterSeq: cursor, maxCount: 256 });
      if (batch.length === 0) {
        await Promise.race([producer, new Promise((r) => setImmediate(r))]);
        continue;
      }
      cursor = batch[batch.length - 1]!.seq;
      for (const s of batch) seen.push(s.seq);
      inFlight.push(b.ack(batch[0]!.seq, cursor));
      if (inFlight.length > 4) await inFlight.shift();
    }
    await producer;
    await Promise.all(inFlight);
    t.same(
      seen,
      Array.from({ length: total }, (_, i) => i + 1),
    );
    t.equal(b.stats().count, 0);
  });
}
