/**
 * The `meterlink` command line: one program, one subcommand per feature.
 *
 * Each feature lives in its own file under `agent/commands/` and exports a `CommandModule`;
 * `agent/commands/index.ts` lists them. `buildProgram()` never calls `process.exit` itself, so tests can
 * drive it in-process (`exitOverride`), and the process entry point (`bin.ts`) owns exit codes.
 */
import { Command, CommanderError } from 'commander';
import { commandModulesFor } from './commands/index.js';
import { packageVersion } from './version.js';

/** Where a command writes. Injected so tests can capture output without spawning a process. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export interface CommandModule {
  /** Adds the subcommand (with its `--help` text and an example) to the program. */
  register(program: Command, io: CliIo): void;
}

/** Exit statuses shared by every command. 78 (EX_CONFIG) is the one systemd is told not to restart on. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  badConfig: 78,
} as const;

/** A failure that a command reports to the user: message printed, no stack, given exit status. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * The program with the subcommands `argv` needs (only the one it names, so a long-running `meterlink run`
 * does not hold every other command's libraries; all of them for `--help` or an unknown command).
 */
export async function buildProgram(io: CliIo = processIo, argv: readonly string[] = []): Promise<Command> {
  const program = new Command('meterlink')
    .description(
      'Reads electricity meters (Modbus RTU/TCP, DSMR P1, SML, IEC 62056-21), keeps every reading on disk ' +
        'until the cloud has it, and ships signed batches over MQTT 5 to AWS IoT Core.',
    )
    .version(packageVersion, '-V, --version', 'print the version and exit')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addHelpText(
    'after',
    '\nExamples:\n' +
      '  meterlink read --config /etc/meterlink/config.yaml   poll each meter once (installer check)\n' +
      '  meterlink <command> --help                         every command explains itself\n',
  );
  for (const mod of await commandModulesFor(argv)) mod.register(program, io);
  // Subcommands inherit the output routing and the no-exit behaviour.
  for (const sub of program.commands)
    sub.configureOutput({ writeOut: io.out, writeErr: io.err }).exitOverride();
  return program;
}

/**
 * Runs the CLI and resolves to the exit status. Never throws: usage errors give 2, `CliError` its own
 * status, anything else 1 with the message (the stack only when `METERLINK_DEBUG` is set).
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = await buildProgram(io, argv);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are "errors" to commander with exit code 0.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof CliError) {
      io.err(`meterlink: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as Error;
    io.err(`meterlink: ${e?.message ?? String(err)}\n`);
    if (process.env.METERLINK_DEBUG) io.err(`${e?.stack ?? ''}\n`);
    return ExitCode.failure;
  }
}
