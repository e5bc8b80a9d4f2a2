/**
 * `meterlink status [--json]`: what the running agent is doing, from the status file it rewrites every few
 * seconds in its runtime directory.
 */
import { CliError, ExitCode, type CommandModule } from '../cli.js';
import { loadConfig } from '../config/index.js';
import { readStatusFile, type AgentStatus } from '../daemon/status-file.js';

const ago = (now: number, t: number | null) =>
  t === null ? 'never' : `${Math.max(0, Math.round((now - t) / 1000))} s ago`;

export function formatStatus(s: AgentStatus, now = Date.now()): string {
  const lines = [
    `meterlink ${s.version} on ${s.thing} (pid ${s.pid}), up ${Math.round((now - s.startedAt) / 1000)} s, status written ${ago(now, s.updatedAt)}`,
    `connection: ${s.connection.state}${s.connection.endpoint ? ` to ${s.connection.endpoint}` : ''}${s.connection.lastError ? ` — last error: ${s.connection.lastError}` : ''}`,
    `buffer: ${s.buffer.depth} samples (${s.buffer.bytes} B) waiting${s.buffer.oldestTs ? `, oldest from ${new Date(s.buffer.oldestTs).toISOString()}` : ''}; ${s.buffer.dropped} dropped so far`,
    `publisher: ${s.publisher.samplesAcked} samples in ${s.publisher.batchesAcked} batches acknowledged, last ${ago(now, s.publisher.lastAckAt)}, ${s.publisher.inFlight} in flight${s.publisher.pausedUntil ? `, PAUSED until ${new Date(s.publisher.pausedUntil).toISOString()}` : ''}`,
    `clock: ${s.clock.synced ? 'synchronised' : `NOT synchronised${s.clock.unsyncedSince ? ` since ${new Date(s.clock.unsyncedSince).toISOString()}` : ''} (samples are held, flagged and corrected later)`}${s.clock.detail ? ` — ${s.clock.detail}` : ''}`,
    'meters:',
    ...s.meters.map((m) => {
      const vals = Object.entries(m.lastValues)
        .slice(0, 4)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      return `  ${m.id.padEnd(10)} ${m.ok ? 'ok    ' : 'FAILING'} ${m.label}; ${m.polls} polls, ${m.failures} failed; last sample ${ago(now, m.lastTs)}${vals ? `; ${vals}` : ''}${m.lastError && !m.ok ? `; ${m.lastError}` : ''}`;
    }),
  ];
  if (s.recentErrors.length > 0) {
    lines.push('recent errors:');
    for (const e of s.recentErrors.slice(-5))
      lines.push(`  ${new Date(e.at).toISOString()} ${e.source}: ${e.message}`);
  }
  return lines.join('\n') + '\n';
}

export const statusCommand: CommandModule = {
  register(program, io) {
    program
      .command('status')
      .description("show the running agent's state: connection, buffer, last sample per meter, recent errors")
      .option('-c, --config <file>', 'configuration file (for status.file)', '/etc/meterlink/config.yaml')
      .option(
        '--file <path>',
        'status file to read (default: status.file from the config, else /run/meterlink/status.json)',
      )
      .option('--json', 'print the raw status as JSON')
      .addHelpText('after', '\nExample:\n  meterlink status\n  meterlink status --json | jq .buffer\n')
      .action(async (opts: { config: string; file?: string; json?: boolean }) => {
        let file = opts.file;
        if (!file) {
          try {
            file = (await loadConfig(opts.config)).status.file;
          } catch {
            file = '/run/meterlink/status.json';
          }
        }
        let s: AgentStatus;
        try {
          s = await readStatusFile(file);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new CliError(
            code === 'ENOENT'
              ? `no status at ${file}: the agent is not running (systemctl status meterlink), or status.file differs`
              : `cannot read ${file}: ${(err as Error).message}`,
            ExitCode.failure,
          );
        }
        io.out(opts.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      });
  },
};
