/**
 * Units as meters write them in text protocols (DSMR P1, IEC 62056-21) → the canonical unit of a channel and
 * the decimal exponent shift that converts the value (kW → W: +3) without float math. One table for both.
 */
export type CanonicalUnit = 'kWh' | 'W' | 'V' | 'A' | 'Hz' | 'kvarh' | 'm3';

export const wireUnits: Readonly<Record<string, { readonly unit: CanonicalUnit; readonly shift: number }>> =
  Object.freeze({
    kWh: { unit: 'kWh', shift: 0 },
    Wh: { unit: 'kWh', shift: -3 },
    MWh: { unit: 'kWh', shift: 3 },
    kW: { unit: 'W', shift: 3 },
    W: { unit: 'W', shift: 0 },
    V: { unit: 'V', shift: 0 },
    kV: { unit: 'V', shift: 3 },
    A: { unit: 'A', shift: 0 },
    Hz: { unit: 'Hz', shift: 0 },
    m3: { unit: 'm3', shift: 0 },
    kvarh: { unit: 'kvarh', shift: 0 },
    varh: { unit: 'kvarh', shift: -3 },
  });

/** The conversion of `unit`, matched exactly or else ignoring case (`kwh` from some IEC meters). */
export function wireUnit(unit: string): (typeof wireUnits)[string] | undefined {
  return (
    wireUnits[unit] ??
    wireUnits[Object.keys(wireUnits).find((k) => k.toLowerCase() === unit.toLowerCase()) ?? '']
  );
}
