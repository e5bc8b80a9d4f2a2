/**
 * Every subcommand of `meterlink`, in the order `--help` lists them. A feature adds its command by adding
 * its module here (one file per command under agent/commands/).
 */
import type { CommandModule } from '../cli.js';
import { bufferCommand } from './buffer.js';
import { configCommand } from './config.js';
import { dashboardCommand } from './dashboard.js';
import { decodeCommand } from './decode.js';
import { demoCommand } from './demo.js';
import { provisionCommand } from './provision.js';
import { readCommand } from './read.js';
import { runCommand } from './run.js';
import { scanCommand } from './scan.js';
import { simulateCommand } from './simulate.js';
import { statusCommand } from './status.js';

export const commandModules: readonly CommandModule[] = [
  runCommand,
  statusCommand,
  dashboardCommand,
  readCommand,
  scanCommand,
  simulateCommand,
  configCommand,
  provisionCommand,
  bufferCommand,
  decodeCommand,
  demoCommand,
];
