/**
 * Every subcommand of `meterlink`, in the order `--help` lists them. A feature adds its command by adding
 * its module here (one file per command under agent/commands/).
 */
import type { CommandModule } from '../cli.js';
import { simulateCommand } from './simulate.js';
import { bufferCommand } from './buffer.js';
import { configCommand } from './config.js';

export const commandModules: readonly CommandModule[] = [simulateCommand, bufferCommand, configCommand];
