/**
 * A real small file system for disk-full tests: a tmpfs mounted under a temp dir (we run as root here and in
 * CI), and a filler that takes every free byte, the way runaway logs do.
 */
import { execFile } from 'node:child_process';
import { mkdir, open, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir, type Teardown } from '../harness/tmp.js';

const run = promisify(execFile);

/** Mounts a tmpfs of `size` (e.g. `16m`) and returns its directory; unmounted at teardown. */
export async function smallDisk(t: Teardown, size = '16m'): Promise<string> {
  const dir = join(await tempDir(t, 'meterlink-enospc-'), 'mnt');
  await mkdir(dir);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  } catch (err) {
    throw new Error(
      `the ENOSPC test needs to mount a small tmpfs (as root, or with CAP_SYS_ADMIN): ${(err as Error).message}`,
    );
  }
  t.teardown(() => run('umount', ['-l', dir]));
  return dir;
}

/** Writes `file` until the file system is full, or until it holds `limit` bytes. */
export async function fillUp(file: string, limit = Infinity): Promise<void> {
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let written = 0;
  try {
    while (written < limit) {
      const n = Math.min(chunk.length, limit - written);
      await fh.write(chunk, 0, n);
      written += n;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Free bytes of the file system holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}
