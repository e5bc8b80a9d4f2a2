/**
 * A kernel pseudo-terminal pair made by socat: two linked device paths, bytes written to one come out of
 * the other, exactly like the two ends of an RS-485 adapter cable. `unplug()` kills socat (both ends
 * vanish, like pulling the USB adapter) and `replug()` brings the same paths back.
 */
import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DemoError } from './errors.js';
import { spawnKept, StopWaiting, waitUntil, type KeptProcess } from './process.js';

export interface PtyPair {
  /** Path of end A (a symlink to /dev/pts/N), e.g. for the meter simulator. */
  readonly a: string;
  /** Path of end B, e.g. for the driver under test. */
  readonly b: string;
  /** Kills socat; both paths disappear. */
  unplug(): Promise<void>;
  /** Starts socat again on the same two paths and waits until they exist. */
  replug(): Promise<void>;
  /** Stops socat for good. */
  stop(): Promise<void>;
}

export interface PtyOptions {
  /** Directory the two links are made in (`<dir>/<name>A`, `<dir>/<name>B`). */
  dir: string;
  /** Base name of the links (default `tty`). */
  name?: string;
  /** The socat executable (default: `socat` from PATH). */
  bin?: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function startSocatPty(opts: PtyOptions): Promise<PtyPair> {
  const name = opts.name ?? 'tty';
  const a = join(opts.dir, `${name}A`);
  const b = join(opts.dir, `${name}B`);
  const bin = opts.bin ?? 'socat';
  let proc: KeptProcess | undefined;

  const start = async () => {
    const p = spawnKept(bin, [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`]);
    proc = p;
    try {
      await waitUntil(
        async () => {
          if (!p.running)
            throw new StopWaiting(`socat exited: ${p.output().trim() || 'is socat installed?'}`);
          return (await exists(a)) && (await exists(b));
        },
        { what: `socat pty links ${a} and ${b}`, timeout: 10_000, interval: 10 },
      );
    } catch (err) {
      await p.kill('SIGKILL');
      throw new DemoError('START_FAILED', (err as Error).message, { cause: err, context: { a, b } });
    }
  };
  const unplug = async () => {
    await proc?.kill('SIGKILL');
    proc = undefined;
    // socat removes its links on a clean exit only; after SIGKILL the dangling links stay, as a stale
    // /dev/ttyUSB0 would not, so remove them to make "unplugged" look like it does on a real box.
    await Promise.all([rm(a, { force: true }), rm(b, { force: true })]);
  };
  await start();
  return { a, b, unplug, replug: start, stop: unplug };
}
