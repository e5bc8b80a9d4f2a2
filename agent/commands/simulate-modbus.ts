/**
 * `meterlink simulate modbus-rtu|modbus-tcp`: be one or more Modbus meters, each a built-in profile fed by a
 * simulated apartment, with optional faults. Runs until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { builtinProfiles } from '../../drivers/profiles/index.js';
import {
  startModbusSimulator,
  type ModbusSimulator,
  type SimFaults,
  type SimTransport,
  type SimUnitOptions,
} from '../../drivers/simulator/modbus-simulator.js';
import { CliError, ExitCode, type CliIo } from '../cli.js';
import type { SimulateMode } from './simulate.js';
import { untilStopped } from './simulate-options.js';

interface CommonOpts {
  meter: string[];
  allProfiles?: boolean;
  seed?: string;
  drop?: string;
  corruptCrc?: string;
  exception?: string;
  exceptionRate?: string;
  delay?: string;
  wrongUnit?: string;
}

function num(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new CliError(`${flag} ${value}: expected a number from ${min} to ${max}`, ExitCode.usage);
  return n;
}

function units(o: CommonOpts): SimUnitOptions[] {
  const seed = num(o.seed, '--seed', 0, 2 ** 32) ?? 0;
  const faults: SimFaults = {
    dropRate: num(o.drop, '--drop', 0, 1),
    corruptCrcRate: num(o.corruptCrc, '--corrupt-crc', 0, 1),
    exception: num(o.exception, '--exception', 1, 255),
    exceptionRate: num(o.exceptionRate, '--exception-rate', 0, 1),
    delayMs: num(o.delay, '--delay', 0, 60_000),
    wrongUnit: num(o.wrongUnit, '--wrong-unit', 0, 255),
  };
  const specs = o.allProfiles
    ? Object.keys(builtinProfiles).map((name, i) => `${i + 1}:${name}`)
    : o.meter.length > 0
      ? o.meter
      : ['1:eastron-sdm630'];
  return specs.map((spec) => {
    const m = /^(\d+):([a-z0-9-]+)$/.exec(spec);
    const unit = Number(m?.[1]);
    if (!m || unit < 1 || unit > 247)
      throw new CliError(`--meter ${spec}: expected UNIT:PROFILE, e.g. 1:eastron-sdm630`, ExitCode.usage);
    if (!builtinProfiles[m[2]!])
      throw new CliError(
        `--meter ${spec}: unknown profile; built-in profiles are ${Object.keys(builtinProfiles).join(', ')}`,
        ExitCode.usage,
      );
    return { unit, profile: m[2]!, seed: seed + unit, faults };
  });
}

const collect = (v: string, prev: string[]) => [...prev, v];

function common(cmd: Command): Command {
  return cmd
    .option('--meter <unit:profile>', 'serve this unit id with this profile (repeatable)', collect, [])
    .option('--all-profiles', 'serve every built-in profile, on unit ids 1, 2, 3, …')
    .option('--seed <n>', 'seed of the apartment models')
    .option('--drop <p>', 'probability of not answering a request (0–1)')
    .option('--corrupt-crc <p>', 'probability of a corrupted CRC (RTU framing)')
    .option('--exception <code>', 'answer with this Modbus exception code')
    .option('--exception-rate <p>', 'probability of the exception (default 1 with --exception)')
    .option('--delay <ms>', 'answer this many ms late')
    .option('--wrong-unit <id>', 'answer as this unit id');
}

async function serve(io: CliIo, start: () => Promise<ModbusSimulator>, what: string): Promise<void> {
  let sim: ModbusSimulator;
  try {
    sim = await start();
  } catch (err) {
    throw new CliError(`cannot start the simulator on ${what}: ${(err as Error).message}`);
  }
  const list = [...sim.units.values()].map((u) => `${u.unit}:${u.profile.name}`).join(', ');
  io.out(
    `simulating Modbus meters ${list} on ${what}${sim.port ? ` (port ${sim.port})` : ''}; Ctrl-C stops\n`,
  );
  await untilStopped();
  await sim.stop();
}

export const modbusRtuMode: SimulateMode = {
  register(simulate, io) {
    common(
      simulate
        .command('modbus-rtu')
        .description('be Modbus RTU meter(s) on a serial path (an RS-485 adapter or one end of a pty pair)')
        .requiredOption('--port <path>', 'serial device to answer on')
        .option('--baud <n>', 'baud rate', '9600')
        .option('--parity <p>', 'none | even | odd', 'none'),
    )
      .addHelpText(
        'after',
        '\nExample:\n  meterlink simulate modbus-rtu --port /dev/ttyUSB1 --meter 1:eastron-sdm630 --meter 2:abb-b23\n',
      )
      .action(async (o: CommonOpts & { port: string; baud: string; parity: string }) => {
        if (!['none', 'even', 'odd'].includes(o.parity))
          throw new CliError(`--parity ${o.parity}: expected none, even or odd`, ExitCode.usage);
        const transport: SimTransport = {
          kind: 'rtu',
          path: o.port,
          baud: num(o.baud, '--baud', 300, 921_600),
          parity: o.parity as 'none',
        };
        const u = units(o);
        await serve(io, () => startModbusSimulator({ transport, units: u }), o.port);
      });
  },
};

export const modbusTcpMode: SimulateMode = {
  register(simulate, io) {
    common(
      simulate
        .command('modbus-tcp')
        .description('be Modbus TCP meter(s) (or an RTU-over-TCP gateway with --rtu-framing)')
        .option('--listen <port>', 'TCP port (0: any free port)', '502')
        .option('--host <addr>', 'address to listen on', '127.0.0.1')
        .option('--rtu-framing', 'speak RTU frames over TCP, like a serial gateway'),
    )
      .addHelpText(
        'after',
        '\nExample:\n  meterlink simulate modbus-tcp --listen 5020 --meter 1:carlo-gavazzi-em340\n',
      )
      .action(async (o: CommonOpts & { listen: string; host: string; rtuFraming?: boolean }) => {
        const transport: SimTransport = {
          kind: 'tcp',
          port: num(o.listen, '--listen', 0, 65_535),
          host: o.host,
          framing: o.rtuFraming ? 'rtu' : 'mbap',
        };
        const u = units(o);
        await serve(io, () => startModbusSimulator({ transport, units: u }), `${o.host}:${o.listen}`);
      });
  },
};
