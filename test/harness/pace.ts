/**
 * How much slower than native this machine runs the code under test: `METERLINK_TEST_TIME_SCALE` (a number
 * ≥ 1, default 1). scripts/test-arm64.sh sets it for linux-arm64 under qemu-user, where node runs several times
 * slower (single-threaded V8, translated code). Tests whose deadlines or chaos moments are sized for native
 * speed multiply them with `scaled()`: the same test on x64 (factor 1) is exactly as strict as before, and
 * under emulation a slow-but-advancing run still passes while a stalled one still fails, only later.
 *
 * Scale deadlines (how long something may take) and moments (how far into a run to strike), never a wait for
 * a condition that can be awaited: those use `waitFor` (with `progress` for work that moves in steps).
 */
export const TIME_SCALE_ENV = 'METERLINK_TEST_TIME_SCALE';

/** Parses the factor; throws on anything but a finite number ≥ 1 (a typo must not make tests stricter). */
export function parseTimeScale(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 1;
  const f = Number(raw);
  if (!Number.isFinite(f) || f < 1) throw new Error(`${TIME_SCALE_ENV}=${raw}: must be a number >= 1`);
  return f;
}

/** The factor for this process (its environment is inherited by the tests' children). */
export const TIME_SCALE = parseTimeScale(process.env[TIME_SCALE_ENV]);

/** `ms` stretched by the machine's time scale (unchanged at the default 1). */
export function scaled(ms: number): number {
  return Math.round(ms * TIME_SCALE);
}
