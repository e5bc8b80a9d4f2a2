/**
 * `meterlink config check F [--json] [--cloud]`: validate a config file and explain every problem, one per
 * line (`file:line:col field: message (fix)`), or print OK with a short summary. A bad config exits 78,
 * the status the daemon also exits with and systemd does not restart on.
 */
import type { Command } from 'commander';
import { CliError, ExitCode, type CliIo, type CommandModule } from '../cli.js';
import {
  formatDuration,
  formatSize,
  isConfigError,
  loadConfig,
  type Config,
  type MeterConfig,
} from '../config/index.js';
import { formatProblem } from '../config/errors.js';
import { exampleConfig, exampleDrivers, exampleList, isExampleDriver } from '../config/examples.js';

interface CheckOptions {
  json?: boolean;
  cloud?: boolean;
}

function describeMeter(m: MeterConfig): string {
  switch (m.driver) {
    case 'modbus-rtu':
      return `${m.id}: modbus-rtu ${m.port} ${m.baud} ${m.dataBits}${m.parity[0]?.toUpperCase()}${m.stopBits} unit ${m.unit}, ${typeof m.profile === 'string' ? m.profile : 'inline profile'}, every ${formatDuration(m.interval)}`;
    case 'modbus-tcp':
      return `${m.id}: ${m.transport === 'tcp' ? 'modbus-tcp' : 'modbus rtu-over-tcp'} ${m.host}:${m.port} unit ${m.unit}, ${typeof m.profile === 'string' ? m.profile : 'inline profile'}, every ${formatDuration(m.interval)}`;
    case 'dsmr':
      return `${m.id}: dsmr ${m.port} ${m.baud} baud, version ${m.version}${m.interval === undefined ? '' : `, every ${formatDuration(m.interval)}`}`;
    case 'sml':
      return `${m.id}: sml ${m.port} ${m.baud} baud${m.interval === undefined ? '' : `, every ${formatDuration(m.interval)}`}`;
    case 'iec62056-21':
      return `${m.id}: iec62056-21 ${m.port} mode ${m.mode.toUpperCase()}${m.baud === undefined ? '' : ` ${m.baud} baud`}, every ${formatDuration(m.interval)}`;
  }
}

/** The few lines an installer wants to see: thing, each meter, where data goes. */
export function summarize(config: Config): string {
  const lines = [
    `thing ${config.thing}, ${config.meters.length} meter${config.meters.length === 1 ? '' : 's'}:`,
    ...config.meters.map((m) => `  ${describeMeter(m)}`),
    config.cloud
      ? `cloud ${config.cloud.endpoint}:${config.cloud.port}${config.cloud.alpn ? ` (ALPN ${config.cloud.alpn})` : ''}${config.cloud.basicIngestRule ? `, basic ingest rule ${config.cloud.basicIngestRule}` : ''}`
      : 'cloud: not configured yet (run meterlink provision)',
    `buffer ${config.buffer.path}, up to ${formatSize(config.buffer.maxSize)} (${config.buffer.policy}); batches up to ${formatSize(config.batch.maxSize)}, every ${formatDuration(config.batch.maxDelay)} at most`,
  ];
  return lines.join('\n');
}

async function check(file: string, opts: CheckOptions, io: CliIo): Promise<void> {
  try {
    const config = await loadConfig(file, { requireCloud: opts.cloud ?? false });
    if (opts.json) io.out(`${JSON.stringify({ ok: true, file, config })}\n`);
    else io.out(`OK ${file}\n${summarize(config)}\n`);
  } catch (err) {
    if (!isConfigError(err)) {
      // Not a problem of the file (a fault of ours): still one JSON object for a script that asked for one.
      if (opts.json)
        io.out(`${JSON.stringify({ ok: false, file, error: (err as Error)?.message ?? String(err) })}\n`);
      throw err;
    }
    if (opts.json) io.out(`${JSON.stringify({ ok: false, file, problems: err.problems })}\n`);
    else for (const p of err.problems) io.out(`${formatProblem(p)}\n`);
    const n = err.problems.length;
    throw new CliError(
      `${file}: ${n} problem${n === 1 ? '' : 's'}; fix ${n === 1 ? 'it' : 'them'} and run this again`,
      ExitCode.badConfig,
    );
  }
}

export const configCommand: CommandModule = {
  register(program: Command, io: CliIo) {
    // Set on the group before its subcommands are made: they copy it (buildProgram only reaches one level).
    const config = program
      .command('config')
      .description('work with the configuration file')
      .configureOutput({ writeOut: io.out, writeErr: io.err })
      .exitOverride();
    config
      .command('check')
      .description('validate a config file and explain every problem (exit 78 when it is bad)')
      .argument('<file>', 'the YAML config, e.g. /etc/meterlink/config.yaml')
      .option('--json', 'print one JSON object: {ok, file, config} or {ok, file, problems}')
      .option('--cloud', 'also check the cloud section and its files as the daemon does (key mode 600)')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink config check /etc/meterlink/config.yaml\n' +
          '  meterlink config check --cloud --json /etc/meterlink/config.yaml\n' +
          '\nEach problem is printed as  file:line:col field: message (fix)\n',
      )
      .action((file: string, opts: CheckOptions) => check(file, opts, io));
    config
      .command('example')
      .description('print a complete, commented config file for one meter interface')
      .argument('[driver]', `one of ${exampleDrivers.join(', ')}; without it, the list`)
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink config example                 the interfaces, a line each\n' +
          '  meterlink config example sml > /etc/meterlink/config.yaml\n' +
          '\nThe printed file passes `meterlink config check` as it stands; edit the port and the thing name.\n',
      )
      .action((driver: string | undefined) => {
        if (driver === undefined) {
          io.out(`Meter interfaces (meterlink config example <driver>):\n${exampleList()}\n`);
          return;
        }
        if (!isExampleDriver(driver))
          throw new CliError(
            `config example: no driver '${driver}'; choose one of ${exampleDrivers.join(', ')}`,
            ExitCode.usage,
          );
        io.out(exampleConfig(driver));
      });
  },
};
