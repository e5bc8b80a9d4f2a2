/**
 * The one schema of `/etc/meterlink/config.yaml`. From it come
 * - the TypeScript type `Config` (what the agent gets: every default applied, durations in ms, sizes in
 *   bytes, derived keys such as `cloud.alpn`);
 * - the JSON Schema file for editors (`meterlink.schema.json`, written by `generate-schema.ts`);
 * - validation and its messages (Ajv, see `validate.ts`), and the defaults (`decode.ts` applies them).
 *
 * The keys of DESIGN §8 are the contract with users: they keep their names and meaning. Keys added here
 * are documented in their `description`, which editors show on hover.
 */
import { CloneType, Type, type StaticEncode, type StaticDecode, type TSchema } from '@sinclair/typebox';
import {
  durationPattern,
  formatDuration,
  formatSize,
  parseDuration,
  parseSize,
  sizePattern,
} from './units.js';
import { TOKEN_PATTERN } from '../dashboard/listen.js';
import { timeSources } from '../time/sources.js';

/** IoT Core's largest MQTT message (AWS IoT Core quotas: "Maximum size of a message payload: 128 KB"). */
export const iotCoreMaxMessageBytes = 128 * 1024;
/** The ALPN protocol IoT Core wants for MQTT with a client certificate on port 443. */
export const iotCoreAlpn = 'x-amzn-mqtt-ca';

export const modbusBauds = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;
export const dsmrVersions = ['auto', '2.2', '3', '4', '5', 'e-mucs', 'smarty'] as const;
export type DsmrVersion = (typeof dsmrVersions)[number];
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

interface RangeOptions {
  description: string;
  min?: number;
  max?: number;
}

/** One of a fixed list of values (a plain JSON Schema `enum`, which gives one clear error, unlike anyOf). */
function oneOf<const T extends readonly (string | number)[]>(values: T, description: string) {
  return Type.Unsafe<T[number]>({ enum: [...values], description });
}

/** A duration string (`1s`, `250ms`, `5m`, `1h30m`), decoded to milliseconds. */
function Duration(opts: RangeOptions) {
  const range = {
    ...(opts.min === undefined ? {} : { min: opts.min }),
    ...(opts.max === undefined ? {} : { max: opts.max }),
  };
  return Type.Transform(
    Type.String({
      pattern: durationPattern,
      description: opts.description,
      errorMessage: 'a duration with a unit: 250ms, 1s, 5m, 1h or 1h30m',
      'x-duration': range,
    }),
  )
    .Decode((text) => parseDuration(text) as number)
    .Encode((ms) => formatDuration(ms));
}

/** A size (`512MiB`, `128KiB`, `5KB`, or an integer number of bytes), decoded to bytes. */
function Size(opts: RangeOptions) {
  const range = {
    ...(opts.min === undefined ? {} : { min: opts.min }),
    ...(opts.max === undefined ? {} : { max: opts.max }),
  };
  return Type.Transform(
    Type.Unsafe<string | number>({
      type: ['string', 'integer'],
      pattern: sizePattern,
      minimum: 0,
      description: opts.description,
      errorMessage: 'a size with a unit: 512MiB, 128KiB, 5KB (or a number of bytes)',
      'x-size': range,
    }),
  )
    .Decode((v) => parseSize(v) as number)
    .Encode((bytes) => formatSize(bytes));
}

/**
 * An optional key with a default: optional in the YAML (and `RawConfig`), always present in `Config`.
 * `decode.ts` puts the default in before decoding; the default is written in raw form (`'1s'`), as the
 * user would, and shows in the JSON Schema file.
 */
function withDefault<T extends TSchema>(inner: T, dflt: StaticEncode<T> | Record<string, never>) {
  // Type.Transform over a schema that is itself a transform composes the decoders (inner first).
  return Type.Transform(Type.Optional(CloneType(inner, { default: dflt })))
    .Decode((v) => v as StaticDecode<T>)
    .Encode((v) => v);
}

const devicePath = (description: string) =>
  Type.String({ pattern: '^/\\S+$', description, errorMessage: 'an absolute device path like /dev/ttyUSB0' });
const filePath = (description: string) =>
  Type.String({
    pattern: '^/',
    description,
    errorMessage: 'an absolute path like /etc/meterlink/device.key',
  });

/** Built-in profile name, `vendor-model`, or an inline register map (checked by the drivers' profile validator). */
const Profile = Type.Union(
  [
    Type.String({
      pattern: '^[a-z0-9]+(?:-[a-z0-9]+)+$',
      description: 'a built-in profile, named vendor-model (e.g. eastron-sdm630)',
      errorMessage: 'a built-in profile name, vendor-model in lower case (e.g. eastron-sdm630)',
    }),
    Type.Unsafe<Readonly<Record<string, unknown>>>({
      type: 'object',
      description: 'an inline register map (same shape as a built-in profile)',
    }),
  ],
  {
    description:
      'The meter model: a built-in profile named vendor-model (e.g. eastron-sdm630), or an inline register map.',
    errorMessage: 'a built-in profile name (e.g. eastron-sdm630) or an inline register map',
  },
);

const meterId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
  description: 'Your name for this meter, unique in this file; it labels every sample (e.g. main, pv, grid).',
  errorMessage: 'letters, digits, _ . - (at most 64, starting with a letter or digit)',
});

const modbusCommon = {
  id: meterId,
  profile: Profile,
  interval: withDefault(
    Duration({
      description: 'How often to poll, aligned to wall-clock boundaries (1s polls on every second).',
      min: 100,
      max: 86_400_000,
    }),
    '1s',
  ),
  timeout: withDefault(
    Duration({ description: 'How long to wait for one Modbus answer.', min: 20, max: 60_000 }),
    '1s',
  ),
  retries: withDefault(
    Type.Integer({ minimum: 0, maximum: 10, description: 'Retries of a failed request within one poll.' }),
    1,
  ),
};

export const ModbusRtuMeterSchema = Type.Object(
  {
    ...modbusCommon,
    driver: Type.Literal('modbus-rtu', { description: 'Modbus RTU on an RS-485 serial port.' }),
    port: devicePath('Serial device of the RS-485 adapter, e.g. /dev/ttyUSB0. Meters on one bus share it.'),
    unit: withDefault(
      Type.Integer({
        minimum: 1,
        maximum: 247,
        description: 'Modbus unit id (slave address) of this meter.',
      }),
      1,
    ),
    baud: withDefault(oneOf(modbusBauds, 'Bus speed; every meter on one port must use the same.'), 9600),
    parity: withDefault(oneOf(['none', 'even', 'odd'] as const, 'Parity of the bus.'), 'none'),
    dataBits: withDefault(oneOf([7, 8] as const, 'Data bits per character.'), 8),
    stopBits: withDefault(oneOf([1, 2] as const, 'Stop bits per character.'), 1),
  },
  { additionalProperties: false, description: 'A Modbus RTU meter on an RS-485 bus.' },
);

export const ModbusTcpMeterSchema = Type.Object(
  {
    ...modbusCommon,
    driver: Type.Literal('modbus-tcp', { description: 'Modbus TCP: a meter or an RTU↔TCP gateway.' }),
    host: Type.String({
      pattern: '^[A-Za-z0-9.:\\[\\]-]+$',
      description: 'IP address or host name of the meter or gateway.',
      errorMessage: 'a host name or IP address like 192.168.1.50',
    }),
    port: withDefault(Type.Integer({ minimum: 1, maximum: 65535, description: 'TCP port.' }), 502),
    transport: withDefault(
      oneOf(
        ['tcp', 'rtu-over-tcp'] as const,
        'tcp: Modbus TCP (MBAP header); rtu-over-tcp: raw RTU frames through a serial gateway.',
      ),
      'tcp',
    ),
    unit: withDefault(
      Type.Integer({
        minimum: 0,
        maximum: 255,
        description: 'Unit id (gateways: the RTU address behind it).',
      }),
      1,
    ),
  },
  { additionalProperties: false, description: 'A Modbus TCP meter or a meter behind a TCP gateway.' },
);

export const DsmrMeterSchema = Type.Transform(
  Type.Object(
    {
      id: meterId,
      driver: Type.Literal('dsmr', { description: 'A DSMR/ESMR smart meter read on its P1 port.' }),
      port: devicePath('Serial device of the P1 cable, e.g. /dev/ttyUSB1.'),
      baud: Type.Optional(
        oneOf(
          [9600, 115200] as const,
          'P1 speed. Defaults to 115200 (DSMR 4/5, 8N1); 9600 means DSMR 2.2/3 (7E1).',
        ),
      ),
      version: withDefault(
        Type.Unsafe<DsmrVersion | 2.2 | 3 | 4 | 5>({
          enum: [...dsmrVersions, 2.2, 3, 4, 5],
          description:
            'DSMR version hint: auto, 2.2, 3, 4, 5, e-mucs (Belgium) or smarty (Luxembourg). 2.2 and 3 mean 9600 7E1, no CRC.',
        }),
        'auto',
      ),
      key: Type.Optional(
        Type.String({
          pattern: '^[0-9a-fA-F]{32}$',
          description:
            'Encrypted P1 (Luxembourg Smarty, Austrian grids): the AES-128-GCM key from the grid operator, 32 hex digits.',
          errorMessage: '32 hex digits (the 16-byte key the grid operator gave you)',
        }),
      ),
      timeout: withDefault(
        Duration({
          description: 'Watchdog: no complete telegram for this long and the port is reopened.',
          min: 1000,
          max: 3_600_000,
        }),
        '30s',
      ),
      interval: Type.Optional(
        Duration({
          description:
            'Keep at most one sample per interval (the meter sends every 1s or 10s); default: every telegram.',
          min: 1000,
          max: 86_400_000,
        }),
      ),
    },
    { additionalProperties: false, description: 'A DSMR P1 meter.' },
  ),
)
  .Decode((m) => {
    const version = String(m.version) as DsmrVersion;
    const old = version === '2.2' || version === '3';
    const baud = m.baud ?? (old ? 9600 : 115200);
    // DSMR 2.2/3 P1 ports run 9600 baud 7E1; DSMR 4 and 5 run 115200 baud 8N1 (DSMR P1 companion standard).
    const sevenBit = baud === 9600;
    return {
      ...m,
      version,
      baud,
      dataBits: sevenBit ? 7 : 8,
      parity: sevenBit ? ('even' as const) : ('none' as const),
    };
  })
  .Encode(({ dataBits: _d, parity: _p, ...m }) => m);

export const SmlMeterSchema = Type.Object(
  {
    id: meterId,
    driver: Type.Literal('sml', {
      description: 'A German eHZ/mME meter pushing SML 1.04 on its optical info interface (IR read head).',
    }),
    port: devicePath('Serial device of the IR read head, e.g. /dev/ttyUSB0.'),
    baud: withDefault(oneOf([9600, 19200, 115200] as const, 'Line speed of the info interface (8N1).'), 9600),
    messageCrc: withDefault(
      oneOf(
        ['check', 'ignore'] as const,
        'check: a message with a wrong own CRC drops the file; ignore: trust the file CRC alone (eBZ DD3 firmware writes wrong message CRCs).',
      ),
      'check',
    ),
    timeout: withDefault(
      Duration({
        description: 'Watchdog: no valid SML file for this long and the port is reopened.',
        min: 1000,
        max: 3_600_000,
      }),
      '30s',
    ),
    interval: Type.Optional(
      Duration({
        description:
          'Keep at most one sample per interval (the meter pushes every 1-4 s); default: every file.',
        min: 1000,
        max: 86_400_000,
      }),
    ),
  },
  { additionalProperties: false, description: 'An SML meter read with an IR head.' },
);

export const IecMeterSchema = Type.Object(
  {
    id: meterId,
    driver: Type.Literal('iec62056-21', {
      description:
        'A meter with an IEC 62056-21 (D0) optical port, read with an optical head: mode C sign-on and readout, or mode D push.',
    }),
    port: devicePath('Serial device of the optical head, e.g. /dev/ttyUSB0.'),
    mode: withDefault(
      oneOf(
        ['c', 'd'] as const,
        'c: sign on at 300 baud and read out (most meters); d: the meter pushes (7E1).',
      ),
      'c',
    ),
    baud: Type.Optional(
      oneOf(
        [300, 600, 1200, 2400, 4800, 9600, 19200] as const,
        'Mode C: highest speed to ask for after the sign-on (default: what the meter offers). Mode D: the push speed (default 9600).',
      ),
    ),
    address: Type.Optional(
      Type.String({
        pattern: '^[0-9A-Za-z ]{1,32}$',
        description:
          'Mode C: device address sent in the sign-on (/?address!), for several meters on one head.',
        errorMessage: 'up to 32 letters, digits or spaces (the meter number printed on it)',
      }),
    ),
    timeout: withDefault(
      Duration({
        description: 'Watchdog: no valid data block for this long and the port is reopened.',
        min: 1000,
        max: 3_600_000,
      }),
      '60s',
    ),
    interval: withDefault(
      Duration({
        description: 'Mode C: time between readouts; mode D: keep at most one sample per interval.',
        min: 1000,
        max: 86_400_000,
      }),
      '10s',
    ),
  },
  { additionalProperties: false, description: 'An IEC 62056-21 meter read with an optical head.' },
);

export const MeterSchema = Type.Union(
  [ModbusRtuMeterSchema, ModbusTcpMeterSchema, DsmrMeterSchema, SmlMeterSchema, IecMeterSchema],
  {
    description: 'One meter. `driver` says which keys apply.',
  },
);

export const CloudSchema = Type.Transform(
  Type.Object(
    {
      endpoint: Type.String({
        pattern: '^[A-Za-z0-9.-]+$',
        description: 'AWS IoT Core data endpoint (aws iot describe-endpoint --endpoint-type iot:Data-ATS).',
        errorMessage: 'a host name like a1b2c3-ats.iot.eu-west-1.amazonaws.com',
      }),
      // IoT Core listens on 8883 and 443 only; other ports are for brokers standing in for it (a local
      // Mosquitto in tests and in `meterlink demo`). ALPN x-amzn-mqtt-ca is offered on 443.
      port: withDefault(
        Type.Integer({
          minimum: 1,
          maximum: 65535,
          description:
            'TCP port: 8883 (MQTT over TLS) or 443 (the same with ALPN x-amzn-mqtt-ca) at AWS IoT Core.',
        }),
        8883,
      ),
      ca: filePath('Amazon root CA (PEM) the endpoint certificate is pinned to.'),
      cert: filePath('Device certificate (PEM).'),
      key: filePath('Device private key (PEM); must be readable by the service user only (mode 600).'),
      basicIngestRule: Type.Optional(
        Type.String({
          pattern: '^[A-Za-z0-9_]+$',
          description: 'Publish batches through IoT Core Basic Ingest ($aws/rules/RULE/...) to this rule.',
          errorMessage: 'an IoT rule name (letters, digits, _)',
        }),
      ),
    },
    { additionalProperties: false, description: 'Where and how to connect to AWS IoT Core (mutual TLS).' },
  ),
)
  .Decode((c) => ({ ...c, alpn: c.port === 443 ? iotCoreAlpn : undefined }))
  .Encode(({ alpn: _a, ...c }) => c);

export const BufferSchema = Type.Object(
  {
    path: withDefault(filePath('Directory of the on-disk queue (LevelDB).'), '/var/lib/meterlink/buffer'),
    maxSize: withDefault(
      Size({ description: 'Disk budget of the queue; beyond it `policy` applies.', min: 1024 ** 2 }),
      '512MiB',
    ),
    policy: withDefault(
      oneOf(
        ['drop-oldest', 'refuse'] as const,
        'When full: drop-oldest (counted, with an event) or refuse new samples (counted, with an event).',
      ),
      'drop-oldest',
    ),
    maxAge: Type.Optional(
      Duration({
        description: 'Drop samples older than this (with an event); default: keep until delivered.',
        min: 60_000,
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'The durable queue of samples not yet acknowledged by the cloud.',
  },
);

export const BatchSchema = Type.Object(
  {
    maxDelay: withDefault(
      Duration({ description: 'Longest a sample waits before its batch is sent.', min: 100, max: 3_600_000 }),
      '60s',
    ),
    maxSize: withDefault(
      Size({
        description: "Largest batch on the wire; at most IoT Core's 128 KB message limit.",
        min: 1024,
        max: iotCoreMaxMessageBytes,
      }),
      '128KiB',
    ),
  },
  { additionalProperties: false, description: 'How samples are grouped into signed batches.' },
);

export const ConfigSchema = Type.Object(
  {
    thing: Type.String({
      pattern: '^[A-Za-z0-9:_-]{1,128}$',
      description: 'AWS IoT thing name of this box; also the MQTT client id.',
      errorMessage: 'an AWS IoT thing name: letters, digits, : _ - (at most 128)',
    }),
    meters: Type.Array(MeterSchema, { minItems: 1, description: 'The meters this box reads.' }),
    cloud: Type.Optional(CloudSchema),
    buffer: withDefault(BufferSchema, {}),
    batch: withDefault(BatchSchema, {}),
    log: withDefault(
      Type.Object(
        { level: withDefault(oneOf(logLevels, 'Log level (env METERLINK_LOG_LEVEL overrides).'), 'info') },
        { additionalProperties: false, description: 'Logging (JSON lines on stdout, kept by journald).' },
      ),
      {},
    ),
    time: withDefault(
      Type.Object(
        {
          source: withDefault(
            oneOf(
              timeSources,
              'What decides that the clock is synchronised: auto (time.syncFile if set, else the kernel), kernel (adjtimex: works with chrony, ntpd, systemd-timesyncd, GPS via chrony), file (time.syncFile exists), trust (always: a battery RTC).',
            ),
            'auto',
          ),
          syncFile: Type.Optional(
            filePath(
              'A file that exists once the clock is synchronised (systemd-timesyncd writes /run/systemd/timesync/synchronized). Setting it makes source auto use it.',
            ),
          ),
          hold: withDefault(
            Duration({
              description:
                'How long samples wait for the clock to synchronise before they ship flagged unsynchronised (a clock_unsynced event then names the likely cause).',
              min: 1_000,
              max: 7 * 86_400_000,
            }),
            '15m',
          ),
        },
        {
          additionalProperties: false,
          description: 'Clock synchronisation (the box may have no real-time clock).',
        },
      ),
      {},
    ),
    health: withDefault(
      Type.Object(
        {
          interval: withDefault(
            Duration({ description: 'How often a health report is published.', min: 1000, max: 86_400_000 }),
            '1m',
          ),
        },
        { additionalProperties: false, description: 'Health reports on the health topic.' },
      ),
      {},
    ),
    dashboard: Type.Optional(
      Type.Object(
        {
          listen: withDefault(
            Type.String({
              pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$',
              description:
                'Address:port the local web dashboard listens on. Loopback (127.0.0.1, [::1], localhost) needs no token; any other address needs dashboard.token.',
              errorMessage: 'host:port, e.g. 127.0.0.1:8080 (or 0.0.0.0:8080 with a token)',
            }),
            '127.0.0.1:8080',
          ),
          token: Type.Optional(
            Type.String({
              pattern: TOKEN_PATTERN,
              description:
                'Secret every request must carry (?token= or Authorization: Bearer) when listen is not loopback; e.g. openssl rand -hex 16.',
              errorMessage:
                'at least 16 letters, digits or . _ ~ - (e.g. the output of openssl rand -hex 16)',
            }),
          ),
          history: Type.Optional(
            filePath(
              'Directory of the local history (per-minute and per-hour aggregates, LevelDB); default: history/ beside the buffer directory.',
            ),
          ),
        },
        {
          additionalProperties: false,
          description:
            'Local web dashboard served by the agent (off unless this section is present): live power, energy per hour and day, health.',
        },
      ),
    ),
    status: withDefault(
      Type.Object(
        {
          file: withDefault(
            filePath('State file `meterlink status` reads (written atomically).'),
            '/run/meterlink/status.json',
          ),
        },
        { additionalProperties: false, description: 'Local status for `meterlink status`.' },
      ),
      {},
    ),
  },
  {
    additionalProperties: false,
    title: 'meterlink configuration',
    description: 'Configuration of the meterlink agent (/etc/meterlink/config.yaml).',
  },
);

/** What the agent runs with: defaults applied, durations in ms, sizes in bytes. Frozen. */
export type Config = StaticDecode<typeof ConfigSchema>;
export type MeterConfig = Config['meters'][number];
export type ModbusRtuMeterConfig = Extract<MeterConfig, { driver: 'modbus-rtu' }>;
export type ModbusTcpMeterConfig = Extract<MeterConfig, { driver: 'modbus-tcp' }>;
export type DsmrMeterConfig = Extract<MeterConfig, { driver: 'dsmr' }>;
export type SmlMeterConfig = Extract<MeterConfig, { driver: 'sml' }>;
export type IecMeterConfig = Extract<MeterConfig, { driver: 'iec62056-21' }>;
export type CloudConfig = NonNullable<Config['cloud']>;

/** The meter variants of `MeterSchema`, by driver name (validation picks the branch by `driver`). */
export const meterDrivers = ['modbus-rtu', 'modbus-tcp', 'dsmr', 'sml', 'iec62056-21'] as const;
