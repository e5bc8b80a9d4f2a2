/**
 * `meterlink read [--config F] [--meter ID] [--json]`: poll each configured meter once and print its
 * canonical channels with units — the installer's wiring check. Needs only `thing` and `meters:` (no cloud).
 */
import type { Command } from 'commander';
import { CliError, ExitCode, type CliIo, type CommandModule } from '../cli.js';
import { formatProblem, isConfigError, loadConfig, type Config } from '../config/index.js';
import { createMeterReader, meterLabel } from '../meters.js';
import { channelByName } from '../../cloud-contract/channels.js';
import { flagNames, valueToNumber } from '../../cloud-contract/sample.js';
import { isDriverError, type MeterReader, type MeterReading } from '../../drivers/index.js';

export const defaultConfigFile = '/etc/meterlink/config.yaml';

interface ReadOptions {
  config: string;
  meter?: string;
  json?: boolean;
}

interface Outcome {
  meter: string;
  ts: number;
  reading?: MeterReading;
  error?: { code: string; message: string };
}

/** Loads the config for a command, turning a bad one into exit 78 with every problem printed. */
export async function loadConfigForCommand(file: string, io: CliIo): Promise<Config> {
  try {
    return await loadConfig(file);
  } catch (err) {
    if (!isConfigError(err)) throw err;
    for (const p of err.problems) io.err(`${formatProblem(p)}\n`);
    throw new CliError(`bad config ${file}; see meterlink config check ${file}`, ExitCode.badConfig);
  }
}

async function readOnce(reader: MeterReader): Promise<Outcome> {
  const ts = Date.now();
  try {
    return { meter: reader.id, ts, reading: await reader.read() };
  } catch (err) {
    const code = isDriverError(err) ? err.code : 'ERROR';
    return { meter: reader.id, ts, error: { code, message: (err as Error)?.message ?? String(err) } };
  }
}

function asJson(o: Outcome): string {
  const values: Record<string, number> = {};
  for (const [ch, v] of Object.entries(o.reading?.values ?? {})) values[ch] = valueToNumber(v);
  return JSON.stringify({
    meter: o.meter,
    ts: o.ts,
    values,
    flags: flagNames(o.reading?.flags ?? 0),
    ...(o.reading?.missing.length ? { missing: o.reading.missing } : {}),
    ...(o.reading?.serial ? { serial: o.reading.serial } : {}),
    ...(o.reading?.meterTime === undefined ? {} : { meterTime: o.reading.meterTime }),
    ...(o.error ? { error: o.error } : {}),
  });
}

function asText(o: Outcome, label: string): string {
  const head = `${o.meter} (${label}) at ${new Date(o.ts).toISOString()}`;
  if (o.error) return `${head}\n  no reading: ${o.error.code}: ${o.error.message}\n`;
  const r = o.reading as MeterReading;
  const names = Object.keys(r.values).sort();
  const width = Math.max(0, ...names.map((n) => n.length));
  const lines = names.map((n) => {
    const unit = channelByName(n)?.unit;
    return `  ${n.padEnd(width)}  ${valueToNumber(r.values[n] as MeterReading['values'][string])}${unit && unit !== '1' ? ` ${unit}` : ''}`;
  });
  if (r.flags) lines.push(`  flags: ${flagNames(r.flags).join(', ')}`);
  if (r.missing.length) lines.push(`  missing: ${r.missing.join(', ')}`);
  for (const e of r.errors) lines.push(`  error: ${e.code}: ${e.message}`);
  if (r.serial) lines.push(`  serial: ${r.serial}`);
  return `${head}\n${lines.join('\n')}\n`;
}

async function read(opts: ReadOptions, io: CliIo): Promise<void> {
  const config = await loadConfigForCommand(opts.config, io);
  const meters = opts.meter ? config.meters.filter((m) => m.id === opts.meter) : config.meters;
  if (meters.length === 0)
    throw new CliError(
      `no meter ${JSON.stringify(opts.meter)} in ${opts.config}; its meters are ${config.meters.map((m) => m.id).join(', ')}`,
      ExitCode.usage,
    );
  const readers = meters.map((m) => createMeterReader(m));
  let outcomes: Outcome[];
  try {
    // Meters on one bus queue behind each other in the driver; separate buses are read at the same time.
    outcomes = await Promise.all(readers.map(readOnce));
  } finally {
    await Promise.allSettled(readers.map((r) => r.close()));
  }
  outcomes.forEach((o, i) => io.out(opts.json ? `${asJson(o)}\n` : asText(o, meterLabel(meters[i]!))));
  const failed = outcomes.filter((o) => o.error).length;
  if (failed > 0)
    throw new CliError(
      `${failed} of ${outcomes.length} meter${outcomes.length === 1 ? '' : 's'} could not be read; check wiring, port, unit id and baud`,
      ExitCode.failure,
    );
}

export const readCommand: CommandModule = {
  register(program: Command, io: CliIo) {
    program
      .command('read')
      .description('poll each configured meter once and print its values (installer check)')
      .option('-c, --config <file>', 'the YAML config (only thing and meters are needed)', defaultConfigFile)
      .option('--meter <id>', 'read only this meter')
      .option('--json', 'one JSON object per meter: {meter, ts, values, flags}')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink read --config /etc/meterlink/config.yaml\n' +
          '  meterlink read --meter main --json\n' +
          '\nExit status: 0 all meters answered, 1 a meter could not be read, 78 bad config.\n',
      )
      .action((opts: ReadOptions) => read(opts, io));
  },
};
