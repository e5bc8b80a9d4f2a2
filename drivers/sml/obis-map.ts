/**
 * OBIS codes an SML (or IEC 62056-21) meter sends → canonical channels (cloud-contract/channels.ts), as data.
 * `unit` is the DLMS unit code the value must carry (27 W, 30 Wh, 33 A, 35 V, 44 Hz); `exponent` moves the
 * value into the channel's unit (Wh → kWh: −3). Power 16.7.0 and 36/56/76.7.0 are signed net power (import
 * positive), the same channels a Modbus meter's signed power fills.
 */
export interface SmlObisMapping {
  /** `C.D.E` of an electricity code `1-b:C.D.E` (any channel b, any F). */
  readonly code: string;
  readonly channel: string;
  readonly unit: number;
  readonly exponent: number;
}

const m = (code: string, channel: string, unit: number, exponent = 0): SmlObisMapping =>
  Object.freeze({ code, channel, unit, exponent });

export const WH = 30;
export const W = 27;

export const smlObisMap: readonly SmlObisMapping[] = Object.freeze([
  m('1.8.0', 'energy_import_kwh', WH, -3),
  m('1.8.1', 'energy_import_t1_kwh', WH, -3),
  m('1.8.2', 'energy_import_t2_kwh', WH, -3),
  m('2.8.0', 'energy_export_kwh', WH, -3),
  m('2.8.1', 'energy_export_t1_kwh', WH, -3),
  m('2.8.2', 'energy_export_t2_kwh', WH, -3),
  m('16.7.0', 'power_w', W),
  m('36.7.0', 'power_l1_w', W),
  m('56.7.0', 'power_l2_w', W),
  m('76.7.0', 'power_l3_w', W),
  m('32.7.0', 'voltage_l1_v', 35),
  m('52.7.0', 'voltage_l2_v', 35),
  m('72.7.0', 'voltage_l3_v', 35),
  m('31.7.0', 'current_l1_a', 33),
  m('51.7.0', 'current_l2_a', 33),
  m('71.7.0', 'current_l3_a', 33),
  m('14.7.0', 'frequency_hz', 44),
]);

const byCode = new Map(smlObisMap.map((e) => [e.code, e]));

/** The mapping of an OBIS code `A-B:C.D.E*F` (electricity, A = 1), if we keep it. */
export function smlObisMapping(obis: string): SmlObisMapping | undefined {
  const r = /^1-\d+:(\d+\.\d+\.\d+)(?:\*\d+)?$/.exec(obis);
  return r ? byCode.get(r[1] as string) : undefined;
}

/** Channels that only a meter unlocked with its PIN (or with the full data set enabled) sends. */
export const powerChannels: readonly string[] = Object.freeze([
  'power_w',
  'power_l1_w',
  'power_l2_w',
  'power_l3_w',
]);
