import t from 'tap';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { channelByName } from '../../cloud-contract/channels.js';
import { valueToNumber } from '../../cloud-contract/sample.js';
import { decodeRegister, encodeRegister, reorder } from '../../drivers/modbus/codec.js';
import { resolveProfile } from '../../drivers/modbus/meter.js';
import { planReads } from '../../drivers/modbus/planner.js';
import { validateProfile, type ModbusProfile, type RegisterDef } from '../../drivers/modbus/profile.js';
import { builtinProfiles } from '../../drivers/profiles/index.js';
import { isDriverError } from '../../drivers/errors.js';

const profileDir = fileURLToPath(new URL('../../drivers/profiles/', import.meta.url));

// The exact requests one poll makes: [function code, wire address, register count].
const expectedRequests: Record<string, [number, number, number][]> = {
  'eastron-sdm120': [
    [4, 0x0000, 80],
    [4, 0x0156, 2],
  ],
  'eastron-sdm230': [
    [4, 0x0000, 76],
    [4, 0x0156, 2],
  ],
  'eastron-sdm630': [
    [4, 0x0000, 80],
    [4, 0x00c8, 26],
    [4, 0x0156, 2],
  ],
  'carlo-gavazzi-em24': [
    [4, 0x0000, 24],
    [4, 0x0028, 16],
    [4, 0x005c, 4],
  ],
  'carlo-gavazzi-em340': [
    [4, 0x0000, 24],
    [4, 0x0028, 16],
    [4, 0x004e, 4],
  ],
  'abb-b23': [
    [3, 0x5000, 20],
    [3, 0x5b00, 62],
  ],
  'schneider-iem3155': [
    [3, 2999, 34],
    [3, 3053, 32],
    [3, 3109, 2],
    [3, 3203, 24],
  ],
  'finder-7m38': [
    [4, 2490, 70],
    [4, 2760, 8],
  ],
};

t.test('every built-in profile is lint-clean, named after its file, and names its source', async (t) => {
  const files = readdirSync(profileDir).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
  t.same(Object.keys(builtinProfiles).sort(), files.map((f) => f.replace(/\.ts$/, '')).sort());
  t.ok(files.length >= 8, 'at least 8 models');
  for (const [name, p] of Object.entries(builtinProfiles)) {
    t.same(validateProfile(p), [], `${name} validates`);
    t.equal(p.name, name);
    t.ok(p.source.length > 20, `${name} names its source document`);
    for (const r of p.registers) t.ok(channelByName(r.channel), `${name}: ${r.channel} is canonical`);
  }
});

t.test('one poll makes exactly the planned requests, never more than the profile allows', async (t) => {
  for (const [name, p] of Object.entries(builtinProfiles)) {
    const plan = planReads(p);
    t.same(
      plan.map((b) => [b.fn, b.address, b.count]),
      expectedRequests[name],
      `${name} requests`,
    );
    const carried = plan.flatMap((b) => b.registers.map((r) => r.reg.channel)).sort();
    t.same(carried, p.registers.map((r) => r.channel).sort(), `${name}: every register read exactly once`);
    for (const b of plan) t.ok(b.count <= (p.maxRegisters ?? 125), `${name}: block within maxRegisters`);
  }
});

const reg = (address: number, extra: Partial<RegisterDef> = {}): RegisterDef => ({
  channel: `voltage_l${(address % 3) + 1}_v`,
  function: 'input',
  address,
  type: 'uint16',
  unit: 'V',
  ...extra,
});
const synth = (over: Partial<ModbusProfile>, registers: RegisterDef[]): ModbusProfile => ({
  name: 'test-meter',
  vendor: 'T',
  model: 'M',
  source: 'a test',
  phases: 3,
  registers,
  ...over,
});

t.test(
  'the planner bridges gaps up to maxGap, splits at maxRegisters, and skips refused ranges',
  async (t) => {
    const regs = [reg(0), reg(10), reg(20, { channel: 'frequency_hz', unit: 'Hz' })];
    const shape = (p: ModbusProfile) => planReads(p).map((b) => [b.fn, b.address, b.count]);
    t.same(shape(synth({ maxGap: 0 }, regs)), [
      [4, 0, 1],
      [4, 10, 1],
      [4, 20, 1],
    ]);
    t.same(shape(synth({ maxGap: 9 }, regs)), [[4, 0, 21]]);
    t.same(shape(synth({ maxGap: 9, maxRegisters: 11 }, regs)), [
      [4, 0, 11],
      [4, 20, 1],
    ]);
    t.same(shape(synth({ maxGap: 9, refused: [{ function: 'input', from: 15, to: 15 }] }, regs)), [
      [4, 0, 11],
      [4, 20, 1],
    ]);
    // 1-based documents: register 1 is wire address 0; holding and input are planned apart.
    const mixed = [reg(1, { type: 'float32' }), reg(5, { function: 'holding', channel: 'voltage_l3_v' })];
    t.same(shape(synth({ addressBase: 1 }, mixed)), [
      [3, 4, 1],
      [4, 0, 2],
    ]);
  },
);

t.test('validateProfile reports every problem with its path', async (t) => {
  t.same(validateProfile(null), [
    { path: '', message: 'a profile must be an object with name, registers, …' },
  ]);
  const problems = validateProfile({
    name: 'Bad Name',
    vendor: '',
    phases: 2,
    addressBase: 1,
    maxRegisters: 200,
    maxGap: -1,
    pauseMs: -5,
    refused: [{ function: 'coil', from: 5, to: 1 }],
    registers: [
      { channel: 'no_such', function: 'input', address: 0, type: 'int16', unit: 'V' },
      { channel: 'power_w', function: 'input', address: 10, type: 'int32', unit: 'kWh', scale: 0.5 },
      { channel: 'power_w', function: 'input', address: 11, type: 'int12', unit: 'W', wordOrder: 'XX' },
      {
        channel: 'frequency_hz',
        function: 'coil',
        address: 'x',
        type: 'int16',
        unit: 'Hz',
        sentinels: ['ff'],
      },
      7,
    ],
  });
  const paths = problems.map((p) => p.path);
  for (const p of [
    'name',
    'vendor',
    'model',
    'source',
    'phases',
    'maxRegisters',
    'maxGap',
    'pauseMs',
    'refused[0].function',
    'refused[0]',
    'registers[0].channel',
    'registers[0].address',
    'registers[1].unit',
    'registers[1].scale',
    'registers[2].channel',
    'registers[2].type',
    'registers[2].wordOrder',
    'registers[3].function',
    'registers[3].sentinels',
    'registers[3].address',
    'registers[4]',
  ])
    t.ok(paths.includes(p), `reports ${p}`);
  t.match(
    validateProfile(
      synth({ refused: [{ function: 'input', from: 0, to: 3 }] }, [reg(0), reg(1, { type: 'int32' })]),
    ),
    [
      { path: 'registers[0].address', message: /refused/ },
      { path: 'registers[1].address', message: /refused/ },
    ],
  );
  t.match(validateProfile(synth({}, [reg(0, { type: 'int32' }), reg(1)])), [
    { path: 'registers[1].address', message: /overlaps/ },
  ]);
  t.match(validateProfile({ ...synth({}, []), registers: [] }), [{ path: 'registers' }]);
  const e = (() => {
    try {
      resolveProfile({ ...synth({}, []), registers: [] }, 'meters[0].profile');
    } catch (err) {
      return err;
    }
  })();
  t.ok(isDriverError(e, 'PROFILE_INVALID'));
  t.match((e as Error).message, /meters\[0\]\.profile\.registers/);
  t.throws(() => resolveProfile('acme-x1'), { code: 'PROFILE_INVALID', message: /eastron-sdm630/ });
});

t.test('word orders, scale and unit conversion keep the value exact', async (t) => {
  const bytes = Buffer.from([0xa, 0xb, 0xc, 0xd]);
  t.same([...reorder(bytes, 'ABCD')], [0xa, 0xb, 0xc, 0xd]);
  t.same([...reorder(bytes, 'CDAB')], [0xc, 0xd, 0xa, 0xb]);
  t.same([...reorder(bytes, 'BADC')], [0xb, 0xa, 0xd, 0xc]);
  t.same([...reorder(bytes, 'DCBA')], [0xd, 0xc, 0xb, 0xa]);
  const types = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64'] as const;
  for (const type of types)
    for (const wordOrder of ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const) {
      const r: RegisterDef = {
        channel: 'energy_import_kwh',
        function: 'input',
        address: 0,
        type,
        wordOrder,
        scale: -2,
        unit: 'Wh',
      };
      const d = decodeRegister(r, encodeRegister(r, 123.45));
      t.ok(d.ok, `${type} ${wordOrder}`);
      if (!d.ok) continue;
      // 123.45 kWh = 123450 Wh = 12345000 × 10^-2 Wh → exponent -2 - 3.
      t.equal(d.value.exponent, -5);
      t.equal(d.value.type, type.startsWith('float') ? (type === 'float32' ? 'f32' : 'f64') : 'int');
      if (!type.endsWith('16')) t.ok(Math.abs(valueToNumber(d.value) - 123.45) < 1e-3, `${type} value`);
    }
  const int: RegisterDef = {
    channel: 'power_w',
    function: 'input',
    address: 0,
    type: 'int32',
    wordOrder: 'CDAB',
    scale: -1,
    unit: 'kW',
  };
  t.same(decodeRegister(int, encodeRegister(int, -1500)), {
    ok: true,
    value: { type: 'int', mantissa: -15, exponent: 2 },
  });
});

t.test('NaN, sentinels, implausible and unsafe values are flagged, never numbers', async (t) => {
  const f: RegisterDef = {
    channel: 'voltage_l1_v',
    function: 'input',
    address: 0,
    type: 'float32',
    unit: 'V',
  };
  // `raw` is the value's bytes in big-endian (ABCD) order as hex, whatever the register's word order.
  t.same(decodeRegister(f, Buffer.from('7fc00000', 'hex')), { ok: false, why: 'nan', raw: '7FC00000' });
  t.same(decodeRegister({ ...f, type: 'float64' }, Buffer.from('7ff0000000000000', 'hex')), {
    ok: false,
    why: 'nan',
    raw: '7FF0000000000000',
  });
  const wire = Buffer.from('0000ffc0', 'hex');
  t.same(decodeRegister({ ...f, wordOrder: 'CDAB', sentinels: ['FFC00000'] }, wire), {
    ok: false,
    why: 'sentinel',
    raw: 'FFC00000',
  });
  t.equal(wire.toString('hex'), '0000ffc0', 'the wire bytes are left as read');
  t.same(
    decodeRegister({ ...f, sentinels: ['FFC00000'] }, Buffer.from('43660000', 'hex')),
    {
      ok: true,
      value: { type: 'f32', mantissa: 230, exponent: 0 },
    },
    'a value that is no sentinel decodes',
  );
  t.match(decodeRegister({ ...f, sentinels: ['FFC00000'] }, Buffer.from('ffc00000', 'hex')), {
    ok: false,
    why: 'sentinel',
    raw: 'FFC00000',
  });
  t.same(decodeRegister(f, encodeRegister(f, 5000)), { ok: false, why: 'range', raw: '459C4000' });
  t.match(decodeRegister({ ...f, max: 250 }, encodeRegister(f, 260)), { ok: false, why: 'range' });
  const big: RegisterDef = {
    channel: 'energy_import_kwh',
    function: 'input',
    address: 0,
    type: 'uint64',
    unit: 'Wh',
  };
  t.same(decodeRegister(big, Buffer.from('0100000000000000', 'hex')), {
    ok: false,
    why: 'unsafe',
    raw: '0100000000000000',
  });
});
