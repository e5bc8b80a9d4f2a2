import t from 'tap';
import { iecFixture } from './iec-fixture.js';
import { intValue, QualityFlag } from '../../cloud-contract/sample.js';
import {
  ackOptionSelect,
  bcc,
  IecFramer,
  iecObisMapping,
  iecToReading,
  iecToValues,
  normalizeAddress,
  parseAckOptionSelect,
  parseDataMessage,
  parseIdentification,
  parseIecNumber,
  pickModeC,
  signOnRequest,
  type IecFrame,
} from '../../drivers/iec62056/index.js';

const fixture = iecFixture;

/** Frames a capture; returns the identification lines and the data messages' parse results. */
function decode(bytes: Buffer) {
  const framer = new IecFramer();
  const frames: IecFrame[] = framer.push(bytes);
  const idents = frames.filter((f) => f.kind === 'ident').map((f) => parseIdentification(f.line));
  const data = frames.flatMap((f) => (f.kind === 'data' ? [{ bcc: f.bcc, r: parseDataMessage(f.raw) }] : []));
  return { idents, data, stats: framer.stats };
}

await t.test('Landis+Gyr E350, mode C readout with a valid BCC: every mapped value exact', async (t) => {
  const { idents, data } = decode(fixture('landis-gyr-e350.hex'));
  t.same(idents, [
    { ok: true, id: { manufacturer: 'LGZ', z: '4', mode: 'C', baud: 4800, ident: 'ZMF100AC.M26' } },
  ]);
  t.equal(data.length, 1);
  const d = data[0] as (typeof data)[number];
  t.equal(d.bcc, true);
  if (!d.r.ok) throw d.r.error;
  const reading = iecToReading(iecToValues(d.r.sets));
  t.same(reading.values, {
    energy_import_t1_kwh: intValue(42951721, -3),
    energy_import_t2_kwh: intValue(18609568, -3),
    energy_export_t1_kwh: intValue(302, -3),
    energy_export_t2_kwh: intValue(10188, -3),
    energy_import_kwh: intValue(61561289, -3),
    energy_export_kwh: intValue(10490, -3),
    voltage_l1_v: intValue(241, 0),
    voltage_l2_v: intValue(243, 0),
    voltage_l3_v: intValue(242, 0),
    current_l1_a: intValue(35, -2),
    current_l2_a: intValue(52, -2),
    current_l3_a: intValue(47, -2),
  });
  t.equal(reading.serial, '13647123', 'C.1.0 (96.1.0) before the right-aligned 0.0');
  t.equal(reading.flags, 0, 'F.F(00): no error');
  t.same(reading.missing, []);
  t.equal(d.r.sets.length, 22, 'every data set parsed, mapped or not');
});

await t.test(
  'EasyMeter Q3DA, mode D bare push: signed net power per phase, serial from 96.1.255',
  async (t) => {
    const { idents, data } = decode(fixture('easymeter-q3da.hex'));
    t.match(idents, [{ ok: true, id: { manufacturer: 'ESY', z: '5', ident: 'Q3DA1024 V3.03' } }]);
    const d = data[0] as (typeof data)[number];
    t.equal(d.bcc, false);
    if (!d.r.ok) throw d.r.error;
    const reading = iecToReading(iecToValues(d.r.sets));
    t.same(reading.values, {
      energy_import_kwh: intValue(7801269, -7),
      energy_export_kwh: intValue(70412292533, -7),
      power_l1_w: intValue(-7369, -2),
      power_l2_w: intValue(0, -2),
      power_l3_w: intValue(-6861, -2),
      power_w: intValue(-14230, -2),
    });
    t.equal(reading.serial, '1ESY1127000167');
    t.equal(reading.flags, 0);
  },
);

await t.test(
  'Hager eHZ161, mode D: unitless 1.8.0 in kWh, history values (F != 255) not mapped',
  async (t) => {
    const { idents, data } = decode(fixture('hager-ehz161.hex'));
    t.match(idents, [{ ok: true, id: { manufacturer: 'HAG', z: '5', ident: 'eHZ010C_EHZ1vA02' } }]);
    const d = data[0] as (typeof data)[number];
    if (!d.r.ok) throw d.r.error;
    const reading = iecToReading(iecToValues(d.r.sets));
    t.same(reading.values, {
      energy_import_kwh: intValue(12963, -4),
      voltage_l2_v: intValue(22838, -2),
      current_l2_a: intValue(16, -2),
      power_import_l2_w: intValue(26, 0),
    });
    t.equal(reading.serial, '0000067865');
  },
);

await t.test(
  'Itron ACE3000 captured with line noise: the BCC catches it (CRC), nothing delivered',
  async (t) => {
    const { idents, data, stats } = decode(fixture('itron-ace3000-noisy.hex'));
    // The echoed sign-on /?! is not an identification; the meter's is.
    t.match(idents, [
      { ok: false, reason: 'format' },
      { ok: true, id: { manufacturer: 'ACE', z: '0', mode: 'C', baud: 300, ident: '\\3k260V01.19' } },
    ]);
    t.equal(data.length, 1);
    t.match(data[0]?.r, {
      ok: false,
      error: { code: 'CRC', context: { reason: 'bcc', got: 0x46, want: 0x24 } },
    });
    // The STX bytes in the garbage restart the message twice (truncated); what is left fails its BCC.
    t.equal(stats.truncated, 2);
    t.equal(stats.garbageBytes, 6, 'five 0x7f before, one after');
  },
);

await t.test('BCC and data sets of pwitab/iec62056-21 test data', async (t) => {
  // github.com/pwitab/iec62056-21, commit 066b9762d6df9cb3e03f60d04727f593a842f382, tests/test_data.py
  const ok = parseDataMessage(Buffer.from('\x023:171.0(0)\x03\x12', 'latin1'));
  t.match(ok, { ok: true, sets: [{ address: '3:171.0', values: [{ value: '0' }] }] });
  t.match(parseDataMessage(Buffer.from('\x023:171.0(0)\x03\x11', 'latin1')), {
    ok: false,
    error: { code: 'CRC' },
  });
  const many = parseDataMessage(Buffer.from('\x023:14(314*kWh)4:15(415*kWh)\r\n!\r\n\x03"', 'latin1'));
  t.match(many, {
    ok: true,
    sets: [
      { address: '3:14', values: [{ value: '314', unit: 'kWh' }] },
      { address: '4:15', values: [{ value: '415', unit: 'kWh' }] },
    ],
  });
  t.equal(bcc(Buffer.from('3:14(314*kWh)4:15(415*kWh)\r\n\x03', 'latin1')), 0x04);
  t.same(ackOptionSelect('5'), Buffer.from('\x06050\r\n', 'latin1'));
  t.same(parseAckOptionSelect(Buffer.from('\x06051\r\n', 'latin1')), { z: '5', mode: '1' });
  t.equal(parseAckOptionSelect(Buffer.from('\x0605\r\n', 'latin1')), undefined);
  t.same(signOnRequest('45678903'), Buffer.from('/?45678903!\r\n'));
  t.match(parseIdentification('/Els6\\2EK280'), {
    ok: true,
    id: { manufacturer: 'Els', z: '6', baud: 19200 },
  });
});

await t.test('identification: modes by Z, reserved Z is unknown-baud, junk is format', async (t) => {
  t.match(parseIdentification('/ABCEmeter'), { ok: true, id: { mode: 'B', baud: 9600 } });
  t.match(parseIdentification('/ABCAmeter'), { ok: true, id: { mode: 'B', baud: 600 } });
  t.match(parseIdentification('/ABC:meter'), { ok: true, id: { mode: 'A', baud: 300 } });
  t.match(parseIdentification('/ABC7meter'), { ok: false, reason: 'unknown-baud', message: /reserves/ });
  t.match(parseIdentification('/ABCGmeter'), { ok: false, reason: 'unknown-baud' });
  t.match(parseIdentification('/AB'), { ok: false, reason: 'format' });
  t.match(parseIdentification('/ABC!x'), { ok: false, reason: 'format' });
  t.equal(pickModeC(9600, undefined), '5');
  t.equal(pickModeC(19200, 2400), '3');
  t.equal(pickModeC(4800, 5000), '4');
  t.equal(pickModeC(300, 9600), '0');
});

await t.test('addresses, numbers and mapping', async (t) => {
  t.same(normalizeAddress('1-0:1.8.0*255'), { medium: 1, channel: 0, cde: '1.8.0' });
  t.same(normalizeAddress('1.8.0*96'), { cde: '1.8.0*96' });
  t.same(normalizeAddress('F.F'), { cde: '97.97.0' });
  t.same(normalizeAddress('C.1'), { cde: '96.1.0' });
  t.equal(normalizeAddress('0.5.1.2'), undefined);
  t.equal(normalizeAddress('X.1.0'), undefined);
  t.equal(iecObisMapping('2-0:1.8.0')?.channel, undefined, 'not electricity');
  t.equal(iecObisMapping('1-1:36.7.0')?.channel, 'power_l1_w');
  t.same(parseIecNumber('-000.82', 'kW', 'W'), { value: intValue(-82, 1) });
  t.same(parseIecNumber('12', 'Wh', 'kWh'), { value: intValue(12, -3) });
  t.same(parseIecNumber('1', 'kwh', 'kWh'), { value: intValue(1, 0) }, 'unit case-insensitive');
  t.same(parseIecNumber('1', 'V', 'W'), { reason: 'unit' });
  t.same(parseIecNumber('1e3', undefined, 'W'), { reason: 'number' });
  t.same(parseIecNumber('-0', 'W', 'W'), { value: intValue(0, 0) });
});

await t.test('readings: net and totals derived exactly, error register, unusable values', async (t) => {
  const block = (lines: string[]) => {
    const r = parseDataMessage(Buffer.from(`\r\n${lines.join('\r\n')}\r\n!\r\n`, 'latin1'));
    if (!r.ok) throw r.error;
    return iecToReading(iecToValues(r.sets));
  };
  const r = block([
    '1.7.0(01.250*kW)2.7.0(00.300*kW)',
    '21.7.0(0.5*kW)',
    '22.7.0(120*W)',
    '1.8.1(10.5*kWh)',
    '1.8.2(2.25*kWh)',
    '0-1:96.1.0(GASMETER)',
    '0-0:96.1.0(ELEC1)',
    'F.F(00000010)',
    '32.7.0(ERROR*V)',
    '1.6.0(01.2*kW)(2406011230)',
  ]);
  t.same(r.values, {
    power_import_w: intValue(1250, 0),
    power_export_w: intValue(300, 0),
    power_import_l1_w: intValue(5, 2),
    power_export_l1_w: intValue(120, 0),
    energy_import_t1_kwh: intValue(105, -1),
    energy_import_t2_kwh: intValue(225, -2),
    power_w: intValue(950, 0),
    power_l1_w: intValue(380, 0),
    energy_import_kwh: intValue(1275, -2),
  });
  t.equal(r.serial, 'ELEC1', 'the M-Bus device id is not the meter serial');
  t.equal(r.flags, QualityFlag.partial | QualityFlag.outOfRange | QualityFlag.meterError);
  t.same(r.missing, ['voltage_l1_v']);
  t.match(r.errors, [
    { code: 'BAD_FRAME', context: { reason: 'number', channel: 'voltage_l1_v' } },
    { code: 'BAD_FRAME', context: { reason: 'error-register', errorRegister: '00000010' } },
  ]);
});

await t.test('malformed messages are coded BAD_FRAME with a reason', async (t) => {
  const bad = (s: string, reason: string, opts = {}) =>
    t.match(
      parseDataMessage(Buffer.from(s, 'latin1'), opts),
      { ok: false, error: { code: 'BAD_FRAME', context: { reason } } },
      JSON.stringify(s),
    );
  bad('\x021.8.0(1)\r\n!\r\n', 'truncated');
  bad('\r\n1.8.0(1)\r\n', 'truncated');
  bad('\r\n1.8.0(1\r\n!\r\n', 'line');
  bad('\r\n1.8.0(1)\r\n!\r\nmore\r\n', 'line');
  bad('\r\n1.8.0(\xff)\r\n!\r\n', 'noise');
  bad('\r\n1.8.0(1)\r\n!\r\n', 'no-bcc', { requireBcc: true });
  // Kamstrup-style `!` glued to the last line ends the block too.
  t.match(parseDataMessage(Buffer.from('\r\n6.31(0109868*h)!\r\n', 'latin1')), { ok: true });
});

await t.test('framer: truncation by a new start, noise, split chunks, overlong lines', async (t) => {
  const f = new IecFramer();
  const msg = Buffer.from('/ABC5x\r\n\x021.8.0(1*kWh)\r\n!\r\n\x03', 'latin1');
  const full = Buffer.concat([msg, Buffer.from([bcc(msg.subarray(msg.indexOf(2) + 1))])]);
  const frames: IecFrame[] = [];
  for (const b of Buffer.concat([Buffer.from('zz'), full.subarray(0, 20), full]))
    frames.push(...f.push(Buffer.from([b])));
  t.same(
    frames.map((x) => x.kind),
    ['ident', 'data'],
    'the cut-off first message is dropped up to the next STX',
  );
  t.equal(f.stats.truncated, 1);
  t.equal(f.stats.garbageBytes, 2);
  t.equal(f.pending(), 0);
  const g = new IecFramer();
  t.same(g.push(Buffer.from(`/${'x'.repeat(200)}`)), []);
  t.ok(g.stats.garbageBytes > 0, 'an identification longer than 128 characters is noise');
  g.push(Buffer.from('/ABC5x\r\n\x02abc'));
  t.ok(g.pending() > 0);
  g.reset();
  t.equal(g.pending(), 0);
});
