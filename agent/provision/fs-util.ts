/**
 * File writes for provisioning: atomic (temp file in the same directory, fsync, rename), with a mode, and
 * handed to the service user when we run as root. A power cut mid-write leaves the old file or the new one,
 * never half of either.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

export interface WriteOptions {
  /** File mode (default 0644). */
  mode?: number;
  /** chown to this owner after writing (only meaningful as root). */
  owner?: Owner | undefined;
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: WriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const mode = opts.mode ?? 0o644;
  // 'wx' + mode at creation: a key file is never readable by others, not even for a moment.
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // the umask may have removed bits we asked for
    if (opts.owner) await fh.chown(opts.owner.uid, opts.owner.gid);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
}

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The uid/gid of a local user from the passwd file (Node has no getpwnam), or undefined when there is no
 * such user.
 */
export async function lookupUser(name: string, passwdFile = '/etc/passwd'): Promise<Owner | undefined> {
  const text = await readIfExists(passwdFile);
  if (text === undefined) return undefined;
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) {
      const uid = Number(f[2]);
      const gid = Number(f[3]);
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
    }
  }
  return undefined;
}

/** Who should own the box's secrets: the service user when we run as root and it exists, else nobody. */
export async function serviceOwner(
  user: string,
  opts: { passwdFile?: string; isRoot?: boolean } = {},
): Promise<Owner | undefined> {
  const isRoot = opts.isRoot ?? process.getuid?.() === 0;
  if (!isRoot) return undefined;
  return lookupUser(user, opts.passwdFile);
}
