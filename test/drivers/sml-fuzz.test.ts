import t from 'tap';
import { readFileSync } from 'node:fs';
import { seededRandom } from '../../drivers/simulator/random.js';
import { renderSmlFile, smlValues } from '../../drivers/simulator/sml-render.js';
import { createSmlModel } from '../../drivers/simulator/sml-emitter.js';
import { SmlFramer, decodeSmlFile, packFile, unpackFile } from '../../drivers/sml/index.js';

const fixture = (name: string): Buffer =>
  Buffer.from(
    readFileSync(new URL(`fixtures/sml/${name}`, import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join(''),
    'hex',
  );

const seeds = ['dzg.hex', 'holley.hex', 'ebz.hex', 'emh.hex', 'iskra.hex'].map(fixture);

function mutate(b: Buffer, rnd: () => number): Buffer {
  const out = Buffer.from(b);
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256);
  return out;
}

await t.test('20,000 mutated files: only coded rejections or clean decodes, nothing thrown', async (t) => {
  const rnd = seededRandom(42);
  const codes: Record<string, number> = {};
  let decoded = 0;
  for (let n = 0; n < 20_000; n++) {
    const base = seeds[n % seeds.length] as Buffer;
    // Half the cases: mutate the payload and re-pack with a fresh CRC, so the message parser is exercised.
    let file: Buffer;
    if (n % 2 === 0) file = mutate(base, rnd);
    else {
      const u = unpackFile(base);
      if (!u.ok) throw u.error;
      const p = mutate(u.payload, rnd);
      file = packFile(rnd() < 0.2 ? p.subarray(0, Math.floor(rnd() * p.length)) : p);
    }
    const r = decodeSmlFile(file);
    if (r.ok) decoded++;
    else codes[r.error.code] = (codes[r.error.code] ?? 0) + 1;
  }
  t.same(Object.keys(codes).sort(), ['BAD_FRAME', 'CRC'], `codes ${JSON.stringify(codes)}`);
  t.ok((codes.CRC ?? 0) > 5000, 'byte flips in the raw file fail the CRC');
  t.ok(decoded > 0, `${decoded} mutated payloads still decode (values changed, structure intact)`);
});

await t.test('the framer cuts a noisy, chunked stream into exactly the good files', async (t) => {
  const rnd = seededRandom(7);
  const model = createSmlModel(3, 1000);
  const files = Array.from({ length: 60 }, (_, k) =>
    renderSmlFile('0a01454d480000cacf7e', smlValues(model.next()), k + 1),
  );
  const parts: Buffer[] = [];
  files.forEach((f, k) => {
    if (k % 5 === 0) parts.push(Buffer.from(Array.from({ length: 50 }, () => Math.floor(rnd() * 256))));
    if (k % 7 === 3) parts.push(f.subarray(0, 60)); // truncated copy, then the real one
    parts.push(f);
  });
  const stream = Buffer.concat(parts);
  const framer = new SmlFramer();
  const got: Buffer[] = [];
  for (let at = 0; at < stream.length;) {
    const len = 1 + Math.floor(rnd() * 97);
    got.push(...framer.push(stream.subarray(at, at + len)));
    at += len;
  }
  const good = got.filter((f) => decodeSmlFile(f).ok);
  t.equal(good.length, 60);
  t.same(
    good.map((f) => f.toString('hex')),
    files.map((f) => f.toString('hex')),
  );
  t.ok(framer.stats.abandoned >= 8, 'truncated files abandoned');
});

await t.test(
  'random bytes never hang or throw the framer; an endless file hits the size limit',
  async (t) => {
    const rnd = seededRandom(9);
    const framer = new SmlFramer(4096);
    for (let n = 0; n < 10_000; n++) {
      const chunk = Buffer.from(
        Array.from({ length: 64 }, () => (rnd() < 0.3 ? 0x1b : Math.floor(rnd() * 256))),
      );
      for (const f of framer.push(chunk)) decodeSmlFile(f);
    }
    const endless = new SmlFramer(1024);
    endless.push(Buffer.from('1b1b1b1b01010101', 'hex'));
    for (let n = 0; n < 40; n++) endless.push(Buffer.alloc(64, 0x11));
    t.ok(endless.stats.abandoned >= 1);
  },
);
