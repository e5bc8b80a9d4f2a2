/**
 * `meterlink simulate iec62056-21`: be the optical D0 port of a meter. Mode C answers the sign-on with its
 * identification, honours the ACK option select (switches to the speed asked for) and sends the data message;
 * mode D pushes identification + data message every interval. Values from the apartment model; faults on
 * request. Runs until `--count` messages were sent, or SIGINT/SIGTERM.
 */
import { defaultIecSerial, startIecEmitter, type IecEmitter } from '../../drivers/simulator/iec-emitter.js';
import { CliError, ExitCode } from '../cli.js';
import type { SimulateMode } from './simulate.js';
import { durationOption, frameOptions, frameValues, untilStopped, wholeOption } from './simulate-options.js';

interface IecOpts {
  port: string;
  mode: string;
  z: string;
  baud: string;
  interval: string;
  step: string;
  count?: string;
  seed: string;
  serial: string;
  bare?: boolean;
  badBccEvery?: string;
  truncateEvery?: string;
  noiseEvery?: string;
  silentEvery?: string;
  silent?: boolean;
  quiet?: boolean;
}

export const iecMode: SimulateMode = {
  register(simulate, io) {
    frameOptions(
      simulate
        .command('iec62056-21')
        .description(
          "be a meter's optical D0 port (IEC 62056-21): mode C sign-on/ACK/baud switch/readout, or mode D push, 7E1",
        ),
      'data messages',
      'apartment model',
    )
      .option('--mode <c|d>', 'c: answer sign-ons (300 baud, then the speed the ACK asks); d: push', 'c')
      .option('--z <char>', 'mode C: baud character offered in the identification (0-6: 300-19200)', '5')
      .option('--baud <n>', 'mode D: push speed', '9600')
      .option('--interval <d>', 'mode D: time between pushes', '1s')
      .option('--step <d>', 'apartment time per data message', '1s')
      .option('--serial <id>', 'meter serial (96.1.0 / 0.0.0)', defaultIecSerial)
      .option('--bare', 'mode D: send the data block without STX/ETX/BCC (EasyMeter/Hager style)')
      .option('--bad-bcc-every <n>', 'every Nth data message with a wrong BCC')
      .option('--silent-every <n>', 'mode C: no answer to every Nth sign-on')
      .option('--silent', 'mode C: never answer (an optical head off the port)')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink simulate iec62056-21 --port /tmp/ttyA                      mode C, offers 9600 baud\n' +
          '  meterlink simulate iec62056-21 --port /tmp/ttyA --mode d --interval 2s --bad-bcc-every 5\n',
      )
      .action(async (o: IecOpts) => {
        if (o.mode !== 'c' && o.mode !== 'd')
          throw new CliError(
            `--mode ${o.mode}: expected c (sign-on and readout) or d (push)`,
            ExitCode.usage,
          );
        if (!/^[0-6]$/.test(o.z))
          throw new CliError(`--z ${o.z}: expected a mode C baud character 0-6 (5 = 9600)`, ExitCode.usage);
        if (!/^[\x21-\x7e]{1,32}$/.test(o.serial))
          throw new CliError(`--serial ${o.serial}: expected 1-32 printable characters`, ExitCode.usage);
        const baud = wholeOption(o.baud, '--baud', 300) as number;
        const intervalMs = durationOption(o.interval, '--interval') as number;
        const stepMs = durationOption(o.step, '--step') as number;
        const { count, seed, truncateEvery, noiseEvery } = frameValues(o);
        const faults = {
          badBccEvery: wholeOption(o.badBccEvery, '--bad-bcc-every'),
          truncateEvery,
          noiseEvery,
          silentEvery: wholeOption(o.silentEvery, '--silent-every'),
          silent: o.silent ?? false,
        };
        let emitter: IecEmitter;
        try {
          emitter = await startIecEmitter({
            path: o.port,
            mode: o.mode,
            z: o.z,
            baud,
            intervalMs,
            stepMs,
            seed,
            serial: o.serial,
            bare: o.bare ?? false,
            faults,
            ...(count === undefined ? {} : { count }),
            onMessage: (m) => {
              if (!o.quiet)
                io.out(
                  `message ${m.index} ${m.kind}${m.askedBaud === undefined ? '' : ` asked Z=${m.askedZ} ${m.askedBaud} baud`}\n`,
                );
            },
            onPortError: (err) => io.err(`meterlink: ${o.port}: ${err.message}\n`),
          });
        } catch (err) {
          throw new CliError(
            `cannot open ${o.port} to simulate an IEC 62056-21 meter: ${(err as Error).message} (is the path right?)`,
          );
        }
        io.out(
          `simulating an IEC 62056-21 meter, mode ${o.mode.toUpperCase()} (serial ${o.serial}) on ${o.port}; Ctrl-C stops\n`,
        );
        await untilStopped(emitter.done);
        await emitter.stop();
        io.out(`sent ${emitter.sent} data messages (${emitter.goodSent} good)\n`);
      });
  },
};
