/**
 * The raw archive, read back. Firehose writes each accepted batch as one line (lake.ts `archiveLine`: the
 * batch rule envelope, newline-terminated) into GZIP objects under `raw/dt=<arrival date>/`. A line holds no
 * raw newline (JSON escapes it), so an object splits into its batches without any other framing; the COSE
 * bytes inside each are exactly what the device signed.
 */
import { gunzipSync } from 'node:zlib';

/** Arrival-date prefix of the archive objects of one UTC day (`yyyy-MM-dd`). */
export const archivePrefix = (date: string): string => `raw/dt=${date}/`;

/** One archive object (GZIP, as Firehose writes it, or already plain) → its envelope lines. */
export function archiveLines(object: Uint8Array): Buffer[] {
  const buf = Buffer.from(object.buffer, object.byteOffset, object.byteLength);
  const plain = buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf;
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = plain.indexOf(0x0a); i !== -1; i = plain.indexOf(0x0a, start)) {
    if (i > start) lines.push(plain.subarray(start, i));
    start = i + 1;
  }
  if (start < plain.length) lines.push(plain.subarray(start));
  return lines;
}

/** The UTC days from `from` to `to` inclusive (`yyyy-MM-dd`); throws on a malformed or reversed range. */
export function daysBetween(from: string, to: string): string[] {
  const re = /^\d{4}-\d{2}-\d{2}$/;
  const a = Date.parse(`${from}T00:00:00Z`);
  const b = Date.parse(`${to}T00:00:00Z`);
  if (!re.test(from) || !re.test(to) || Number.isNaN(a) || Number.isNaN(b))
    throw new RangeError(`dates must be yyyy-MM-dd (got ${from} .. ${to})`);
  if (b < a) throw new RangeError(`--to ${to} is before --from ${from}`);
  const days: string[] = [];
  for (let t = a; t <= b; t += 86_400_000) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}
