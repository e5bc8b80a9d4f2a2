/**
 * Fuzz: ≥ 10,000 generated hostile inputs (fixed seed) against the decoders. Each must come back as an
 * acceptance or a coded rejection — never a throw, never INTERNAL — and within a time bound.
 */
import t from 'tap';
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import {
  RejectReasons,
  decodeBatchDocument,
  decodeBatchMessage,
  decodePayload,
  encodeBatch,
  encodeCoseSign1,
  encodeProtectedHeader,
  inspectBatchMessage,
  kidFromCertificate,
  sigStructure,
  signBatch,
  type DecodeResult,
} from '../../cloud-contract/index.js';
import { makeDevice, prng, threePhaseSeries } from './fixtures.js';

const dev = await makeDevice();
const kid = kidFromCertificate(dev.issued.certDer);
const key = createPrivateKey(dev.issued.keyPem);
const rand = prng(20250601);
const int = (n: number): number => Math.floor(rand() * n);

const samples = threePhaseSeries({ count: 40, seed: 5 });
const mixed = samples.map((s, i) => ({
  ...s,
  meter: i % 2 ? 'pv' : 'main',
  ...(i % 7 === 0 ? { missing: ['gas_m3'], flags: 1 } : {}),
}));
const docs = [
  encodeBatch({ device: dev.thing, samples }),
  encodeBatch({ device: dev.thing, samples: mixed }),
];
const messages = docs.map((d) => signBatch(d, { privateKey: key, certDer: dev.issued.certDer }));
const resolveKey = (): Uint8Array => dev.issued.certDer;

function mutate(src: Uint8Array): Uint8Array {
  let b = Uint8Array.from(src);
  const ops = 1 + int(4);
  for (let o = 0; o < ops; o++) {
    switch (int(7)) {
      case 0: {
        const i = int(b.length);
        b[i] = (b[i] as number) ^ (1 << int(8));
        break;
      }
      case 1:
        b[int(b.length)] = int(256);
        break;
      case 2:
        b = b.subarray(0, int(b.length + 1));
        break;
      case 3: {
        const i = int(b.length + 1);
        b = Uint8Array.from([
          ...b.subarray(0, i),
          ...Array.from({ length: 1 + int(8) }, () => int(256)),
          ...b.subarray(i),
        ]);
        break;
      }
      case 4: {
        const i = int(b.length);
        b = Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1 + int(16))]);
        break;
      }
      case 5: {
        // interesting CBOR heads: huge lengths, indefinite, deep nesting, 64-bit ints
        const heads = [
          [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
          [0x9f],
          [0x81, 0x81, 0x81, 0x81],
          [0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
          [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
          [0xbf],
          [0x5a, 0x7f, 0xff, 0xff, 0xff],
          [0xf5],
          [0xc2, 0x41, 0x01],
        ];
        const h = heads[int(heads.length)] as number[];
        const i = int(b.length);
        b = Uint8Array.from([...b.subarray(0, i), ...h, ...b.subarray(i + int(3))]);
        break;
      }
      default: {
        // copy a chunk of itself elsewhere
        const i = int(b.length);
        const j = int(b.length);
        const len = int(32);
        b = Uint8Array.from([...b.subarray(0, j), ...b.subarray(i, i + len), ...b.subarray(j)]);
      }
    }
    if (b.length === 0) break;
  }
  return b;
}

function signDoc(payload: Uint8Array, zip: boolean): Uint8Array {
  const ph = encodeProtectedHeader(kid, zip);
  const body = zip ? new Uint8Array(deflateRawSync(payload)) : payload;
  const sig = nodeSign('sha256', sigStructure(ph, body), { key, dsaEncoding: 'ieee-p1363' });
  return encodeCoseSign1(ph, body, new Uint8Array(sig));
}

const known = new Set<string>(RejectReasons);

t.test('10,000+ mutated and random inputs: only coded outcomes, no hangs', async (t) => {
  const counts = { cases: 0, accepted: 0 };
  const reasons = new Map<string, number>();
  let slowest = 0;
  const started = performance.now();
  const check = (r: DecodeResult | { ok: boolean; reason?: string }, label: string): void => {
    counts.cases++;
    if (r.ok) counts.accepted++;
    else {
      const reason = (r as { reason: string }).reason;
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      if (!known.has(reason) || reason === 'INTERNAL')
        t.fail(`${label}: ${reason} ${(r as { detail?: string }).detail}`);
    }
  };
  const timed = async <T>(f: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    slowest = Math.max(slowest, performance.now() - t0);
    return r;
  };
  // 1. mutated signed messages (mostly stopped at the envelope or the signature)
  for (let i = 0; i < 3000; i++) {
    const m = mutate(messages[i % 2] as Uint8Array);
    check(await timed(() => decodeBatchMessage(m, { resolveKey })), `message mutation ${i}`);
    if (i % 3 === 0) check(await timed(() => inspectBatchMessage(m)), `inspect mutation ${i}`);
  }
  // 2. mutated documents, validly signed (so every stage after the signature is exercised)
  for (let i = 0; i < 4000; i++) {
    const d = mutate(docs[i % 2] as Uint8Array);
    check(
      await timed(() => decodeBatchMessage(signDoc(d, i % 4 === 0), { resolveKey })),
      `document mutation ${i}`,
    );
  }
  // 3. mutated documents straight into the document decoder (cheap, many)
  for (let i = 0; i < 3000; i++) {
    const d = mutate(docs[i % 2] as Uint8Array);
    check(await timed(() => decodeBatchDocument(d)), `raw document mutation ${i}`);
  }
  // 4. random bytes, random CBOR-ish starts, and JSON-ish text through the auto-detecting decoder
  for (let i = 0; i < 1500; i++) {
    const b = Uint8Array.from({ length: int(300) }, () => int(256));
    if (i % 3 === 0 && b.length > 0) b[0] = 0xd2;
    if (i % 3 === 1 && b.length > 0) b[0] = 0x84;
    check(await timed(() => decodeBatchMessage(b, { resolveKey })), `random ${i}`);
    const j = new TextEncoder().encode(
      `{"kind":"${i % 2 ? 'health' : 'event'}",${'"x":'.repeat(int(3))}${int(1e6)}}`,
    );
    check(await timed(() => decodePayload(i % 2 ? j : b)), `payload ${i}`);
  }
  const elapsed = performance.now() - started;
  t.ok(counts.cases >= 10_000, `${counts.cases} cases`);
  t.ok(slowest < 2000, `slowest case ${slowest.toFixed(1)} ms`);
  t.ok(reasons.size >= 8, `reasons seen: ${[...reasons].map(([k, v]) => `${k}=${v}`).join(' ')}`);
  t.comment(
    `fuzz: ${counts.cases} cases, ${counts.accepted} accepted, ${elapsed.toFixed(0)} ms, slowest ${slowest.toFixed(1)} ms`,
  );
});
