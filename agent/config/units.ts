/**
 * Durations and sizes the way people write them in a config file: `250ms`, `1s`, `5m`, `1h30m`, `7d`;
 * `512MiB`, `128KiB`, `5KB`, `1.5GB`, or a plain number of bytes. Binary units (KiB, MiB, GiB) are powers
 * of 1024, SI units (kB/KB, MB, GB) powers of 1000 — the way disk and IoT Core quotas are written.
 */

/** JSON Schema pattern for a duration: one or more `<number><unit>` parts, e.g. `1h30m`. */
export const durationPattern = '^(?:[0-9]+(?:\\.[0-9]+)?\\s?(?:ms|s|min|m|h|d))+$';
/** JSON Schema pattern for a size written as a string (a plain integer is also a size, in bytes). */
export const sizePattern = '^[0-9]+(?:\\.[0-9]+)?\\s?(?:B|kB|KB|KiB|MB|MiB|GB|GiB)$';

const durationUnits: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const sizeUnits: Readonly<Record<string, number>> = {
  B: 1,
  kB: 1000,
  KB: 1000,
  KiB: 1024,
  MB: 1000 ** 2,
  MiB: 1024 ** 2,
  GB: 1000 ** 3,
  GiB: 1024 ** 3,
};

/** Milliseconds in a duration string, or undefined when it is not one (`5`, `5 secs`, `-1s`). */
export function parseDuration(text: string): number | undefined {
  if (!new RegExp(durationPattern).test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)\s?(ms|s|min|m|h|d)/g)) {
    ms += Number(m[1]) * (durationUnits[m[2] as string] as number);
  }
  return Math.round(ms);
}

/** Bytes in a size (string with a unit, or a non-negative integer), or undefined when it is not one. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = new RegExp(sizePattern).exec(value) && /^([0-9]+(?:\.[0-9]+)?)\s?([A-Za-z]+)$/.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (sizeUnits[m[2] as string] as number));
}

/** The shortest human form of a duration: `1h30m`, `250ms`, `1s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      parts.push(`${n}${unit}`);
      rest -= n * size;
    }
  }
  return parts.join('');
}

/** A size in the largest binary unit that divides it (`512MiB`), else in bytes (`5000B`). */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
