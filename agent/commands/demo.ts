/**
 * `meterlink demo [--duration 30s] [--no-tui] [--dir D]`: the whole pipeline on this machine with no hardware
 * and no AWS (simulated meters, a local Mosquitto with mutual TLS, the real agent, a consumer that verifies
 * every batch), with a live view. Ctrl-C or `--duration` stops it and prints a summary line.
 */
import { CliError, ExitCode, type CommandModule } from '../cli.js';
import { parseDuration } from '../config/index.js';
import { isDemoError } from '../demo/errors.js';
import { runDemo, type DemoSummary } from '../demo/run-demo.js';
import { drawFrame, enterScreen, formatBytes, leaveScreen, progressLine, renderFrame } from '../demo/view.js';

interface DemoCliOptions {
  duration?: string;
  tui: boolean;
  dir?: string;
  simTime?: string;
  dashboard?: string | boolean;
}

/**
 * `--sim-time`: `HH:MM` (UTC, on today's date) or an ISO 8601 instant with its zone (`2026-06-21T12:00Z`).
 * Returns ms since the epoch, or undefined when the text is neither.
 */
export function parseSimTime(text: string, now = Date.now()): number | undefined {
  const hm = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (hm) {
    const d = new Date(now);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), Number(hm[1]), Number(hm[2]));
  }
  // An instant must say its zone: a bare local time would depend on the machine's TZ.
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

export function summaryLine(s: DemoSummary): string {
  const bps = s.samples > 0 ? (s.bytes / s.samples).toFixed(1) : '—';
  return (
    `summary: ran ${(s.elapsedMs / 1000).toFixed(1)} s${s.interrupted ? ' (stopped by Ctrl-C)' : ''} · ` +
    `batches ${s.batches} received, ${s.verified} verified, ${s.rejected} rejected · samples ${s.samples} · ` +
    `${bps} bytes/sample (${formatBytes(s.bytes)} in all) · billable 5-KB units ${s.billableUnits} · ` +
    `${s.dir} ${s.dirRemoved ? 'removed' : 'kept'}\n`
  );
}

export const demoCommand: CommandModule = {
  register(program, io) {
    program
      .command('demo')
      .description(
        'the whole pipeline on this machine, no hardware, no AWS: simulated meters, a local Mosquitto with ' +
          'mutual TLS, the real agent and buffer, and a consumer that verifies every batch — shown live',
      )
      .option('-d, --duration <time>', 'stop after this long (e.g. 30s, 5m); default: until Ctrl-C')
      .option(
        '--no-tui',
        'one progress line per second instead of the live view (automatic when not a terminal)',
      )
      .option('--dir <dir>', 'work in this directory and keep it (certificates, config, buffer, agent.log)')
      .option(
        '--sim-time <time>',
        "the simulated apartment's clock at start: HH:MM (UTC, today) or an instant like 2026-06-21T12:00Z; " +
          'noon shows solar export, evening the cooking peak (default: now)',
      )
      .option('--dashboard <host:port>', 'where the local web dashboard listens (default 127.0.0.1:8080)')
      .option('--no-dashboard', 'no web dashboard')
      .addHelpText(
        'after',
        '\nNeeds mosquitto (sudo apt-get install mosquitto); socat too for the serial meters (without it the\n' +
          'SDM630 is simulated over Modbus TCP and there is no DSMR meter). METERLINK_DEMO_MOSQUITTO and\n' +
          'METERLINK_DEMO_SOCAT name other executables.\n\n' +
          'Examples:\n  meterlink demo\n  meterlink demo --duration 30s --no-tui\n  meterlink demo --dir ./demo-run\n' +
          '  meterlink demo --sim-time 12:00   # a sunny noon: the balcony panel exports, power goes negative\n' +
          '  meterlink demo --dashboard 127.0.0.1:8090   # the web dashboard on another port (printed at start)\n',
      )
      .action(async (opts: DemoCliOptions) => {
        let durationMs: number | undefined;
        if (opts.duration !== undefined) {
          durationMs = parseDuration(opts.duration);
          if (durationMs === undefined || durationMs <= 0)
            throw new CliError(
              `--duration ${opts.duration}: not a duration; write it like 30s, 5m or 1h`,
              ExitCode.usage,
            );
        }
        let simStart: number | undefined;
        if (opts.simTime !== undefined) {
          simStart = parseSimTime(opts.simTime);
          if (simStart === undefined)
            throw new CliError(
              `--sim-time ${opts.simTime}: not a time; write HH:MM (UTC) like 12:00, or an instant with its zone like 2026-06-21T12:00Z`,
              ExitCode.usage,
            );
        }
        const tui = opts.tui && process.stdout.isTTY === true;
        const abort = new AbortController();
        const onSignal = () => abort.abort();
        // Once only: a second Ctrl-C gets Node's default (immediate exit) if stopping ever hangs.
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        let screen = false;
        let summary: DemoSummary;
        try {
          summary = await runDemo({
            ...(durationMs !== undefined ? { durationMs } : {}),
            ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
            ...(simStart !== undefined ? { simStart } : {}),
            ...(opts.dashboard !== undefined && opts.dashboard !== true ? { dashboard: opts.dashboard } : {}),
            signal: abort.signal,
            onStep: (text) => {
              if (screen) {
                io.out(leaveScreen);
                screen = false;
              }
              io.out(`demo: ${text}\n`);
            },
            onTick: (snap) => {
              if (!tui) {
                io.out(`${progressLine(snap)}\n`);
                return;
              }
              if (!screen) {
                io.out(enterScreen);
                screen = true;
              }
              io.out(drawFrame(renderFrame(snap, process.stdout.columns), process.stdout.columns || 120));
            },
          });
        } catch (err) {
          if (isDemoError(err)) throw new CliError(err.message, ExitCode.failure);
          throw err;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          if (screen) io.out(leaveScreen);
        }
        io.out(summaryLine(summary));
        if (summary.rejected > 0)
          throw new CliError(
            `${summary.rejected} batch(es) failed to decode or verify; see agent.log (run with --dir to keep it)`,
          );
      });
  },
};
