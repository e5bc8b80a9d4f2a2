/**
 * Every subcommand of `meterlink`, in the order `--help` lists them. A feature adds its command by adding
 * its module here (one file per command under agent/commands/).
 */
import type { CommandModule } from '../cli.js';
import { simulateCommand } from './simulate.js';
import { decodeCommand } from './decode.js';
import { bufferCommand } from './buffer.js';
import { configCommand } from './config.js';
import { scanCommand } from './scan.js';
import { provisionCommand } from './provision.js';
import { readCommand } from './read.js';

export const commandModules: readonly CommandModule[] = [
  simulateCommand,
  bufferCommand,
  configCommand,
  provisionCommand,
  scanCommand,
  decodeCommand,
  readCommand,
];
