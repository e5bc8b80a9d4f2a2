/**
 * `meterlink run [--config F]`: the daemon systemd starts. A bad config exits 78 (EX_CONFIG), which the unit
 * excludes from restarts: the agent never starts half-configured. SIGTERM/SIGINT stop it cleanly (exit 0).
 */
import pino from 'pino';
import { CliError, ExitCode, type CommandModule } from '../cli.js';
import { formatProblem, isConfigError } from '../config/errors.js';
import { loadConfigIsolated } from '../config/isolated.js';
import { startAgent } from '../daemon/agent.js';
import { isJournalStream, journalDestination } from '../runtime/journal.js';

export const DEFAULT_CONFIG = '/etc/meterlink/config.yaml';

export const runCommand: CommandModule = {
  register(program, io) {
    program
      .command('run')
      .description('run the agent: poll the meters, keep every reading on disk, ship batches to AWS IoT Core')
      .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
      .addHelpText(
        'after',
        '\nsystemd starts this (see systemd/meterlink.service). Logs are JSON lines on stdout.\n' +
          'Exit status 78 means the configuration is invalid; check it with `meterlink config check`.\n\n' +
          'Example:\n  meterlink run --config /etc/meterlink/config.yaml\n',
      )
      .action(async (opts: { config: string }) => {
        let config;
        try {
          config = await loadConfigIsolated(opts.config, { requireCloud: true });
        } catch (err) {
          if (isConfigError(err)) {
            for (const p of err.problems) io.err(`${formatProblem(p)}\n`);
            throw new CliError(
              `not starting: ${opts.config} has ${err.problems.length} problem(s)`,
              ExitCode.badConfig,
            );
          }
          throw err;
        }
        const logOptions: pino.LoggerOptions = {
          level: process.env.METERLINK_LOG_LEVEL ?? config.log.level,
          base: { thing: config.thing },
          // Belt and braces: nothing we log carries key material, but never let a path to one through.
          redact: ['key', 'privateKey', '*.privateKey', '*.keyPem'],
        };
        // Under systemd, stdout is journald's stream: each line carries its syslog priority (<4> for a warning).
        const log = isJournalStream(1)
          ? pino(logOptions, journalDestination(pino.destination({ dest: 1, sync: false })))
          : pino(logOptions);
        const agent = await startAgent(config, { log });
        await new Promise<void>((resolve) => {
          const onSignal = (sig: NodeJS.Signals) => {
            log.info({ signal: sig }, 'stopping');
            process.off('SIGTERM', onSignal);
            process.off('SIGINT', onSignal);
            resolve();
          };
          process.on('SIGTERM', onSignal);
          process.on('SIGINT', onSignal);
        });
        await agent.stop(8_000);
      });
  },
};
