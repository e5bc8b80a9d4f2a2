/**
 * A kernel pseudo-terminal pair made by socat: two linked device paths, bytes written to one come out of
 * the other, exactly like the two ends of an RS-485 adapter cable. `unplug()` kills socat (both ends
 * vanish, like pulling the USB adapter) and `replug()` brings the same paths back.
 */
import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnLogged, type Spawned } from './process.js';
import { tempDir, type Teardown } from './tmp.js';
import { GiveUp, waitFor } from './wait.js';

export interface PtyPair {
  /** Path of end A (a symlink to /dev/pts/N), e.g. for the meter simulator. */
  readonly a: string;
  /** Path of end B, e.g. for the driver under test. */
  readonly b: string;
  /** Kills socat; both paths disappear. */
  unplug(): Promise<void>;
  /** Starts socat again on the same two paths and waits until they exist. */
  replug(): Promise<void>;
  /** Stops socat for good (also done on teardown). */
  stop(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function startPtyPair(t: Teardown, opts: { dir?: string } = {}): Promise<PtyPair> {
  const dir = opts.dir ?? (await tempDir(t, 'meterlink-pty-'));
  const a = join(dir, 'ttyA');
  const b = join(dir, 'ttyB');
  let proc: Spawned | undefined;

  const start = async () => {
    const p = spawnLogged('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`]);
    proc = p;
    await waitFor(
      async () => {
        if (p.child.exitCode !== null)
          throw new GiveUp(`socat exited: ${p.output() || 'is socat installed?'}`);
        return (await exists(a)) && (await exists(b));
      },
      { what: `socat pty links ${a} and ${b}`, timeout: 10_000, interval: 10 },
    );
  };
  const unplug = async () => {
    await proc?.kill('SIGKILL');
    proc = undefined;
    // socat removes its links on a clean exit only; after SIGKILL the dangling links stay, as a stale
    // /dev/ttyUSB0 would not, so remove them to make "unplugged" look like it does on a real box.
    await Promise.all([rm(a, { force: true }), rm(b, { force: true })]);
  };
  await start();
  t.teardown(unplug);
  return { a, b, unplug, replug: start, stop: unplug };
}
