/**
 * Built-in config examples, one per meter interface: `meterlink config example <driver>` prints a complete,
 * commented config file that `meterlink config check` accepts as it stands (test/agent/config-example.test.ts
 * proves it for each). An installer copies one to /etc/meterlink/config.yaml and edits the port.
 */
import type { MeterConfig } from './schema.js';
import { driverProfiles } from './profiles.js';

export type ExampleDriver = MeterConfig['driver'];

interface Example {
  /** One line for the list `meterlink config example` prints. */
  summary: string;
  /** The `meters:` entries, already indented by two spaces. */
  meters: string;
}

const examples: Record<ExampleDriver, Example> = {
  'modbus-rtu': {
    summary: 'Modbus RTU meters on an RS-485 bus (Eastron, ABB, Carlo Gavazzi, Finder, Schneider)',
    meters: `  # RS-485 A/B (and GND) to a USB RS-485 adapter. Meters on one bus share the port, each with its own
  # unit id; every meter on a bus must use the same speed. \`meterlink scan --port /dev/ttyUSB0\` finds them.
  # Built-in profiles: ${driverProfiles.names.join(', ')}.
  - id: main
    driver: modbus-rtu
    port: /dev/ttyUSB0
    baud: 9600                 # 9600 8N1 is the factory setting of most meters
    unit: 1
    profile: eastron-sdm630    # a built-in register map, see the list above
    interval: 1s
  - id: heatpump
    driver: modbus-rtu
    port: /dev/ttyUSB0
    unit: 2
    profile: eastron-sdm120
    interval: 10s
`,
  },
  'modbus-tcp': {
    summary: 'Modbus TCP meters, or RTU meters behind a TCP gateway',
    meters: `  # Ethernet to the meter or to an RS-485 gateway. Raw serial gateways (no MBAP header) need
  # transport: rtu-over-tcp.
  - id: pv
    driver: modbus-tcp
    host: 192.168.1.50
    port: 502
    unit: 1                    # behind a gateway: the RTU address of the meter
    profile: carlo-gavazzi-em340
    interval: 5s
`,
  },
  dsmr: {
    summary: 'DSMR P1 smart meters (NL, BE e-MUCS); encrypted P1 (Luxembourg Smarty, Austria) with key:',
    meters: `  # P1 cable (RJ12) to USB. DSMR 4/5 send every 1 s (5) or 10 s (4) at 115200 8N1; DSMR 2.2/3 need
  # version: 2.2 (9600 7E1).
  - id: grid
    driver: dsmr
    port: /dev/ttyUSB1
    version: auto
    interval: 10s              # keep one sample per 10 s; leave out to keep every telegram
    # Encrypted P1 (Luxembourg Smarty, Austrian grids): the 32-hex-digit key your grid operator gave you.
    # key: 000102030405060708090A0B0C0D0E0F
`,
  },
  sml: {
    summary: 'German eHZ/mME meters pushing SML 1.04 on the optical info port (IR read head)',
    meters: `  # A USB IR read head held on the meter's optical info port by its magnet, 9600 8N1. Enter the meter's
  # PIN (flash-light sequence) to get power, not only the counters; without it, samples are flagged partial.
  - id: ehz
    driver: sml
    port: /dev/serial/by-id/usb-IR-head-if00-port0
    baud: 9600
    interval: 5s               # the meter pushes every 1-4 s; keep one sample per 5 s
    # messageCrc: ignore      # only for eBZ DD3 firmware that writes wrong message CRCs
`,
  },
  'iec62056-21': {
    summary: 'IEC 62056-21 "D0" optical port: mode C readout (Landis+Gyr, Itron, ...) or mode D push',
    meters: `  # A USB optical (IR) head on the D0 port, held by its magnet, cable pointing down. Mode C signs on at
  # 300 baud 7E1 and switches to the speed the meter offers (cap it with baud:). Push meters (EasyMeter,
  # Hager eHZ): mode: d and their push speed as baud:.
  - id: d0
    driver: iec62056-21
    port: /dev/serial/by-id/usb-optical-head-if00-port0
    mode: c
    interval: 15s              # one readout every 15 s (a readout at 300 baud can take several seconds)
    # baud: 9600               # highest speed to ask for after the sign-on
    # address: '12345678'     # the meter number, when several meters share one head
`,
  },
};

export const exampleDrivers = Object.keys(examples) as ExampleDriver[];

/** The list `meterlink config example` prints without a driver. */
export function exampleList(): string {
  const width = Math.max(...exampleDrivers.map((d) => d.length));
  return exampleDrivers.map((d) => `  ${d.padEnd(width)}  ${examples[d].summary}`).join('\n');
}

export function isExampleDriver(name: string): name is ExampleDriver {
  return Object.hasOwn(examples, name);
}

/** A whole config file for `driver`, ready for `meterlink config check`. */
export function exampleConfig(driver: ExampleDriver): string {
  return `# /etc/meterlink/config.yaml — ${examples[driver].summary}.
# Check it with: meterlink config check /etc/meterlink/config.yaml  (every problem with file:line:col and a fix)
# Try the wiring before provisioning: meterlink read --config /etc/meterlink/config.yaml
thing: apt-12-meterbox         # the AWS IoT thing name of this box (meterlink provision sets it up)
meters:
${examples[driver].meters}
# Where readings wait until the cloud has acknowledged them (defaults shown).
buffer:
  path: /var/lib/meterlink/buffer
  maxSize: 512MiB

# Written by \`meterlink provision\`; the daemon (meterlink run) needs it, config check and read do not.
# cloud:
#   endpoint: a1b2c3-ats.iot.eu-west-1.amazonaws.com
#   ca: /etc/meterlink/AmazonRootCA1.pem
#   cert: /etc/meterlink/device.crt
#   key: /etc/meterlink/device.key

# The local web dashboard (off unless present), loopback only without a token.
# dashboard:
#   listen: 127.0.0.1:8080
`;
}
