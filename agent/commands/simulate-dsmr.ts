/**
 * `meterlink simulate dsmr`: be the P1 port of a smart meter. Writes DSMR telegrams (2.2, 4.2, 5.0.2 or
 * e-MUCS) of a simulated apartment on a serial path, with correct CRCs unless a fault option says otherwise.
 * Runs until `--count` telegrams were sent, or SIGINT/SIGTERM.
 */
import { startDsmrEmitter, type DsmrEmitter } from '../../drivers/simulator/dsmr-emitter.js';
import { dsmrFlavours, type DsmrFlavour } from '../../drivers/simulator/dsmr-render.js';
import { CliError, ExitCode } from '../cli.js';
import type { SimulateMode } from './simulate.js';
import { durationOption, untilStopped, wholeOption } from './simulate-options.js';

interface DsmrOpts {
  port: string;
  flavour: string;
  interval?: string;
  step?: string;
  count?: string;
  seed: string;
  serial?: string;
  corruptCrcEvery?: string;
  truncateEvery?: string;
  garbageEvery?: string;
  stallAfter?: string;
  quiet?: boolean;
  encryptKey?: string;
}

export const dsmrMode: SimulateMode = {
  register(simulate, io) {
    simulate
      .command('dsmr')
      .description('be a smart meter P1 port: DSMR telegrams with CRCs on a serial path')
      .requiredOption('--port <path>', 'serial device to write to (a P1 adapter or one end of a pty pair)')
      .option('--flavour <v>', `telegram flavour: ${dsmrFlavours.join(' | ')}`, '5')
      .option('--interval <d>', 'time between telegrams (default 1s for 5/e-mucs, 10s for 2.2/4)')
      .option('--step <d>', 'apartment time per telegram (default = interval; larger runs faster)')
      .option('--count <n>', 'stop after this many telegrams')
      .option('--seed <n>', 'seed of the apartment model', '1')
      .option('--serial <id>', 'equipment identifier to report')
      .option('--corrupt-crc-every <n>', 'every Nth telegram with a wrong CRC')
      .option('--truncate-every <n>', 'every Nth telegram cut off before its end')
      .option('--garbage-every <n>', 'random bytes before every Nth telegram')
      .option('--stall-after <n>', 'stop sending after N telegrams (a hung meter), keep the port open')
      .option('--encrypt-key <hex>', 'encrypt each telegram like a Smarty meter (AES-128-GCM, 32 hex digits)')
      .option('--quiet', 'no line per telegram')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink simulate dsmr --port /dev/ttyUSB1                       DSMR 5, one telegram a second\n' +
          '  meterlink simulate dsmr --port /tmp/ttyA --flavour e-mucs --corrupt-crc-every 5\n' +
          '  meterlink simulate dsmr --port /tmp/ttyA --encrypt-key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA   Smarty, encrypted\n',
      )
      .action(async (o: DsmrOpts) => {
        if (!dsmrFlavours.includes(o.flavour as DsmrFlavour))
          throw new CliError(
            `--flavour ${o.flavour}: expected one of ${dsmrFlavours.join(', ')}`,
            ExitCode.usage,
          );
        const seed = Number(o.seed);
        if (!Number.isSafeInteger(seed))
          throw new CliError(`--seed ${o.seed}: expected a whole number`, ExitCode.usage);
        if (o.encryptKey !== undefined && !/^[0-9a-fA-F]{32}$/.test(o.encryptKey))
          throw new CliError(
            `--encrypt-key ${o.encryptKey}: expected 32 hex digits (a 16-byte AES key)`,
            ExitCode.usage,
          );
        const intervalMs = durationOption(o.interval, '--interval');
        const stepMs = durationOption(o.step, '--step');
        const total = wholeOption(o.count, '--count', 1, 'telegrams');
        const faults = {
          corruptCrcEvery: wholeOption(o.corruptCrcEvery, '--corrupt-crc-every', 1, 'telegrams'),
          truncateEvery: wholeOption(o.truncateEvery, '--truncate-every', 1, 'telegrams'),
          garbageEvery: wholeOption(o.garbageEvery, '--garbage-every', 1, 'telegrams'),
          stallAfter: wholeOption(o.stallAfter, '--stall-after', 1, 'telegrams'),
        };
        let emitter: DsmrEmitter;
        try {
          emitter = await startDsmrEmitter({
            path: o.port,
            flavour: o.flavour as DsmrFlavour,
            seed,
            faults,
            ...(intervalMs === undefined ? {} : { intervalMs }),
            ...(stepMs === undefined ? {} : { stepMs }),
            ...(total === undefined ? {} : { count: total }),
            ...(o.serial === undefined ? {} : { serial: o.serial }),
            ...(o.encryptKey === undefined ? {} : { encryptKey: Buffer.from(o.encryptKey, 'hex') }),
            onTelegram: (e) => {
              if (!o.quiet)
                io.out(`telegram ${e.index} ${e.kind}${e.garbage ? ` +${e.garbage} garbage bytes` : ''}\n`);
            },
            onPortError: (err) => io.err(`meterlink: P1 port ${o.port}: ${err.message} (retrying)\n`),
          });
        } catch (err) {
          throw new CliError(
            `cannot open ${o.port} to simulate a P1 port: ${(err as Error).message} (is the path right?)`,
          );
        }
        io.out(`simulating a DSMR ${o.flavour} P1 port on ${o.port}; Ctrl-C stops\n`);
        await untilStopped(emitter.done);
        await emitter.stop();
        io.out(`sent ${emitter.telegramsSent} telegrams (${emitter.goodSent} good)\n`);
      });
  },
};
