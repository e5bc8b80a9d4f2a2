import t from 'tap';
import { readFileSync } from 'node:fs';
import { intValue } from '../../cloud-contract/sample.js';
import { channelByName } from '../../cloud-contract/channels.js';
import {
  crc16,
  crcHex,
  decodeHexText,
  dsmrObisMap,
  parseDsmrNumber,
  parseTelegram,
  type DsmrTelegram,
} from '../../drivers/dsmr/index.js';
import { formatDsmrTime, isEuSummerTime, parseDsmrTime } from '../../drivers/dsmr/time.js';

const fixture = (name: string) => readFileSync(new URL(`fixtures/dsmr/${name}`, import.meta.url));
const goldens = [
  'dsmr-5.0.2-spec.txt',
  'dsmr-4.2-kaifa.txt',
  'dsmr-2.2-iskra.txt',
  'emucs-1.7-fluvius.txt',
  'smarty-lu.txt',
];

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

function parseOk(t: TapTest, name: string): DsmrTelegram {
  const r = parseTelegram(fixture(name));
  if (!r.ok) throw new Error(`${name}: ${r.error.code} ${r.error.message}`);
  t.same(r.telegram.problems, [], `${name}: no problems`);
  return r.telegram;
}

t.test('crc16 is CRC-16/ARC', async (t) => {
  t.equal(crc16(Buffer.from('123456789')), 0xbb3d, 'published check value');
  t.equal(crc16(Buffer.alloc(0)), 0);
  t.equal(crcHex(0x1a), '001A', 'four upper-case hex digits');
  const b = Buffer.from('/ISK5\\2M550T-1012\r\n\r\n!');
  t.equal(crc16(b.subarray(5), crc16(b.subarray(0, 5))), crc16(b), 'can be continued over chunks');
});

t.test('DSMR 5.0.2 spec telegram: every value exact', async (t) => {
  const tg = parseOk(t, 'dsmr-5.0.2-spec.txt');
  t.equal(tg.header, 'ISk5\\2MT382-1000');
  t.equal(tg.version, '50');
  t.same(tg.crc, { sent: 0xe47c, computed: 0xe47c });
  t.equal(tg.serial, 'K8EG004046395507', 'hex-encoded equipment id decoded');
  t.equal(tg.meterTime, Date.parse('2010-12-09T11:30:20+01:00'), 'W = CET');
  t.same(tg.channelTimes, { gas_m3: Date.parse('2010-12-09T11:25:00+01:00') }, 'gas has its own time');
  t.same(tg.values, {
    energy_import_t1_kwh: intValue(123456789, -3),
    energy_import_t2_kwh: intValue(123456789, -3),
    energy_export_t1_kwh: intValue(123456789, -3),
    energy_export_t2_kwh: intValue(123456789, -3),
    energy_import_kwh: intValue(246913578, -3),
    energy_export_kwh: intValue(246913578, -3),
    tariff: intValue(2),
    power_import_w: intValue(1193, 0),
    power_export_w: intValue(0, 0),
    power_w: intValue(1193, 0),
    power_failures: intValue(4),
    long_power_failures: intValue(2),
    voltage_sags_l1: intValue(2),
    voltage_sags_l2: intValue(1),
    voltage_sags_l3: intValue(0),
    voltage_swells_l1: intValue(0),
    voltage_swells_l2: intValue(3),
    voltage_swells_l3: intValue(0),
    voltage_l1_v: intValue(2201, -1),
    voltage_l2_v: intValue(2202, -1),
    voltage_l3_v: intValue(2203, -1),
    current_l1_a: intValue(1),
    current_l2_a: intValue(2),
    current_l3_a: intValue(3),
    power_import_l1_w: intValue(1111),
    power_import_l2_w: intValue(2222),
    power_import_l3_w: intValue(3333),
    power_export_l1_w: intValue(4444),
    power_export_l2_w: intValue(5555),
    power_export_l3_w: intValue(6666),
    power_l1_w: intValue(-3333),
    power_l2_w: intValue(-3333),
    power_l3_w: intValue(-3333),
    gas_m3: intValue(12785123, -3),
  });
  for (const name of Object.keys(tg.values)) t.ok(channelByName(name), `${name} is a canonical channel`);
  t.equal(tg.lines.length, 35, 'all data lines kept, mapped or not');
});

t.test('DSMR 4.2 (Kaifa): summer time, single phase, hourly gas', async (t) => {
  const tg = parseOk(t, 'dsmr-4.2-kaifa.txt');
  t.equal(tg.version, '42');
  t.equal(tg.serial, 'E0025000084211415');
  t.equal(tg.meterTime, Date.parse('2016-08-30T14:15:23+02:00'), 'S = CEST');
  t.same(tg.values.power_import_w, intValue(412, 0), '00.412*kW → 412 W by the exponent');
  t.same(tg.values.current_l1_a, intValue(2));
  t.same(tg.values.gas_m3, intValue(2975514, -3));
  t.equal(tg.channelTimes.gas_m3, Date.parse('2016-08-30T14:00:00+02:00'));
  t.notOk('voltage_l1_v' in tg.values, 'no voltage in this meter');
});

t.test('DSMR 2.2: no CRC, 10 W resolution, gas on a continuation line', async (t) => {
  const tg = parseOk(t, 'dsmr-2.2-iskra.txt');
  t.equal(tg.crc, undefined);
  t.equal(tg.version, undefined);
  t.equal(tg.meterTime, undefined, 'DSMR 2.2 has no clock line');
  t.equal(tg.serial, 'KAL7005079852712');
  t.same(tg.values.power_import_w, intValue(98, 1), '0000.98*kW → 98 × 10^1 W');
  t.same(tg.values.energy_import_t1_kwh, intValue(1001, -3));
  t.same(tg.values.tariff, intValue(1));
  t.same(tg.values.gas_m3, intValue(23456, -3));
  t.equal(tg.channelTimes.gas_m3, Date.parse('2009-02-12T16:00:00+01:00'), 'no suffix: EU rule, winter');
  t.equal(
    parseTelegram(fixture('dsmr-2.2-iskra.txt'), { requireCrc: true }).ok,
    false,
    'rejected if CRC required',
  );
});

t.test('e-MUCS (Fluvius): demand registers, gas as 24.2.3, water meter ignored', async (t) => {
  const tg = parseOk(t, 'emucs-1.7-fluvius.txt');
  t.equal(tg.version, '50217', 'e-MUCS version line');
  t.equal(tg.serial, '1SAG3101021605');
  t.same(tg.values.power_avg_demand_w, intValue(2351));
  t.same(tg.values.power_max_demand_w, intValue(2589));
  t.equal(tg.channelTimes.power_max_demand_w, Date.parse('2020-05-09T13:45:58+02:00'));
  t.same(tg.values.current_l1_a, intValue(0, -2), 'two decimals kept');
  t.same(tg.values.voltage_l3_v, intValue(2347, -1));
  t.same(tg.values.gas_m3, intValue(112384, -3), 'the gas meter (type 003), not the water meter (007)');
  t.same(tg.values.energy_export_kwh, intValue(11, -3));
});

t.test('Smarty (Luxembourg): totals and reactive energy', async (t) => {
  const tg = parseOk(t, 'smarty-lu.txt');
  t.same(tg.values.energy_import_kwh, intValue(441879, -3), 'the meter total, not derived');
  t.same(tg.values.energy_export_kwh, intValue(0, -3));
  t.same(tg.values.energy_reactive_import_kvarh, intValue(86491, -3));
  t.same(tg.values.energy_reactive_export_kvarh, intValue(52142, -3));
  t.same(tg.values.power_w, intValue(221));
  t.same(tg.values.gas_m3, intValue(234567, -3));
});

t.test('every OBIS mapping is exercised by a golden telegram', async (t) => {
  const parsed = goldens.map((g) => parseOk(t, g));
  for (const m of dsmrObisMap) {
    const re = new RegExp(`^${m.obis.replace(/\./g, '\\.').replace('n', '[1-4]')}$`);
    const hit = parsed.find((tg) => tg.lines.some((l) => re.test(l.obis)) && m.channel in tg.values);
    t.ok(hit, `${m.obis} → ${m.channel}`);
    t.ok(channelByName(m.channel), `${m.channel} exists in the channel registry`);
  }
});

t.test('coded errors', async (t) => {
  const crc = parseTelegram(fixture('fault-crc-corrupt.txt'));
  t.equal(crc.ok, false);
  if (!crc.ok) {
    t.equal(crc.error.code, 'CRC');
    t.equal(crc.error.context.expected, 'E47C', 'the CRC the meter sent');
    t.not(crc.error.context.actual, 'E47C', 'the CRC of the bytes received');
    t.match(crc.error.context.telegram, /01\.198\*kW/, 'raw telegram in the context');
  }
  const trunc = parseTelegram(fixture('fault-truncated.txt'));
  t.match(trunc, { ok: false, error: { code: 'BAD_FRAME', context: { reason: 'truncated' } } });
  const typo = parseTelegram(fixture('dsmr-4.2-spec-typo.txt'));
  t.match(typo, { ok: false, error: { code: 'BAD_FRAME', context: { reason: 'malformed-line', line: 20 } } });
  t.match(parseTelegram(fixture('fault-garbage-prefixed.txt')), {
    ok: false,
    error: { context: { reason: 'no-start' } },
  });
  t.match(parseTelegram(Buffer.from('/ABC5 x\r\n\r\n!12\r\n')), {
    ok: false,
    error: { context: { reason: 'truncated' } },
  });
  t.match(parseTelegram(Buffer.from('')), { ok: false, error: { context: { reason: 'no-start' } } });
  // A CRC-less telegram is accepted unless the version says there must be one.
  const bare = Buffer.from('/ABC5 x\r\n\r\n1-0:1.8.1(000001.000*kWh)\r\n!\r\n');
  t.equal(parseTelegram(bare).ok, true);
  t.match(parseTelegram(bare, { requireCrc: true }), {
    ok: false,
    error: { context: { reason: 'crc-missing' } },
  });
});

t.test('unusable values are reported per channel, the rest of the telegram kept', async (t) => {
  const body = Buffer.from(
    '/ABC5 x\r\n\r\n1-0:1.8.1(000001.000*MWh)\r\n1-0:32.7.0(abc*V)\r\n1-0:1.6.0(bad)(01.000*kW)\r\n' +
      '1-0:31.7.0(5)\r\n1-0:1.8.2(000002.000*kWh)\r\n0-1:24.1.0(003)\r\n0-1:24.2.1(x)(1.000*m3)\r\n!',
    'latin1',
  );
  const raw = Buffer.concat([body, Buffer.from(crcHex(crc16(body)))]);
  const r = parseTelegram(raw);
  t.equal(r.ok, true, 'trailing CRLF is optional');
  if (!r.ok) return;
  t.same(
    r.telegram.problems.map((p) => [p.channel, p.reason, p.line]),
    [
      ['energy_import_t1_kwh', 'unit', 3],
      ['voltage_l1_v', 'number', 4],
      ['power_max_demand_w', 'time', 5],
      ['current_l1_a', 'unit', 6],
      ['gas_m3', 'time', 9],
    ],
  );
  t.same(r.telegram.values, { energy_import_t2_kwh: intValue(2000, -3) });
});

t.test('number, text and time helpers', async (t) => {
  t.same(parseDsmrNumber('001234.567*kWh', 'kWh'), { value: intValue(1234567, -3) });
  t.same(parseDsmrNumber('00.193*kW', 'W'), { value: intValue(193, 0) });
  t.same(parseDsmrNumber('001234*Wh', 'kWh'), { value: intValue(1234, -3) });
  t.same(parseDsmrNumber('0230*W', 'W'), { value: intValue(230, 0) });
  t.same(parseDsmrNumber('000012.500*varh', 'kvarh'), { value: intValue(12500, -6) });
  t.same(parseDsmrNumber('-01.5*kW', 'W'), { value: intValue(-15, 2) });
  t.same(parseDsmrNumber('99999999999999999999*kWh', 'kWh'), { reason: 'number' });
  t.same(parseDsmrNumber('1*kW', 'V'), { reason: 'unit' });
  t.same(parseDsmrNumber('12.0', 'm3', 'm3'), { value: intValue(120, -1) });
  t.equal(decodeHexText('4B38'), 'K8');
  t.equal(decodeHexText('0001'), '0001', 'not printable: kept as sent');
  t.equal(decodeHexText('E0025'), 'E0025', 'not hex: kept');
  t.equal(parseDsmrTime('241301000000W'), undefined, 'month 13');
  t.equal(parseDsmrTime('nope'), undefined);
  t.equal(
    parseDsmrTime('240701120000'),
    Date.parse('2024-07-01T12:00:00+02:00'),
    'July without suffix: summer',
  );
  t.ok(isEuSummerTime(Date.parse('2024-03-31T01:00:00Z')), 'starts last Sunday of March 01:00 UTC');
  t.notOk(isEuSummerTime(Date.parse('2024-03-31T00:59:59Z')));
  t.notOk(isEuSummerTime(Date.parse('2024-10-27T01:00:00Z')), 'ends last Sunday of October 01:00 UTC');
  for (const iso of ['2024-01-15T08:09:10Z', '2024-07-15T23:59:59Z']) {
    const ms = Date.parse(iso);
    t.equal(parseDsmrTime(formatDsmrTime(ms)), ms, `${iso} round-trips`);
  }
});
