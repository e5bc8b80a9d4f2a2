/**
 * Option parsing and the run-until-stopped wait the `meterlink simulate <mode>` commands share.
 */
import type { Command } from 'commander';
import { CliError, ExitCode } from '../cli.js';

/** A whole number ≥ `min` (`what`: "telegrams" reads "expected a whole number of telegrams, 1 or more"). */
export function wholeOption(value: string | undefined, flag: string, min = 1, what = ''): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min)
    throw new CliError(
      `${flag} ${value}: expected a whole number${what ? ` of ${what}` : ''}, ${min} or more`,
      ExitCode.usage,
    );
  return n;
}

/** `250ms`, `1s`, `5m` or a bare number of ms. */
export function durationOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new CliError(`${flag} ${value}: expected a duration like 250ms, 1s or 5m`, ExitCode.usage);
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms'];
  const ms = Math.round(Number(m[1]) * scale);
  if (ms < 1) throw new CliError(`${flag} ${value}: must be at least 1ms`, ExitCode.usage);
  return ms;
}

/** Resolves on SIGINT/SIGTERM, or when `done` resolves (a `--count` reached). */
export function untilStopped(done?: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    void done?.then(stop);
  });
}

/** The options every frame-pushing simulator has, worded for its frames (`files`, `data messages`). */
export function frameOptions(cmd: Command, frames: string, seedOf: string): Command {
  return cmd
    .requiredOption('--port <path>', 'serial device to use (one end of a pty pair, or a serial adapter)')
    .option('--count <n>', `stop after this many ${frames}`)
    .option('--seed <n>', `seed of the ${seedOf}`, '1')
    .option('--truncate-every <n>', `every Nth of the ${frames} cut off before its end`)
    .option('--noise-every <n>', `random bytes before every Nth of the ${frames}`)
    .option('--quiet', `no line per ${frames.replace(/s$/, '')}`);
}

/** The values of the `frameOptions` flags, checked. */
export function frameValues(o: {
  count?: string | undefined;
  seed: string;
  truncateEvery?: string | undefined;
  noiseEvery?: string | undefined;
}): {
  count: number | undefined;
  seed: number;
  truncateEvery: number | undefined;
  noiseEvery: number | undefined;
} {
  return {
    count: wholeOption(o.count, '--count'),
    seed: wholeOption(o.seed, '--seed', 0) as number,
    truncateEvery: wholeOption(o.truncateEvery, '--truncate-every'),
    noiseEvery: wholeOption(o.noiseEvery, '--noise-every'),
  };
}
