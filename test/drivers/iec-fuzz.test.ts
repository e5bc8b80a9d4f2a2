import t from 'tap';
import { iecFixture } from './iec-fixture.js';
import { DriverError } from '../../drivers/errors.js';
import {
  IecFramer,
  iecToReading,
  iecToValues,
  parseDataMessage,
  parseIdentification,
} from '../../drivers/iec62056/index.js';
import { iecModelStates } from '../../drivers/simulator/iec-emitter.js';
import { frameIecBlock, renderIecBlock } from '../../drivers/simulator/iec-render.js';
import { seededRandom } from '../../drivers/simulator/random.js';

const fixture = iecFixture;

const sim = Buffer.concat([
  Buffer.from('/SIM5ML100\r\n'),
  frameIecBlock(renderIecBlock(iecModelStates(1, 1000)(1), { serial: 'X1' })),
]);
const seeds = [
  ...['landis-gyr-e350.hex', 'easymeter-q3da.hex', 'hager-ehz161.hex', 'itron-ace3000-noisy.hex'].map(
    fixture,
  ),
  sim,
];

function mutate(b: Buffer, rnd: () => number): Buffer {
  const out = Buffer.from(b);
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rnd() * out.length);
    const r = rnd();
    // Mostly printable or protocol bytes, as a noisy optical line produces; sometimes anything.
    out[at] =
      r < 0.3
        ? ([0x02, 0x03, 0x2f, 0x21, 0x0d, 0x0a, 0x28, 0x29, 0x2a][Math.floor(rnd() * 9)] as number)
        : r < 0.8
          ? 0x20 + Math.floor(rnd() * 95)
          : Math.floor(rnd() * 256);
  }
  return rnd() < 0.2 ? out.subarray(0, Math.floor(rnd() * out.length)) : out;
}

await t.test(
  '20,000 mutated captures: only coded rejections or clean readings, nothing thrown',
  async (t) => {
    const rnd = seededRandom(62056);
    const codes: Record<string, number> = {};
    let readings = 0;
    let idents = 0;
    const started = performance.now();
    for (let n = 0; n < 20_000; n++) {
      const bytes = mutate(seeds[n % seeds.length] as Buffer, rnd);
      const framer = new IecFramer();
      // Random chunking, as a serial port delivers.
      const frames = [];
      for (let at = 0; at < bytes.length;) {
        const len = 1 + Math.floor(rnd() * 64);
        frames.push(...framer.push(bytes.subarray(at, at + len)));
        at += len;
      }
      for (const f of frames) {
        if (f.kind === 'ident') {
          const r = parseIdentification(f.line);
          if (r.ok) idents++;
          else codes[`ident:${r.reason}`] = (codes[`ident:${r.reason}`] ?? 0) + 1;
          continue;
        }
        const r = parseDataMessage(f.raw);
        if (!r.ok) {
          if (!(r.error instanceof DriverError)) t.fail(`uncoded error ${String(r.error)}`);
          const key = `${r.error.code}:${String(r.error.context.reason)}`;
          codes[key] = (codes[key] ?? 0) + 1;
          continue;
        }
        const reading = iecToReading(iecToValues(r.sets));
        for (const v of Object.values(reading.values))
          if (!Number.isSafeInteger(v.mantissa) || !Number.isInteger(v.exponent)) t.fail('inexact value');
        readings++;
      }
    }
    const ms = performance.now() - started;
    t.ok(readings > 1000, `${readings} readings`);
    t.ok(idents > 1000, `${idents} identifications`);
    t.ok((codes['CRC:bcc'] ?? 0) > 1000, `BCC rejections ${codes['CRC:bcc']}`);
    t.ok(
      Object.keys(codes).every((k) => /^(CRC|BAD_FRAME|ident):/.test(k)),
      JSON.stringify(codes),
    );
    // No pathological regex or framer loop: 20,000 captures of ~500 bytes stay well under a minute.
    t.ok(ms < 60_000, `${Math.round(ms)} ms`);
  },
);
