/**
 * DSMR / ESMR OBIS codes → canonical channels, as data. One entry per code a P1 port sends that we keep;
 * codes not listed here are parsed (so the telegram is checked) but not mapped.
 *
 * Sources: DSMR 2.2 P1 §5, DSMR 4.2.2 P1 §6.12, DSMR 5.0.2 P1 §6.12 (Netbeheer Nederland), e-MUCS H 1.7
 * (Fluvius, Belgium: demand registers 1.4.0/1.6.0, gas as 24.2.3), Luxembourg Smarty P1 (total and reactive
 * energy registers 1.8.0/2.8.0/3.8.0/4.8.0).
 */

/** Where the value sits in the line's `(…)` groups and whether a capture time comes with it. */
export interface ObisMapping {
  /** OBIS code `A-B:C.D.E`; for M-Bus devices B is written `n` (any channel 1–4). */
  readonly obis: string;
  /** Canonical channel (cloud-contract/channels.ts). */
  readonly channel: string;
  /** Index of the value group; negative counts from the end (`-1`: the last group). */
  readonly valueGroup: number;
  /** Index of a group holding the value's own capture time (`YYMMDDhhmmssX`), if any. */
  readonly timeGroup?: number;
  /** M-Bus device type (0-n:24.1.0) this mapping is for: 3 = gas. */
  readonly mbusDeviceType?: number;
}

const m = (obis: string, channel: string, extra: Partial<ObisMapping> = {}): ObisMapping =>
  Object.freeze({ obis, channel, valueGroup: 0, ...extra });

export const dsmrObisMap: readonly ObisMapping[] = Object.freeze([
  // Energy registers (cumulative). 1.8.0/2.8.0 are sent by Smarty; DSMR NL/BE send only the tariffs.
  m('1-0:1.8.0', 'energy_import_kwh'),
  m('1-0:2.8.0', 'energy_export_kwh'),
  m('1-0:1.8.1', 'energy_import_t1_kwh'),
  m('1-0:1.8.2', 'energy_import_t2_kwh'),
  m('1-0:2.8.1', 'energy_export_t1_kwh'),
  m('1-0:2.8.2', 'energy_export_t2_kwh'),
  m('1-0:3.8.0', 'energy_reactive_import_kvarh'),
  m('1-0:4.8.0', 'energy_reactive_export_kvarh'),
  m('0-0:96.14.0', 'tariff'),
  // Instantaneous power, kW on the wire, W in our channels (exponent +3).
  m('1-0:1.7.0', 'power_import_w'),
  m('1-0:2.7.0', 'power_export_w'),
  m('1-0:21.7.0', 'power_import_l1_w'),
  m('1-0:41.7.0', 'power_import_l2_w'),
  m('1-0:61.7.0', 'power_import_l3_w'),
  m('1-0:22.7.0', 'power_export_l1_w'),
  m('1-0:42.7.0', 'power_export_l2_w'),
  m('1-0:62.7.0', 'power_export_l3_w'),
  m('1-0:32.7.0', 'voltage_l1_v'),
  m('1-0:52.7.0', 'voltage_l2_v'),
  m('1-0:72.7.0', 'voltage_l3_v'),
  m('1-0:31.7.0', 'current_l1_a'),
  m('1-0:51.7.0', 'current_l2_a'),
  m('1-0:71.7.0', 'current_l3_a'),
  // Event counters.
  m('0-0:96.7.21', 'power_failures'),
  m('0-0:96.7.9', 'long_power_failures'),
  m('1-0:32.32.0', 'voltage_sags_l1'),
  m('1-0:52.32.0', 'voltage_sags_l2'),
  m('1-0:72.32.0', 'voltage_sags_l3'),
  m('1-0:32.36.0', 'voltage_swells_l1'),
  m('1-0:52.36.0', 'voltage_swells_l2'),
  m('1-0:72.36.0', 'voltage_swells_l3'),
  // e-MUCS (Belgium) capacity tariff registers: 1.6.0 carries the time of the monthly peak.
  m('1-0:1.4.0', 'power_avg_demand_w'),
  m('1-0:1.6.0', 'power_max_demand_w', { valueGroup: 1, timeGroup: 0 }),
  // Gas on an M-Bus channel, with the time the gas meter captured it. DSMR 4/5 and Smarty: 24.2.1;
  // e-MUCS: 24.2.3 (not temperature-corrected); DSMR 2.2/3: 24.3.0 with the value on a continuation line.
  m('0-n:24.2.1', 'gas_m3', { valueGroup: 1, timeGroup: 0, mbusDeviceType: 3 }),
  m('0-n:24.2.3', 'gas_m3', { valueGroup: 1, timeGroup: 0, mbusDeviceType: 3 }),
  m('0-n:24.3.0', 'gas_m3', { valueGroup: -1, timeGroup: 0, mbusDeviceType: 3 }),
]);

/** Lookup by code; M-Bus codes match any channel 1–4 through their `0-n:` form. */
export function obisMapping(obis: string): ObisMapping | undefined {
  return byCode.get(obis) ?? byCode.get(obis.replace(/^0-[1-4]:/, '0-n:'));
}

const byCode = new Map(dsmrObisMap.map((e) => [e.obis, e]));

/** Equipment identifier of the electricity meter, and the protocol version lines. */
export const OBIS_EQUIPMENT_ID = '0-0:96.1.1';
export const OBIS_TIMESTAMP = '0-0:1.0.0';
/** DSMR 4/5 and Smarty: `1-3:0.2.8(50)`; e-MUCS adds `0-0:96.1.4(50217)`. */
export const OBIS_VERSION = '1-3:0.2.8';
export const OBIS_EMUCS_VERSION = '0-0:96.1.4';
