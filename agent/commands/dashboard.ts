/**
 * `meterlink dashboard`: the local web dashboard. When the running agent serves it (`dashboard:` in the
 * config), this prints its URL. Otherwise it serves one itself until Ctrl-C: live values from the agent's
 * status file (rewritten every 2 s), and the history the agent recorded if the agent is not holding it open.
 */
import { stat } from 'node:fs/promises';
import { request } from 'node:http';
import { CliError, ExitCode, type CommandModule } from '../cli.js';
import { formatProblem, isConfigError, loadConfig, type Config } from '../config/index.js';
import { readStatusFile } from '../daemon/status-file.js';
import type { HistoryStore } from '../dashboard/index.js';
import type { LiveView } from '../dashboard/live.js';
import { DEFAULT_CONFIG } from './run.js';

interface DashboardCliOptions {
  config: string;
  listen?: string;
  token?: string;
  statusFile?: string;
}

/** GET url → status code, or undefined when nothing answers. */
function probe(url: string, token: string | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(
      new URL('/api/live', url),
      { timeout: 2_000, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

export const dashboardCommand: CommandModule = {
  register(program, io) {
    program
      .command('dashboard')
      .description(
        'the local web dashboard: live power, energy per hour and day, buffer and clock — from the running agent',
      )
      .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
      .option(
        '--listen <host:port>',
        'serve here when the agent does not (default: dashboard.listen, else 127.0.0.1:8080)',
      )
      .option('--token <secret>', 'require this token (needed when --listen is not loopback)')
      .option('--status-file <path>', 'status file to read (default: status.file from the config)')
      .addHelpText(
        'after',
        '\nWith `dashboard: { listen: 127.0.0.1:8080 }` in the config, `meterlink run` serves the dashboard and records\n' +
          'its history (48 h of minutes, 60 days of hours); this command then prints its URL. Without it, this command\n' +
          'serves the live part from the status file until Ctrl-C. From another computer, use an SSH tunnel:\n' +
          '  ssh -L 8080:127.0.0.1:8080 pi@meterbox   then open http://127.0.0.1:8080/\n\n' +
          'Examples:\n  meterlink dashboard\n  meterlink dashboard --config ./config.yaml --listen 127.0.0.1:8090\n',
      )
      .action(async (opts: DashboardCliOptions) => {
        // Loaded here, not at start-up: `meterlink run` without a dashboard must not carry it in memory.
        const {
          dashboardUrl,
          historyPath,
          listenProblem,
          loadAssets,
          openHistory,
          parseListen,
          startDashboardServer,
          tokenProblem,
        } = await import('../dashboard/index.js');
        const { liveView } = await import('../dashboard/live.js');
        // `--token` follows the rule dashboard.token follows in the config (checked there by loadConfig).
        if (opts.token !== undefined) {
          const bad = tokenProblem(opts.token);
          if (bad) throw new CliError(`--token: ${bad.message}; ${bad.fix}`, ExitCode.usage);
        }
        let config: Config;
        try {
          config = await loadConfig(opts.config);
        } catch (err) {
          if (isConfigError(err)) {
            for (const p of err.problems) io.err(`${formatProblem(p)}\n`);
            throw new CliError(`${opts.config} has ${err.problems.length} problem(s)`, ExitCode.badConfig);
          }
          throw err;
        }
        const token = opts.token ?? config.dashboard?.token;
        if (config.dashboard && opts.listen === undefined) {
          const url = dashboardUrl(parseListen(config.dashboard.listen));
          const code = await probe(url, token);
          if (code === 200) {
            io.out(
              `the agent serves the dashboard: ${dashboardUrl(parseListen(config.dashboard.listen), token)}\n`,
            );
            return;
          }
          if (code !== undefined)
            throw new CliError(
              `${url} answers ${code}${code === 401 ? ' (wrong or missing token: --token or dashboard.token)' : ''}; is it the agent's dashboard?`,
            );
        }
        const listenText = opts.listen ?? config.dashboard?.listen ?? '127.0.0.1:8080';
        const problem = listenProblem(listenText, token);
        if (problem)
          throw new CliError(`--listen ${listenText}: ${problem.message}; ${problem.fix}`, ExitCode.usage);
        const listen = parseListen(listenText);
        const statusFile = opts.statusFile ?? config.status.file;

        // The history, when the agent recorded one and does not hold it open right now.
        let history: HistoryStore | undefined;
        let historyNote: string | undefined;
        const hPath = historyPath(config);
        if (await stat(hPath).catch(() => null)) {
          try {
            history = await openHistory(hPath);
          } catch {
            historyNote = `the history at ${hPath} is held by the running agent: open the agent's own dashboard (dashboard.listen) for it`;
          }
        } else {
          historyNote = config.dashboard
            ? `no history yet at ${hPath}: the agent records it while it runs`
            : 'no history: add `dashboard: { listen: 127.0.0.1:8080 }` to the config so that the agent records power and energy per minute and hour';
        }

        let cached: { at: number; view: LiveView | undefined } = { at: 0, view: undefined };
        const live = async () => {
          if (Date.now() - cached.at < 1_000) return cached.view;
          const s = await readStatusFile(statusFile).catch(() => undefined);
          cached = { at: Date.now(), view: s ? liveView(s, [], Date.now()) : undefined };
          return cached.view;
        };
        let server;
        try {
          server = await startDashboardServer({
            listen,
            ...(token !== undefined ? { token } : {}),
            assets: await loadAssets(),
            live,
            ...(history ? { history } : {}),
            ...(historyNote ? { historyNote } : {}),
            meters: async () => config.meters.map((m) => m.id),
          });
        } catch (err) {
          await history?.close();
          throw new CliError(`cannot listen on ${listenText}: ${(err as Error).message}`);
        }
        if (!listen.loopback)
          io.err(`warning: ${listenText} is reachable from the network; every request needs the token\n`);
        io.out(
          `dashboard on ${dashboardUrl({ host: listen.host, port: server.port }, token)} (live from ${statusFile}${history ? `, history from ${hPath}` : ''}); Ctrl-C stops\n`,
        );
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        await server.close();
        await history?.close();
      });
  },
};
