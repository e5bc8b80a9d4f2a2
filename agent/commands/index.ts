/**
 * Every subcommand of `meterlink`, in the order `--help` lists them. A feature adds its command by adding
 * its module here (one file per command under agent/commands/).
 *
 * Each module is loaded only when needed: `meterlink run` loads the daemon's modules and not the
 * AWS SDK, X.509 and ASN.1 libraries of `provision`, the demo, the simulators or the decoder, which together
 * held ~7.5 MiB of V8 heap and ~16 MiB of RSS in the long-running agent. `meterlink --help`, an unknown
 * command, or a bare `meterlink` loads them all.
 */
import type { CommandModule } from '../cli.js';

export interface CommandEntry {
  /** The subcommand's name, as it registers it with commander. */
  readonly name: string;
  readonly load: () => Promise<CommandModule>;
}

export const commandEntries: readonly CommandEntry[] = [
  { name: 'run', load: async () => (await import('./run.js')).runCommand },
  { name: 'status', load: async () => (await import('./status.js')).statusCommand },
  { name: 'dashboard', load: async () => (await import('./dashboard.js')).dashboardCommand },
  { name: 'read', load: async () => (await import('./read.js')).readCommand },
  { name: 'scan', load: async () => (await import('./scan.js')).scanCommand },
  { name: 'simulate', load: async () => (await import('./simulate.js')).simulateCommand },
  { name: 'config', load: async () => (await import('./config.js')).configCommand },
  { name: 'provision', load: async () => (await import('./provision.js')).provisionCommand },
  { name: 'buffer', load: async () => (await import('./buffer.js')).bufferCommand },
  { name: 'decode', load: async () => (await import('./decode.js')).decodeCommand },
  { name: 'demo', load: async () => (await import('./demo.js')).demoCommand },
];

/** The modules for `argv`: only its subcommand's when it names one, else all of them, in `--help` order. */
export async function commandModulesFor(argv: readonly string[]): Promise<CommandModule[]> {
  const named = commandEntries.find((e) => e.name === argv[0]);
  return Promise.all((named ? [named] : commandEntries).map((e) => e.load()));
}
