import t from 'tap';
import { decodeSample, encodeSample } from '../../buffer/sample-codec.js';
import { QualityFlag } from '../../cloud-contract/sample.js';

t.test(
  'the clock info of an unsynchronised sample survives storage, and synced samples carry none',
  async (t) => {
    const s = {
      meter: 'main',
      ts: 1_577_836_800_000,
      flags: QualityFlag.clockUnsynced,
      values: { power_w: { type: 'int' as const, mantissa: 512, exponent: 0 } },
      clock: { monoMs: 8_123_456, boot: '3f0c1d2e-0000-4000-8000-000000000001' },
    };
    t.same(decodeSample(7, encodeSample(s)), { seq: 7, ...s });
    const { clock: _c, ...synced } = s;
    const back = decodeSample(8, encodeSample({ ...synced, flags: 0 }));
    t.notOk('clock' in back);
    const bad = Buffer.concat([encodeSample({ ...synced, flags: 0 }), Buffer.from([9])]);
    t.throws(() => decodeSample(9, bad), { code: 'BUFFER_DECODE' }, 'an unknown trailer is a decode error');
  },
);
