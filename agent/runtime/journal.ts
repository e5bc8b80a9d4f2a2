/**
 * Log lines with the right journald priority. Under systemd the agent's stdout is a stream to journald, which
 * gives every line the unit's default priority (6, info) unless the line starts with a syslog `<N>` prefix
 * (SyslogLevelPrefix=, on by default), which it strips and uses. So when stdout *is* the journal — systemd sets
 * `$JOURNAL_STREAM` to its `device:inode` — each pino line gets the prefix of its level: a warning shows as
 * priority 4 in `journalctl -p warning`, an error as 3. Anywhere else (a terminal, a pipe, a test) lines stay
 * plain JSON.
 */
import { fstatSync } from 'node:fs';

/** pino's numeric level → syslog priority (trace/debug 7, info 6, warn 4, error 3, fatal 2). */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** True when `fd` is the stream systemd named in `$JOURNAL_STREAM` (`device:inode`, decimal). */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1] as string) && st.ino === BigInt(m[2] as string);
  } catch {
    return false;
  }
}

const LEVEL = /^\{"level":(\d+)/;

/** The line with its `<N>` prefix (pino writes `{"level":N,…` first); a line of another shape is left as info. */
export function withPriority(line: string): string {
  const level = LEVEL.exec(line)?.[1];
  return `<${syslogPriority(level === undefined ? 30 : Number(level))}>${line}`;
}

interface LineSink {
  write(line: string): unknown;
  flush?(cb?: (err?: Error) => void): void;
}

/** A pino destination that prefixes each line with its priority and hands it to `sink` (flush passes through). */
export function journalDestination(sink: LineSink): Required<LineSink> {
  return {
    write(line: string) {
      sink.write(withPriority(line));
    },
    flush(cb?: (err?: Error) => void) {
      if (sink.flush) sink.flush(cb);
      else cb?.();
    },
  };
}
