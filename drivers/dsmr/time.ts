/**
 * DSMR timestamps: `YYMMDDhhmmssX`, local time of the meter, X = `S` (summer, CEST, UTC+2) or `W` (winter,
 * CET, UTC+1). All DSMR/ESMR countries (NL, BE, LU) are on Central European Time. DSMR 2.2/3 gas capture
 * times have no X; for those the EU summer-time rule decides (last Sunday of March / of October, 01:00 UTC),
 * and the repeated hour in October is read as summer time.
 */

const HOUR = 3_600_000;

function lastSundayUtc(year: number, month: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0));
  return Date.UTC(year, month, lastDay.getUTCDate() - lastDay.getUTCDay(), 1);
}

/** Whether EU summer time is in force at the UTC instant `ms`. */
export function isEuSummerTime(ms: number): boolean {
  const year = new Date(ms).getUTCFullYear();
  return ms >= lastSundayUtc(year, 2) && ms < lastSundayUtc(year, 9);
}

const pattern = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([SW]?)$/;

/** Parses a DSMR timestamp to ms since the epoch; `undefined` when it is not one. */
export function parseDsmrTime(text: string): number | undefined {
  const m = pattern.exec(text);
  if (!m) return undefined;
  const [yy, mo, dd, hh, mi, ss] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 || ss > 59) return undefined;
  const local = Date.UTC(2000 + yy, mo - 1, dd, hh, mi, ss);
  if (m[7] === 'S') return local - 2 * HOUR;
  if (m[7] === 'W') return local - HOUR;
  const summer = local - 2 * HOUR;
  return isEuSummerTime(summer) ? summer : local - HOUR;
}

/** Formats ms since the epoch the way a meter writes it (with the S/W suffix). */
export function formatDsmrTime(ms: number, withSuffix = true): string {
  const summer = isEuSummerTime(ms);
  const d = new Date(ms + (summer ? 2 : 1) * HOUR);
  const p = (n: number) => String(n).padStart(2, '0');
  const body =
    p(d.getUTCFullYear() % 100) +
    p(d.getUTCMonth() + 1) +
    p(d.getUTCDate()) +
    p(d.getUTCHours()) +
    p(d.getUTCMinutes()) +
    p(d.getUTCSeconds());
  return withSuffix ? body + (summer ? 'S' : 'W') : body;
}
