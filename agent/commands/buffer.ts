/**
 * `meterlink buffer stats|export`: look into the on-disk backlog. The store is opened for inspection only:
 * never created, never repaired or set aside, no budget applied. LevelDB allows one process per store, so
 * while the agent runs these report that it is in use (the agent's own view is `meterlink status`).
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Command } from 'commander';
import { isBufferError, openLevelBuffer, type BufferStats, type ReadingBuffer } from '../../buffer/index.js';
import { isConfigError, loadConfig } from '../config/index.js';
import { CliError, ExitCode, processIo, type CliIo, type CommandModule } from '../cli.js';

const DEFAULT_CONFIG = '/etc/meterlink/config.yaml';
const EXPORT_CHUNK = 1000;
/**
 * Export reads at most this many stored bytes at a time (~180 SDM630 samples, ~0.4 MB of JSON): a chunk's
 * sample objects, its text and stdout's copy of it then die young instead of being promoted.
 */
const EXPORT_CHUNK_BYTES = 32 * 1024;

interface Where {
  path?: string;
  config?: string;
}

/** `--path` wins; otherwise `buffer.path` of `--config` (default /etc/meterlink/config.yaml). */
async function bufferPath(o: Where): Promise<string> {
  if (o.path) return o.path;
  const file = o.config ?? DEFAULT_CONFIG;
  try {
    return (await loadConfig(file)).buffer.path;
  } catch (err) {
    if (isConfigError(err))
      throw new CliError(
        `${err.message}\n(or name the buffer directory directly with --path DIR)`,
        ExitCode.badConfig,
      );
    throw err;
  }
}

async function openForInspection(path: string): Promise<ReadingBuffer> {
  try {
    return await openLevelBuffer({
      path,
      maxSize: Infinity,
      createIfMissing: false,
      recovery: 'never',
      retentionIntervalMs: 0,
    });
  } catch (err) {
    if (isBufferError(err, 'BUFFER_LOCKED'))
      throw new CliError(
        `${err.message}. While the agent runs, use \`meterlink status\` for the buffer depth.`,
        ExitCode.failure,
      );
    if (isBufferError(err)) throw new CliError(err.message, ExitCode.failure);
    throw err;
  }
}

const human = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 ** 2
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

const iso = (ts: number | null): string => (ts === null ? '-' : new Date(ts).toISOString());

function statsText(path: string, s: BufferStats): string {
  const rows: [string, string][] = [
    ['buffer', path],
    ['samples', `${s.count} (${human(s.bytes)})`],
    ['oldest', s.oldestSeq === null ? '-' : `seq ${s.oldestSeq}, ${iso(s.oldestTs)}`],
    ['newest', s.newestSeq === null ? '-' : `seq ${s.newestSeq}, ${iso(s.newestTs)}`],
    ['next seq', String(s.nextSeq)],
    ['dropped', `${s.droppedCount} (by retention, ever)`],
  ];
  return rows.map(([k, v]) => `${k.padEnd(10)}${v}\n`).join('');
}

/** Writes with backpressure where the sink has it, so an export of millions of samples stays small. */
function sinkFor(
  io: CliIo,
  output: string | undefined,
): { write(s: string): Promise<void>; end(): Promise<void> } {
  if (output) {
    const stream = createWriteStream(output);
    const failed = new Promise<never>((_, reject) =>
      stream.once('error', (err) =>
        reject(new CliError(`cannot write ${output}: ${err.message}`, ExitCode.failure)),
      ),
    );
    failed.catch(() => undefined);
    return {
      async write(s) {
        if (!stream.write(s)) await Promise.race([once(stream, 'drain'), failed]);
      },
      async end() {
        await Promise.race([new Promise<void>((resolve) => stream.end(resolve)), failed]);
      },
    };
  }
  return {
    async write(s) {
      io.out(s);
      // Only the real stdout has a buffer to wait for; injected sinks (tests) take everything at once.
      if (io === processIo && process.stdout.writableNeedDrain) await once(process.stdout, 'drain');
    },
    async end() {},
  };
}

export const bufferCommand: CommandModule = {
  register(program: Command, io: CliIo) {
    const cmd = program
      .command('buffer')
      .description('inspect or export the on-disk backlog of samples not yet acknowledged by the cloud')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  meterlink buffer stats --path /var/lib/meterlink/buffer\n' +
          '  meterlink buffer export --config /etc/meterlink/config.yaml > backlog.jsonl\n',
      );
    const where = (c: Command) =>
      c
        .option('--path <dir>', 'the buffer directory (LevelDB)')
        .option('--config <file>', `take buffer.path from this config (default ${DEFAULT_CONFIG})`);

    where(cmd.command('stats'))
      .description('count, size, oldest/newest sample and dropped count of the backlog')
      .option('--json', 'machine-readable output')
      .addHelpText('after', '\nExample:\n  meterlink buffer stats --path /var/lib/meterlink/buffer --json\n')
      .action(async (o: Where & { json?: boolean }) => {
        const path = await bufferPath(o);
        const buf = await openForInspection(path);
        try {
          const s = buf.stats();
          io.out(o.json ? `${JSON.stringify({ path, ...s })}\n` : statsText(path, s));
        } finally {
          await buf.close();
        }
      });

    where(cmd.command('export'))
      .description('every sample in the backlog, oldest first, one JSON object per line (values exact)')
      .option('--format <format>', 'output format (jsonl)', 'jsonl')
      .option('--output <file>', 'write to this file instead of stdout')
      .addHelpText(
        'after',
        '\nExample:\n  meterlink buffer export --path /var/lib/meterlink/buffer --output backlog.jsonl\n',
      )
      .action(async (o: Where & { format: string; output?: string }) => {
        if (o.format !== 'jsonl')
          throw new CliError(`unknown --format ${o.format}: the only format is jsonl`, ExitCode.usage);
        const path = await bufferPath(o);
        const buf = await openForInspection(path);
        const sink = sinkFor(io, o.output);
        try {
          let after = 0;
          for (;;) {
            const chunk = await buf.readOldest({
              afterSeq: after,
              maxCount: EXPORT_CHUNK,
              maxBytes: EXPORT_CHUNK_BYTES,
            });
            if (chunk.length === 0) break;
            let text = '';
            for (const s of chunk) text += `${JSON.stringify(s)}\n`;
            await sink.write(text);
            after = chunk[chunk.length - 1]!.seq;
          }
          await sink.end();
        } finally {
          await buf.close();
        }
      });
  },
};
