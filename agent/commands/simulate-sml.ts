/**
 * `meterlink simulate sml`: be the optical info interface of a German eHZ meter. Pushes SML 1.04 files
 * (PublicOpen, GetList.Res with counters and signed per-phase power, PublicClose; CRC-16/X-25) on a serial
 * path, with faults on request. Runs until `--count` files were sent, or SIGINT/SIGTERM.
 */
import { defaultSmlServerId, startSmlEmitter, type SmlEmitter } from '../../drivers/simulator/sml-emitter.js';
import { CliError, ExitCode } from '../cli.js';
import type { SimulateMode } from './simulate.js';
import { frameOptions, frameValues, untilStopped, wholeOption } from './simulate-options.js';

interface SmlOpts {
  port: string;
  interval: string;
  count?: string;
  seed: string;
  serverId: string;
  badCrcEvery?: string;
  truncateEvery?: string;
  noiseEvery?: string;
  counterOnlyFrom?: string;
  quiet?: boolean;
}

export const smlMode: SimulateMode = {
  register(simulate, io) {
    frameOptions(
      simulate
        .command('sml')
        .description('be an SML meter (German eHZ) pushing SML 1.04 files on a serial path, 9600 8N1'),
      'files',
      'meter model',
    )
      .option('--interval <ms>', 'milliseconds between files', '1000')
      .option('--server-id <hex>', 'server id (the meter identity) as hex bytes', defaultSmlServerId)
      .option('--bad-crc-every <n>', 'every Nth file with a wrong CRC')
      .option('--counter-only-from <n>', 'from file N on, counters only (no power: a PIN-locked meter)')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink simulate sml --port /tmp/ttyA                       one file a second\n' +
          '  meterlink simulate sml --port /tmp/ttyA --bad-crc-every 5 --noise-every 3\n',
      )
      .action(async (o: SmlOpts) => {
        const intervalMs = wholeOption(o.interval, '--interval') as number;
        const seed = wholeOption(o.seed, '--seed', 0) as number;
        if (!/^(?:[0-9a-fA-F]{2}){1,32}$/.test(o.serverId))
          throw new CliError(
            `--server-id ${o.serverId}: expected hex bytes like ${defaultSmlServerId}`,
            ExitCode.usage,
          );
        const { count, truncateEvery, noiseEvery } = frameValues(o);
        const faults = {
          badCrcEvery: wholeOption(o.badCrcEvery, '--bad-crc-every'),
          truncateEvery,
          noiseEvery,
          counterOnlyFrom: wholeOption(o.counterOnlyFrom, '--counter-only-from'),
        };
        let emitter: SmlEmitter;
        try {
          emitter = await startSmlEmitter({
            path: o.port,
            intervalMs,
            seed,
            serverId: o.serverId.toLowerCase(),
            faults,
            ...(count === undefined ? {} : { count }),
            onFile: (f) => {
              if (!o.quiet) io.out(`file ${f.index} ${f.kind}${f.counterOnly ? ' counter-only' : ''}\n`);
            },
            onPortError: (err) => io.err(`meterlink: ${o.port}: ${err.message}\n`),
          });
        } catch (err) {
          throw new CliError(
            `cannot open ${o.port} to simulate an SML meter: ${(err as Error).message} (is the path right?)`,
          );
        }
        io.out(`simulating an SML meter (server id ${o.serverId}) on ${o.port}; Ctrl-C stops\n`);
        await untilStopped(emitter.done);
        await emitter.stop();
        io.out(`sent ${emitter.filesSent} files (${emitter.goodSent} good)\n`);
      });
  },
};
