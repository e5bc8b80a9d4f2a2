/**
 * `meterlink scan --port P`: find Modbus meters on an RS-485 bus and name their likely profile.
 */
import { scanModbusBus } from '../../drivers/modbus/scan.js';
import { isDriverError } from '../../drivers/errors.js';
import { CliError, ExitCode, type CommandModule } from '../cli.js';

/** `1-4,7,10-12` → [1,2,3,4,7,10,11,12]. */
export function parseUnitList(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const from = Number(m?.[1]);
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (!m || from < 1 || to > 247 || from > to)
      throw new CliError(`--units ${spec}: expected unit ids 1–247 like "1-10,20"`, ExitCode.usage);
    for (let u = from; u <= to; u++) out.add(u);
  }
  return [...out].sort((a, b) => a - b);
}

function parseBauds(spec: string): number[] {
  return spec.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 300 || n > 921_600)
      throw new CliError(`--baud ${spec}: expected baud rates like "9600,19200"`, ExitCode.usage);
    return n;
  });
}

export const scanCommand: CommandModule = {
  register(program, io) {
    program
      .command('scan')
      .description('find Modbus meters on an RS-485 bus and name their likely profile')
      .requiredOption('--port <path>', 'serial device of the RS-485 adapter')
      .option('--baud <list>', 'baud rates to try, comma-separated', '9600,19200,2400,4800,38400')
      .option('--units <list>', 'unit ids to probe, e.g. 1-247 or 1-10,20', '1-247')
      .option('--parity <p>', 'none | even | odd', 'none')
      .option('--timeout <ms>', 'probe timeout per unit id', '100')
      .option('--json', 'print the result as JSON')
      .addHelpText(
        'after',
        '\nExample:\n  meterlink scan --port /dev/ttyUSB0 --baud 9600,19200 --units 1-20\n',
      )
      .action(
        async (o: {
          port: string;
          baud: string;
          units: string;
          parity: string;
          timeout: string;
          json?: boolean;
        }) => {
          if (!['none', 'even', 'odd'].includes(o.parity))
            throw new CliError(`--parity ${o.parity}: expected none, even or odd`, ExitCode.usage);
          const timeout = Number(o.timeout);
          if (!(timeout >= 10 && timeout <= 10_000))
            throw new CliError(`--timeout ${o.timeout}: expected 10–10000 ms`, ExitCode.usage);
          const bauds = parseBauds(o.baud);
          const units = parseUnitList(o.units);
          const progress = o.json ? io.err : io.out;
          let result;
          try {
            result = await scanModbusBus({
              port: o.port,
              bauds,
              units,
              parity: o.parity as 'none',
              timeout,
              onProgress: (line) => progress(`${line}\n`),
            });
          } catch (err) {
            if (isDriverError(err)) throw new CliError(`scan of ${o.port} failed: ${err.message}`);
            throw err;
          }
          if (o.json) {
            io.out(`${JSON.stringify(result.found)}\n`);
            return;
          }
          if (result.found.length === 0) {
            io.out(
              `no Modbus meter answered on ${o.port} (check wiring A/B, termination, baud rate and parity)\n`,
            );
            return;
          }
          const rows = [
            ['unit', 'baud', 'likely profile', 'values'],
            ...result.found.map((f) => [
              String(f.unit),
              String(f.baud),
              f.profiles.length === 0 ? '(unknown)' : f.profiles.join(' | '),
              Object.entries(f.values)
                .map(([k, v]) => `${k}=${v}`)
                .join(' '),
            ]),
          ];
          const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
          for (const r of rows)
            io.out(
              `${r
                .map((cell, c) => cell.padEnd(widths[c]!))
                .join('  ')
                .trimEnd()}\n`,
            );
        },
      );
  },
};
