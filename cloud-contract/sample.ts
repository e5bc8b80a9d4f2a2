/**
 * A Sample: one read of one meter at one time. Produced by the agent from a driver's reading, stored by the
 * buffer, carried in batches. Values are kept exactly as the meter reported them (see `Value`).
 */

/**
 * A channel value exactly as reported: `mantissa × 10^exponent`, where the mantissa is
 * - `int`: an integer (safe integer range) — integer registers after their decimal scale, DSMR decimals
 *   (`012345.678*kWh` → mantissa 12345678, exponent −3);
 * - `f32`: an IEEE 754 binary32 value as read from the meter (exactly representable in float32);
 * - `f64`: an IEEE 754 binary64 value as read.
 * The exponent carries decimal scaling and unit conversion (kW→W: +3, Wh→kWh: −3) without touching the
 * mantissa, so the cloud can recover the meter's own value bit for bit.
 */
export interface Value {
  readonly type: 'int' | 'f32' | 'f64';
  readonly mantissa: number;
  readonly exponent: number;
}

/** The value as a JavaScript number (for display and for sinks that store doubles). */
export function valueToNumber(v: Value): number {
  if (v.exponent === 0) return v.mantissa;
  // Dividing by a power of ten is exact-er than multiplying by 10^-n (10^-n is not representable).
  return v.exponent > 0 ? v.mantissa * 10 ** v.exponent : v.mantissa / 10 ** -v.exponent;
}

export const intValue = (mantissa: number, exponent = 0): Value => ({ type: 'int', mantissa, exponent });
export const f32Value = (mantissa: number, exponent = 0): Value => ({
  type: 'f32',
  mantissa: Math.fround(mantissa),
  exponent,
});
export const f64Value = (mantissa: number, exponent = 0): Value => ({ type: 'f64', mantissa, exponent });

/** Quality flags, a bit set. Bits are contract v1: never renumbered. */
export const QualityFlag = {
  /** Some blocks/lines of this read failed; `missing` names the channels. */
  partial: 1 << 0,
  /** Taken before the system clock was synchronised; `ts` may be wrong. */
  clockUnsynced: 1 << 1,
  /** `ts` was corrected after the clock synchronised (from the monotonic clock). */
  clockCorrected: 1 << 2,
  /** The meter reported an error condition (exception, error register, sentinel value). */
  meterError: 1 << 3,
  /** A value was NaN/Inf or out of its plausible range and was left out (its channel is in `missing`). */
  outOfRange: 1 << 4,
  /** `ts` comes from the meter's own clock (DSMR 0-0:1.0.0), used while NTP was not synchronised. */
  meterClock: 1 << 5,
} as const;

export type QualityFlagName = keyof typeof QualityFlag;

export function flagNames(flags: number): QualityFlagName[] {
  return (Object.keys(QualityFlag) as QualityFlagName[]).filter((k) => (flags & QualityFlag[k]) !== 0);
}

/** A sample before the buffer has accepted it (no sequence number yet). */
export interface SampleInput {
  /** Meter id from the config (`meters[].id`). */
  readonly meter: string;
  /** Wall-clock time of the read, ms since the Unix epoch. */
  readonly ts: number;
  /** Canonical channel name → value. */
  readonly values: Readonly<Record<string, Value>>;
  /** `QualityFlag` bits. */
  readonly flags: number;
  /** Channels that a partial or out-of-range read could not deliver. */
  readonly missing?: readonly string[];
  /**
   * Device-local, never sent on the wire: set on samples taken while the clock was not synchronised, so the
   * agent can correct `ts` once it is. `monoMs` is CLOCK_MONOTONIC (ms) at capture; `boot` is the kernel
   * boot id (the monotonic clock only means something within one boot).
   */
  readonly clock?: { readonly monoMs: number; readonly boot: string };
}

/** A sample accepted by the buffer: it has its device-wide, strictly increasing sequence number. */
export interface Sample extends SampleInput {
  readonly seq: number;
}
