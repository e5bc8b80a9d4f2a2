import t from 'tap';
import { readFileSync } from 'node:fs';
import { TelegramFramer, parseTelegram } from '../../drivers/dsmr/index.js';

const fixture = (name: string) => readFileSync(new URL(`fixtures/dsmr/${name}`, import.meta.url));
const good = fixture('dsmr-5.0.2-spec.txt');

function feed(framer: TelegramFramer, bytes: Buffer, chunk: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(...framer.push(bytes.subarray(i, i + chunk)));
  return out;
}

t.test('a telegram comes out byte-identical, whatever the chunking', async (t) => {
  for (const chunk of [1, 2, 7, 64, 4096]) {
    const f = new TelegramFramer();
    const frames = feed(f, Buffer.concat([good, good]), chunk);
    t.equal(frames.length, 2, `chunk ${chunk}: two frames`);
    t.same(frames[0], good, `chunk ${chunk}: exact bytes incl. CRLF`);
    t.same(f.stats, { garbageBytes: 0, truncated: 0, frames: 2 });
  }
});

t.test('garbage, a partial previous telegram and noise before a good one', async (t) => {
  const f = new TelegramFramer();
  const frames = feed(f, fixture('fault-garbage-prefixed.txt'), 1);
  t.equal(frames.length, 1);
  t.same(frames[0], good);
  t.ok(f.stats.garbageBytes > 200, 'the junk was counted and dropped');
});

t.test('a truncated telegram does not swallow the next good one', async (t) => {
  const f = new TelegramFramer();
  const frames = feed(f, Buffer.concat([fixture('fault-truncated.txt'), good]), 5);
  t.equal(frames.length, 1);
  t.same(frames[0], good);
  t.equal(f.stats.truncated, 1);
});

t.test('footer: waits for the CRC digits and the CRLF, accepts a bare "!" (DSMR 2.2)', async (t) => {
  const f = new TelegramFramer();
  const body = good.subarray(0, good.length - 6); // up to and including '!'
  t.same(f.push(body), [], 'nothing yet after "!"');
  t.same(f.push(good.subarray(good.length - 6, good.length - 3)), [], 'nor after "!E47"');
  t.same(f.push(good.subarray(good.length - 3, good.length - 1)), [], 'nor after CR');
  t.same(f.push(good.subarray(good.length - 1)), [good], 'complete after LF');
  const old = fixture('dsmr-2.2-iskra.txt');
  t.same(new TelegramFramer().push(old), [old], 'DSMR 2.2 frame');
  // A footer that is cut short is handed on as a frame, for parseTelegram to call truncated.
  const cut = Buffer.concat([good.subarray(0, good.length - 4), good]);
  const frames = new TelegramFramer().push(cut);
  t.equal(frames.length, 2);
  t.match(parseTelegram(frames[0]!), { ok: false, error: { context: { reason: 'truncated' } } });
  t.equal(parseTelegram(frames[1]!).ok, true);
  // LF without CR after the CRC.
  t.same(new TelegramFramer().push(Buffer.from('/ABC5 x\r\n\r\n!1234\nrest')), [
    Buffer.from('/ABC5 x\r\n\r\n!1234\n'),
  ]);
});

t.test('bounded: a header never followed by a footer is dropped at the size limit', async (t) => {
  const f = new TelegramFramer({ maxBytes: 256 });
  t.same(f.push(Buffer.concat([Buffer.from('/ABC5 start\r\n'), Buffer.alloc(300, 0x41)])), []);
  t.equal(f.stats.truncated, 1);
  t.same(f.push(good), [good], 'recovers on the next header');
});

t.test('a "/" that is not a header is garbage; a possible header at a chunk end is kept', async (t) => {
  const f = new TelegramFramer();
  t.same(f.push(Buffer.from('a/b/12 /AB')), []);
  t.equal(f.stats.garbageBytes, 7, 'everything up to the possible header "/AB"');
  t.same(f.push(good), [good], '"/AB/" is no header; the real one follows');
  t.equal(f.stats.garbageBytes, 10);
  t.same(f.push(good.subarray(0, 100)), []);
  f.reset();
  t.equal(f.stats.garbageBytes, 110, 'reset drops the partial telegram');
  t.same(f.push(good), [good], 'after reset the next telegram comes through');
});
