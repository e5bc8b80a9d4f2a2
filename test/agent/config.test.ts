import t from 'tap';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import {
  ConfigError,
  formatDuration,
  formatProblem,
  formatSize,
  isConfigError,
  loadConfig,
  parseConfig,
  parseDuration,
  parseSize,
  type ConfigProblem,
  type ConfigProblemCode,
  type ProfileCatalog,
} from '../../agent/config/index.js';
import { configJsonSchema, jsonSchemaFile } from '../../agent/config/json-schema.js';
import { closest } from '../../agent/config/suggest.js';
import { tempDir } from '../harness/tmp.js';
import { repoRoot } from '../harness/cli.js';

const fixtures = `${repoRoot}test/agent/fixtures/config`;

async function problemsOf(
  file: string,
  opts: Parameters<typeof loadConfig>[1] = {},
): Promise<ConfigProblem[]> {
  try {
    await loadConfig(file, opts);
  } catch (err) {
    if (isConfigError(err)) return [...err.problems];
    throw err;
  }
  throw new Error(`${file} loaded without problems`);
}

interface Expect {
  code: ConfigProblemCode;
  field: string;
  line: number;
  message: RegExp;
  fix?: RegExp;
}

// One fixture per kind of mistake; each must give its own specific problem, at its line.
const bad: Record<string, Expect> = {
  'unknown-key': {
    code: 'UNKNOWN_KEY',
    field: 'meters[0].intervall',
    line: 7,
    message: /unknown key/,
    fix: /did you mean interval\?/,
  },
  baud: {
    code: 'NOT_ALLOWED',
    field: 'meters[1].baud',
    line: 10,
    message: /must be one of 1200, .*115200; got 96000/,
    fix: /did you mean 9600\?/,
  },
  'duration-without-unit': {
    code: 'WRONG_TYPE',
    field: 'meters[0].interval',
    line: 7,
    message: /a duration with a unit.*got 5$/,
    fix: /5s/,
  },
  'time-source': {
    code: 'NOT_ALLOWED',
    field: 'time.source',
    line: 8,
    message: /must be one of auto, kernel, file, trust; got "?chrony"?/,
  },
  'duration-words': {
    code: 'BAD_FORMAT',
    field: 'batch.maxDelay',
    line: 8,
    message: /got "30 seconds"/,
    fix: /did you mean 30s\?/,
  },
  'batch-too-big': {
    code: 'OUT_OF_RANGE',
    field: 'batch.maxSize',
    line: 8,
    message: /at most 128KiB; got "256KiB"/,
    fix: /IoT Core/,
  },
  'duplicate-id': {
    code: 'DUPLICATE_ID',
    field: 'meters[1].id',
    line: 7,
    message: /duplicate meter id "main", already used by meters\[0\]/,
  },
  'same-unit': {
    code: 'ADDRESS_CLASH',
    field: 'meters[1].unit',
    line: 7,
    message: /unit 1 on \/dev\/ttyUSB0 is already meters\[0\] \(flat-1\)/,
    fix: /different Modbus address/,
  },
  'tcp-same-unit': {
    code: 'ADDRESS_CLASH',
    field: 'meters[1].unit',
    line: 7,
    message: /unit 1 at 192\.168\.1\.50:502 is already meters\[0\] \(pv\)/,
  },
  'dsmr-on-modbus-port': {
    code: 'PORT_CLASH',
    field: 'meters[1].port',
    line: 9,
    message: /DSMR P1 port and a Modbus bus cannot share/,
    fix: /by-id/,
  },
  'bus-settings': {
    code: 'PORT_CLASH',
    field: 'meters[1].baud',
    line: 12,
    message: /uses baud 9600; got 19200/,
    fix: /same baud, parity/,
  },
  'yaml-syntax': { code: 'YAML_SYNTAX', field: '', line: 5, message: /YAML syntax/, fix: /indentation/ },
  'duplicate-key': { code: 'YAML_SYNTAX', field: '', line: 7, message: /unique/, fix: /remove one/ },
  'missing-port': {
    code: 'MISSING_KEY',
    field: 'meters[0].port',
    line: 3,
    message: /is required/,
    fix: /add port — Serial device/,
  },
  'unknown-driver': {
    code: 'NOT_ALLOWED',
    field: 'meters[0].driver',
    line: 4,
    message: /must be one of modbus-rtu, modbus-tcp, dsmr, sml, iec62056-21; got "modbus_tcp"/,
    fix: /did you mean modbus-tcp\?/,
  },
  'thing-name': { code: 'BAD_FORMAT', field: 'thing', line: 1, message: /AWS IoT thing name.*got "apt 12/ },
  'no-meters': { code: 'MISSING_KEY', field: 'meters', line: 2, message: /at least one/, fix: /add a meter/ },
  'cloud-port': {
    code: 'OUT_OF_RANGE',
    field: 'cloud.port',
    line: 9,
    message: /at most 65535; got 70000/,
  },
  'unit-range': { code: 'OUT_OF_RANGE', field: 'meters[0].unit', line: 6, message: /at most 247; got 300/ },
  'relative-path': { code: 'BAD_FORMAT', field: 'meters[0].port', line: 5, message: /absolute device path/ },
  'quoted-number': {
    code: 'WRONG_TYPE',
    field: 'meters[0].unit',
    line: 6,
    message: /whole number; got "3"/,
    fix: /without quotes: 3/,
  },
  'unknown-profile': {
    code: 'BAD_PROFILE',
    field: 'meters[0].profile',
    line: 6,
    message: /no built-in profile "eastron-sdm360"/,
    fix: /did you mean eastron-sdm630\?/,
  },
  'inline-profile': {
    code: 'BAD_PROFILE',
    field: 'meters[0].profile.registers[0].channel',
    line: 13,
    message: /unknown channel "power_watts"/,
  },
  empty: { code: 'WRONG_TYPE', field: '', line: 1, message: /mapping/, fix: /example/ },
};

// Not a fixture file: prettier (npm run lint) refuses to check a YAML file it cannot parse.
const brokenYaml =
  'thing: box-1\nmeters:\n  - id: main\n    driver: modbus-rtu\n   port: /dev/ttyUSB0\n    profile: x-y\n';

t.test('each kind of bad config gives its own problem, with file, line, field and fix', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'yaml-syntax.yaml'), brokenYaml);
  for (const [name, want] of Object.entries(bad)) {
    const file = name === 'yaml-syntax' ? join(dir, 'yaml-syntax.yaml') : `${fixtures}/bad/${name}.yaml`;
    const problems = await problemsOf(file);
    const p = problems[0];
    if (!p) throw new Error(`${name}: no problem`);
    t.equal(p.code, want.code, `${name}: code`);
    t.equal(p.field, want.field, `${name}: field`);
    t.equal(p.line, want.line, `${name}: line`);
    t.equal(p.file, file, `${name}: file`);
    t.ok(p.col >= 1, `${name}: column`);
    t.match(p.message, want.message, `${name}: message`);
    if (want.fix) t.match(p.fix ?? '', want.fix, `${name}: fix`);
    if (want.code !== 'YAML_SYNTAX')
      t.equal(problems.length, 1, `${name}: exactly one problem: ${problems.map(formatProblem).join(' | ')}`);
  }
});

t.test('every problem of a file is reported at once, in file order', async (t) => {
  const problems = await problemsOf(`${fixtures}/bad/many.yaml`);
  t.same(
    problems.map((p) => [p.line, p.field, p.code]),
    [
      [2, 'meterz', 'UNKNOWN_KEY'],
      [7, 'meters[0].baud', 'NOT_ALLOWED'],
      [9, 'meters[1].id', 'DUPLICATE_ID'],
      [13, 'buffer.maxSize', 'BAD_FORMAT'],
      [14, 'buffer.policy', 'NOT_ALLOWED'],
    ],
  );
  t.match(problems[3]?.fix, /did you mean 10MB\?/);
  const err = await loadConfig(`${fixtures}/bad/many.yaml`).catch((e: unknown) => e);
  t.ok(err instanceof ConfigError);
  t.match(
    (err as ConfigError).message,
    /5 problems in the config\n.*many\.yaml:2:1 meterz: unknown key \(did you mean meters\?\)/,
  );
});

t.test('the DESIGN §8 example loads with every default applied, frozen', async (t) => {
  const config = await loadConfig(`${fixtures}/good/full.yaml`);
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.meters) && Object.isFrozen(config.meters[0]));
  t.same(config.meters[0], {
    id: 'main',
    driver: 'modbus-rtu',
    port: '/dev/ttyUSB0',
    baud: 9600,
    parity: 'none',
    dataBits: 8,
    stopBits: 1,
    unit: 1,
    profile: 'eastron-sdm630',
    interval: 1000,
    timeout: 1000,
    retries: 1,
  });
  t.same(config.meters[1], {
    id: 'pv',
    driver: 'modbus-tcp',
    host: '192.168.1.50',
    port: 502,
    transport: 'tcp',
    unit: 1,
    profile: 'carlo-gavazzi-em340',
    interval: 5000,
    timeout: 1000,
    retries: 1,
  });
  t.same(config.meters[2], {
    id: 'grid',
    driver: 'dsmr',
    port: '/dev/ttyUSB1',
    baud: 115200,
    dataBits: 8,
    parity: 'none',
    version: 'auto',
    timeout: 30_000,
  });
  t.same(config.cloud, {
    endpoint: 'a1b2c3-ats.iot.eu-west-1.amazonaws.com',
    port: 8883,
    ca: '/etc/meterlink/AmazonRootCA1.pem',
    cert: '/etc/meterlink/device.crt',
    key: '/etc/meterlink/device.key',
    alpn: undefined,
  });
  t.same(config.buffer, {
    path: '/var/lib/meterlink/buffer',
    maxSize: 512 * 1024 ** 2,
    policy: 'drop-oldest',
  });
  t.same(config.batch, { maxDelay: 60_000, maxSize: 128 * 1024 });
  t.same(config.log, { level: 'info' });
  t.same(config.time, { source: 'auto', hold: 900_000 }, 'auto: time.syncFile only when set');
  t.same(config.health, { interval: 60_000 });
  t.same(config.status, { file: '/run/meterlink/status.json' });
});

t.test('a minimal config (thing and one meter, no cloud yet) is enough for read and check', async (t) => {
  const config = await loadConfig(`${fixtures}/good/minimal.yaml`);
  t.equal(config.cloud, undefined);
  t.equal(config.buffer.maxSize, 512 * 1024 ** 2);
  t.equal(config.meters.length, 1);
});

t.test('every optional key is honoured', async (t) => {
  const config = await loadConfig(`${fixtures}/good/everything.yaml`);
  const [a, b, gw, p1] = config.meters;
  t.match(a, { baud: 19200, parity: 'even', unit: 2, interval: 250, timeout: 300, retries: 3 });
  t.match(b, { interval: 5_400_000, profile: { name: 'acme-pm1' } });
  t.match(gw, { driver: 'modbus-tcp', port: 4196, transport: 'rtu-over-tcp', unit: 7 });
  // DSMR 2.2 means 9600 baud 7E1 unless the baud says otherwise.
  t.match(p1, {
    driver: 'dsmr',
    version: '2.2',
    baud: 9600,
    dataBits: 7,
    parity: 'even',
    timeout: 120_000,
    interval: 10_000,
  });
  t.match(config.cloud, { port: 443, alpn: 'x-amzn-mqtt-ca', basicIngestRule: 'meterlink_batches' });
  t.same(config.buffer, {
    path: '/data/buffer',
    maxSize: 2_000_000_000,
    policy: 'refuse',
    maxAge: 30 * 86_400_000,
  });
  t.same(config.batch, { maxDelay: 5000, maxSize: 5000 });
  t.same(
    [config.log.level, config.time.syncFile, config.health.interval, config.status.file],
    ['debug', '/run/clock-synced', 300_000, '/run/meterlink/state.json'],
  );
});

t.test('durations and sizes are read the way people write them', async (t) => {
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('1s'), 1000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration('5m'), 300_000);
  t.equal(parseDuration('5min'), 300_000);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('2d'), 172_800_000);
  t.equal(parseDuration('5'), undefined);
  t.equal(parseDuration('-1s'), undefined);
  t.equal(parseSize('512MiB'), 536_870_912);
  t.equal(parseSize('128KiB'), 131_072);
  t.equal(parseSize('5KB'), 5000);
  t.equal(parseSize('5kB'), 5000);
  t.equal(parseSize('1.5GB'), 1_500_000_000);
  t.equal(parseSize('2GiB'), 2 * 1024 ** 3);
  t.equal(parseSize('100B'), 100);
  t.equal(parseSize(4096), 4096);
  t.equal(parseSize(-1), undefined);
  t.equal(parseSize('5 kilobytes'), undefined);
  t.equal(formatDuration(5_400_250), '1h30m250ms');
  t.equal(formatDuration(0), '0s');
  t.equal(formatDuration(86_400_000), '1d');
  t.equal(formatSize(512 * 1024 ** 2), '512MiB');
  t.equal(formatSize(2 * 1024 ** 3), '2GiB');
  t.equal(formatSize(131_072), '128KiB');
  t.equal(formatSize(5000), '5000B');
});

t.test('did-you-mean only suggests plausible typos', async (t) => {
  t.equal(closest('intervall', ['interval', 'id']), 'interval');
  t.equal(closest('baudrate', ['baud', 'port']), 'baud');
  t.equal(closest('colour', ['thing', 'meters']), undefined);
  t.equal(closest('x', []), undefined);
});

t.test('range checks on durations and sizes name the limit', async (t) => {
  const base =
    'thing: b\nmeters:\n  - {id: m, driver: modbus-rtu, port: /dev/ttyUSB0, profile: eastron-sdm630, interval: 10ms}\n';
  const err = await parseConfig(`${base}buffer:\n  maxSize: 100KiB\n`, 'x.yaml').catch((e: unknown) => e);
  t.ok(isConfigError(err));
  t.same(
    (err as ConfigError).problems.map((p) => `${p.field}: ${p.message}`),
    [
      'meters[0].interval: must be at least 100ms; got "10ms"',
      'buffer.maxSize: must be at least 1MiB; got "100KiB"',
    ],
  );
});

t.test(
  'odd shapes: a meter that is not a mapping, a meter without a driver, a wrong union type',
  async (t) => {
    const err = await parseConfig(
      'thing: b\nmeters:\n  - just-a-string\n  - id: m2\n    port: /dev/ttyUSB0\n  - id: m3\n    driver: modbus-tcp\n    host: [a]\n    profile: sdm\n',
      'odd.yaml',
    ).catch((e: unknown) => e);
    t.ok(isConfigError(err));
    t.same(
      (err as ConfigError).problems.map((p) => [p.line, p.field, p.code]),
      [
        [3, 'meters[0]', 'WRONG_TYPE'],
        [4, 'meters[1].driver', 'MISSING_KEY'],
        [8, 'meters[2].host', 'WRONG_TYPE'],
        [9, 'meters[2].profile', 'BAD_FORMAT'],
      ],
    );
  },
);

t.test('the config file itself: missing, a directory', async (t) => {
  const dir = await tempDir(t);
  const [missing] = await problemsOf(join(dir, 'nope.yaml'));
  t.match(missing, { code: 'FILE_MISSING', line: 0, field: '', fix: /--config/ });
  t.equal(
    formatProblem(missing as ConfigProblem),
    `${dir}/nope.yaml: config file not found (create it (see the example in README.md), or pass --config PATH)`,
  );
  const [isDir] = await problemsOf(dir);
  t.match(isDir, { code: 'FILE_UNREADABLE', message: /directory/ });
});

t.test('requireCloud: the cloud section and its files, the key readable by its owner only', async (t) => {
  const dir = await tempDir(t);
  const write = async (name: string, mode: number) => {
    await writeFile(join(dir, name), '-----BEGIN TEST-----\n');
    await chmod(join(dir, name), mode);
  };
  await write('ca.pem', 0o644);
  await write('device.crt', 0o644);
  await write('device.key', 0o644);
  await mkdir(join(dir, 'adir'));
  const cloud = (ca: string, key: string) =>
    `thing: b\nmeters:\n  - {id: m, driver: modbus-rtu, port: /dev/ttyUSB0, profile: eastron-sdm630}\n` +
    `cloud:\n  endpoint: x-ats.iot.eu-west-1.amazonaws.com\n  ca: ${ca}\n  cert: ${dir}/device.crt\n  key: ${key}\n`;
  const file = join(dir, 'config.yaml');

  await writeFile(file, cloud(`${dir}/ca.pem`, `${dir}/device.key`));
  t.ok(await loadConfig(file), 'without requireCloud the files are not looked at');
  const [perm] = await problemsOf(file, { requireCloud: true });
  t.match(perm, {
    code: 'KEY_PERMISSIONS',
    field: 'cloud.key',
    line: 8,
    message: /mode 644/,
    fix: `chmod 600 ${dir}/device.key`,
  });

  await chmod(join(dir, 'device.key'), 0o600);
  const config = await loadConfig(file, { requireCloud: true });
  t.equal(config.cloud?.key, `${dir}/device.key`);

  await writeFile(file, cloud(`${dir}/adir`, `${dir}/missing.key`));
  const problems = await problemsOf(file, { requireCloud: true });
  t.same(
    problems.map((p) => [p.field, p.code]),
    [
      ['cloud.ca', 'CLOUD_FILE'],
      ['cloud.key', 'CLOUD_FILE'],
    ],
  );
  t.match(problems[0]?.message, /is not a file/);
  t.match(problems[1], { message: /does not exist/, fix: /meterlink provision/ });

  await writeFile(file, 'thing: b\nmeters:\n  - {id: m, driver: dsmr, port: /dev/ttyUSB0}\n');
  const [noCloud] = await problemsOf(file, { requireCloud: true });
  t.match(noCloud, { code: 'MISSING_KEY', field: 'cloud', fix: /meterlink provision/ });
});

t.test('profiles are checked against the drivers catalog when one is given', async (t) => {
  const catalog: ProfileCatalog = {
    names: ['eastron-sdm630', 'eastron-sdm120'],
    validate: (p) =>
      (p as { registers?: unknown }).registers
        ? []
        : [{ path: 'registers', message: 'registers is required' }],
  };
  const text =
    'thing: b\nmeters:\n' +
    '  - {id: a, driver: modbus-rtu, port: /dev/ttyUSB0, unit: 1, profile: eastron-sdm603}\n' +
    '  - {id: b, driver: modbus-rtu, port: /dev/ttyUSB0, unit: 2, profile: {name: x}}\n' +
    '  - {id: c, driver: modbus-rtu, port: /dev/ttyUSB0, unit: 3, profile: eastron-sdm630}\n' +
    '  - {id: d, driver: modbus-rtu, port: /dev/ttyUSB0, unit: 4, profile: acme-x1}\n';
  const err = await parseConfig(text, 'p.yaml', { profiles: catalog }).catch((e: unknown) => e);
  t.ok(isConfigError(err));
  t.same(
    (err as ConfigError).problems.map((p) => [p.field, p.message, p.fix]),
    [
      ['meters[0].profile', 'no built-in profile "eastron-sdm603"', 'did you mean eastron-sdm630?'],
      ['meters[1].profile.registers', 'registers is required', undefined],
      [
        'meters[3].profile',
        'no built-in profile "acme-x1"',
        'built-in profiles: eastron-sdm630, eastron-sdm120',
      ],
    ],
  );
});

t.test('the JSON Schema file for editors is in sync with the schema (npm run config:schema)', async (t) => {
  const onDisk: unknown = JSON.parse(await readFile(jsonSchemaFile, 'utf8'));
  t.same(
    onDisk,
    configJsonSchema(),
    'run npm run config:schema and commit agent/config/meterlink.schema.json',
  );
});

t.test(
  'an editor validating with the published JSON Schema accepts good configs and flags bad ones',
  async (t) => {
    const ajv = new Ajv({ strict: false, allowUnionTypes: true, allErrors: true });
    const validate = ajv.compile(JSON.parse(await readFile(jsonSchemaFile, 'utf8')) as object);
    for (const good of ['full', 'minimal', 'everything']) {
      const doc: unknown = parse(await readFile(`${fixtures}/good/${good}.yaml`, 'utf8'));
      t.ok(validate(doc), `${good}: ${JSON.stringify(validate.errors)}`);
    }
    for (const badFile of ['unknown-key', 'baud', 'duration-words', 'relative-path']) {
      const doc: unknown = parse(await readFile(`${fixtures}/bad/${badFile}.yaml`, 'utf8'));
      t.notOk(validate(doc), badFile);
    }
  },
);
