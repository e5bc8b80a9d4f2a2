/**
 * `meterlink simulate <mode>`: be a meter. Each mode (Modbus RTU on a serial path, Modbus TCP, DSMR P1, SML, IEC 62056-21) is its
 * own module listed in `simulateModes`.
 */
import type { Command } from 'commander';
import type { CliIo, CommandModule } from '../cli.js';
import { modbusRtuMode, modbusTcpMode } from './simulate-modbus.js';
import { dsmrMode } from './simulate-dsmr.js';
import { smlMode } from './simulate-sml.js';
import { iecMode } from './simulate-iec.js';

export interface SimulateMode {
  register(simulate: Command, io: CliIo): void;
}

const simulateModes: readonly SimulateMode[] = [modbusRtuMode, modbusTcpMode, dsmrMode, smlMode, iecMode];

export const simulateCommand: CommandModule = {
  register(program, io) {
    const cmd = program
      .command('simulate')
      .description(
        'be a meter: serve simulated readings over Modbus RTU/TCP, as a DSMR P1 port, an SML meter or an IEC 62056-21 optical port',
      )
      .addHelpText(
        'after',
        '\nExample:\n  meterlink simulate --help    lists the modes; each mode has its own --help\n',
      );
    for (const mode of simulateModes) mode.register(cmd, io);
  },
};
