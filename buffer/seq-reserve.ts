/**
 * The seq reservation: a tiny file inside the store's directory holding a bound below which every seq ever
 * used lies. Written (atomically, synced) before seqs beyond the previous bound are used — once per
 * `RESERVE_STEP` samples — so that even a store that had to be set aside after corruption tells the fresh
 * one where to continue, and seqs are never reused.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

export const RESERVE_FILE = 'SEQ-RESERVE';

/** The reserved bound in `dir`, or 0 when there is none or it is unreadable. */
export async function readReserve(dir: string): Promise<number> {
  try {
    const n = Number((await readFile(join(dir, RESERVE_FILE), 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

export async function writeReserve(dir: string, upTo: number): Promise<void> {
  const tmp = join(dir, `${RESERVE_FILE}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(`${upTo}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, RESERVE_FILE));
  // The rename itself is durable only once the directory is synced.
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
