/**
 * `readCapped(file, max)`: a file's bytes, or how large it is when that is more than `max`, without ever holding
 * more than `max + 1` bytes. A regular file is measured with fstat before anything is read; anything else (a
 * pipe, /dev/stdin, /dev/zero) is read up to one byte past the limit. Inputs people hand to the CLI can be
 * anything, and reading one whole before rejecting it costs the box its memory.
 */
import { open } from 'node:fs/promises';

/** The bytes (at most `max`), or the size seen (more than `max`: the file's size, or `max + 1` for a stream). */
export async function readCapped(file: string, max: number): Promise<Buffer | number> {
  const fh = await open(file, 'r');
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (st.isFile() && st.size > max) return st.size;
    const buf = Buffer.alloc(max + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got > max) return got;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}
