import t from 'tap';
import { readFileSync } from 'node:fs';
import { intValue } from '../../cloud-contract/sample.js';
import {
  createDsmrMeter,
  decryptGgcFrame,
  encryptGgcFrame,
  GgcFramer,
  parseGgcFrame,
  parseKeyHex,
  parseTelegram,
  startDsmrEmitter,
} from '../../drivers/index.js';
import { seededRandom } from '../../drivers/simulator/random.js';
import { startPtyPair } from '../harness/pty.js';

const fixture = Buffer.from(
  readFileSync(new URL('fixtures/dsmr-encrypted/smarty-sagemcom-t210.hex', import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join(''),
  'hex',
);
const KEY = parseKeyHex('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') as Buffer;
const i = intValue;

function frameOf(b: Buffer) {
  const f = parseGgcFrame(b);
  if (!f.ok) throw f.error;
  return f.frame;
}

await t.test('the published Smarty-style frame decrypts with its test key; values exact', async (t) => {
  const f = frameOf(fixture);
  t.equal(f.systemTitle.toString('ascii'), 'SYSTEMID');
  t.equal(f.frameCounter, 0x10000001);
  const d = decryptGgcFrame(f, KEY);
  if (!d.ok) throw d.error;
  const r = parseTelegram(d.plaintext);
  if (!r.ok) throw r.error;
  t.equal(r.telegram.header, 'EST5\\253710000_A');
  t.same(r.telegram.crc, { sent: 0x7ef9, computed: 0x7ef9 });
  t.same(r.telegram.values, {
    energy_import_kwh: i(6545766, -3),
    energy_import_t1_kwh: i(5017120, -3),
    energy_import_t2_kwh: i(1528646, -3),
    power_import_w: i(286, 0),
    energy_export_kwh: i(58, -3),
    energy_export_t1_kwh: i(0, -3),
    energy_export_t2_kwh: i(58, -3),
    power_export_w: i(0, 0),
    energy_reactive_import_kvarh: i(747, -3),
    energy_reactive_export_kvarh: i(3897726, -3),
    power_w: i(286, 0),
  });
});

await t.test('a wrong key, a flipped byte or a wrong tag is DECRYPT, never garbage', async (t) => {
  t.match(decryptGgcFrame(frameOf(fixture), Buffer.alloc(16, 0xab)), {
    ok: false,
    error: { code: 'DECRYPT', message: /wrong key/ },
  });
  for (const at of [20, 200, fixture.length - 1]) {
    const b = Buffer.from(fixture);
    b[at] = (b[at] as number) ^ 0x01;
    t.match(decryptGgcFrame(frameOf(b), KEY), { ok: false, error: { code: 'DECRYPT' } }, `byte ${at}`);
  }
  // Header faults are BAD_FRAME.
  const sc = Buffer.from(fixture);
  sc[13] = 0x10;
  t.match(parseGgcFrame(sc), { ok: false, error: { code: 'BAD_FRAME', message: /security control 0x10/ } });
  t.match(parseGgcFrame(fixture.subarray(0, 100)), { ok: false, error: { code: 'BAD_FRAME' } });
  t.match(parseGgcFrame(Buffer.from('2f4553', 'hex')), { ok: false, error: { code: 'BAD_FRAME' } });
  t.equal(parseKeyHex('AAAA'), undefined);
  t.equal(parseKeyHex('G'.repeat(32)), undefined);
});

await t.test('encrypt → decrypt round trip reproduces the published frame byte for byte', async (t) => {
  const f = frameOf(fixture);
  const d = decryptGgcFrame(f, KEY);
  if (!d.ok) throw d.error;
  t.same(encryptGgcFrame(d.plaintext, KEY, f.systemTitle, f.frameCounter), fixture);
});

await t.test('20,000 mutated frames: only coded rejections, nothing thrown', async (t) => {
  const rnd = seededRandom(11);
  const codes: Record<string, number> = {};
  for (let n = 0; n < 20_000; n++) {
    const b = Buffer.from(fixture);
    const k = 1 + Math.floor(rnd() * 3);
    for (let j = 0; j < k; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    const cut = rnd() < 0.1 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
    const f = parseGgcFrame(cut);
    const r = f.ok ? decryptGgcFrame(f.frame, KEY) : f;
    const code = r.ok ? (parseTelegram(r.plaintext).ok ? 'ok' : 'bad-telegram') : r.error.code;
    codes[code] = (codes[code] ?? 0) + 1;
  }
  t.ok(
    Object.keys(codes).every((c) => ['DECRYPT', 'BAD_FRAME', 'ok'].includes(c)),
    JSON.stringify(codes),
  );
  t.ok((codes.DECRYPT ?? 0) > 10_000, 'most mutations fail authentication');
});

await t.test('the frame splitter finds frames in a noisy, chunked stream', async (t) => {
  const rnd = seededRandom(3);
  const framer = new GgcFramer();
  const stream = Buffer.concat([Buffer.from('00dbdb0801', 'hex'), fixture, Buffer.from([0xdb]), fixture]);
  const got: Buffer[] = [];
  for (let at = 0; at < stream.length;) {
    const len = 1 + Math.floor(rnd() * 50);
    got.push(...framer.push(stream.subarray(at, at + len)));
    at += len;
  }
  t.ok(got.filter((g) => g.equals(fixture)).length >= 1, 'the frame after the noise is whole');
  t.same(got.at(-1), fixture);
});

await t.test(
  'reader over a pty: encrypted emitter → createDsmrMeter with key; wrong key → DECRYPT',
  async (t) => {
    const pty = await startPtyPair(t);
    const emitter = await startDsmrEmitter({ path: pty.a, flavour: '5', intervalMs: 100, encryptKey: KEY });
    t.teardown(() => emitter.stop());
    const good = createDsmrMeter({
      id: 'lux',
      port: pty.b,
      version: 'smarty',
      key: KEY,
      readTimeoutMs: 10_000,
    });
    const r = await good.read();
    t.ok(r.values.energy_import_kwh, 'values after decryption');
    t.equal(good.stats().decryptErrors, 0);
    await good.close();
    const bad = createDsmrMeter({
      id: 'lux',
      port: pty.b,
      version: 'smarty',
      key: Buffer.alloc(16, 1),
      readTimeoutMs: 3000,
    });
    await t.rejects(bad.read(), { code: 'DECRYPT' });
    t.ok(bad.stats().decryptErrors > 0);
    await bad.close();
  },
);
