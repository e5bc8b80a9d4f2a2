/**
 * The channel registry: every canonical channel a meter can feed, with its unit, its OBIS code where one
 * exists (IEC 62056-61), and a small numeric id used on the wire. Shared by drivers (which map registers and
 * OBIS codes to these names) and by the cloud (which maps ids back to names).
 *
 * Contract v1 rules: an id is never reused or renumbered; new channels are appended with new ids; names and
 * units never change meaning. Energy channels are the meter's cumulative counters, never deltas.
 */

export type Unit = 'V' | 'A' | 'W' | 'var' | 'VA' | 'Hz' | 'kWh' | 'kvarh' | 'm3' | '1' | 'count';

/** `counter`: cumulative register that only rises (resets are events); `gauge`: an instantaneous value. */
export type ChannelKind = 'counter' | 'gauge';

export interface ChannelDef {
  readonly id: number;
  readonly name: string;
  readonly unit: Unit;
  readonly kind: ChannelKind;
  /** OBIS code, `A-B:C.D.E`; B (channel) is 0 for electricity, n for M-Bus devices (written `n`). */
  readonly obis?: string;
  readonly description: string;
}

const defs: readonly ChannelDef[] = [
  { id: 1, name: 'voltage_l1_v', unit: 'V', kind: 'gauge', obis: '1-0:32.7.0', description: 'Voltage L1–N' },
  { id: 2, name: 'voltage_l2_v', unit: 'V', kind: 'gauge', obis: '1-0:52.7.0', description: 'Voltage L2–N' },
  { id: 3, name: 'voltage_l3_v', unit: 'V', kind: 'gauge', obis: '1-0:72.7.0', description: 'Voltage L3–N' },
  { id: 4, name: 'current_l1_a', unit: 'A', kind: 'gauge', obis: '1-0:31.7.0', description: 'Current L1' },
  { id: 5, name: 'current_l2_a', unit: 'A', kind: 'gauge', obis: '1-0:51.7.0', description: 'Current L2' },
  { id: 6, name: 'current_l3_a', unit: 'A', kind: 'gauge', obis: '1-0:71.7.0', description: 'Current L3' },
  {
    id: 7,
    name: 'power_l1_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:36.7.0',
    description: 'Active power L1, import positive',
  },
  {
    id: 8,
    name: 'power_l2_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:56.7.0',
    description: 'Active power L2, import positive',
  },
  {
    id: 9,
    name: 'power_l3_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:76.7.0',
    description: 'Active power L3, import positive',
  },
  {
    id: 10,
    name: 'power_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:16.7.0',
    description: 'Total active power, import positive',
  },
  {
    id: 11,
    name: 'power_factor',
    unit: '1',
    kind: 'gauge',
    obis: '1-0:13.7.0',
    description: 'Total power factor',
  },
  {
    id: 12,
    name: 'frequency_hz',
    unit: 'Hz',
    kind: 'gauge',
    obis: '1-0:14.7.0',
    description: 'Grid frequency',
  },
  {
    id: 13,
    name: 'energy_import_kwh',
    unit: 'kWh',
    kind: 'counter',
    obis: '1-0:1.8.0',
    description: 'Active energy imported (delivered to the client), total',
  },
  {
    id: 14,
    name: 'energy_export_kwh',
    unit: 'kWh',
    kind: 'counter',
    obis: '1-0:2.8.0',
    description: 'Active energy exported (returned by the client), total',
  },
  {
    id: 15,
    name: 'energy_total_kwh',
    unit: 'kWh',
    kind: 'counter',
    obis: '1-0:15.8.0',
    description: 'Active energy, import + export (absolute sum)',
  },
  {
    id: 16,
    name: 'energy_import_t1_kwh',
    unit: 'kWh',
    kind: 'counter',
    obis: '1-0:1.8.1',
    description: 'Active energy imported, tariff 1',
  },
  {
    id: 17,
    name: 'energy_import_t2_kwh',
    unit: 'kWh',
    kind: 'counter',
    obis: '1-0:1.8.2',
    description: 'Active energy imported, tariff 2',
  },
  {
    id: 18,
    name: 'energy_export_t1_kwh',
    unit: 'kWh',
    kind: 'counter',
    obis: '1-0:2.8.1',
    description: 'Active energy exported, tariff 1',
  },
  {
    id: 19,
    name: 'energy_export_t2_kwh',
    unit: 'kWh',
    kind: 'counter',
    obis: '1-0:2.8.2',
    description: 'Active energy exported, tariff 2',
  },
  {
    id: 20,
    name: 'gas_m3',
    unit: 'm3',
    kind: 'counter',
    obis: '0-n:24.2.1',
    description: 'Gas volume delivered (M-Bus gas meter)',
  },
  {
    id: 21,
    name: 'power_import_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:1.7.0',
    description: 'Active power delivered to the client (import)',
  },
  {
    id: 22,
    name: 'power_export_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:2.7.0',
    description: 'Active power returned by the client (export)',
  },
  {
    id: 23,
    name: 'power_import_l1_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:21.7.0',
    description: 'Active power import L1',
  },
  {
    id: 24,
    name: 'power_import_l2_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:41.7.0',
    description: 'Active power import L2',
  },
  {
    id: 25,
    name: 'power_import_l3_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:61.7.0',
    description: 'Active power import L3',
  },
  {
    id: 26,
    name: 'power_export_l1_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:22.7.0',
    description: 'Active power export L1',
  },
  {
    id: 27,
    name: 'power_export_l2_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:42.7.0',
    description: 'Active power export L2',
  },
  {
    id: 28,
    name: 'power_export_l3_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:62.7.0',
    description: 'Active power export L3',
  },
  {
    id: 29,
    name: 'reactive_power_var',
    unit: 'var',
    kind: 'gauge',
    description: 'Total reactive power (signed)',
  },
  {
    id: 30,
    name: 'apparent_power_va',
    unit: 'VA',
    kind: 'gauge',
    obis: '1-0:9.7.0',
    description: 'Total apparent power',
  },
  {
    id: 31,
    name: 'energy_reactive_import_kvarh',
    unit: 'kvarh',
    kind: 'counter',
    obis: '1-0:3.8.0',
    description: 'Reactive energy import',
  },
  {
    id: 32,
    name: 'energy_reactive_export_kvarh',
    unit: 'kvarh',
    kind: 'counter',
    obis: '1-0:4.8.0',
    description: 'Reactive energy export',
  },
  {
    id: 33,
    name: 'power_factor_l1',
    unit: '1',
    kind: 'gauge',
    obis: '1-0:33.7.0',
    description: 'Power factor L1',
  },
  {
    id: 34,
    name: 'power_factor_l2',
    unit: '1',
    kind: 'gauge',
    obis: '1-0:53.7.0',
    description: 'Power factor L2',
  },
  {
    id: 35,
    name: 'power_factor_l3',
    unit: '1',
    kind: 'gauge',
    obis: '1-0:73.7.0',
    description: 'Power factor L3',
  },
  {
    id: 36,
    name: 'current_n_a',
    unit: 'A',
    kind: 'gauge',
    obis: '1-0:91.7.0',
    description: 'Neutral current',
  },
  { id: 37, name: 'voltage_l1_l2_v', unit: 'V', kind: 'gauge', description: 'Voltage L1–L2' },
  { id: 38, name: 'voltage_l2_l3_v', unit: 'V', kind: 'gauge', description: 'Voltage L2–L3' },
  { id: 39, name: 'voltage_l3_l1_v', unit: 'V', kind: 'gauge', description: 'Voltage L3–L1' },
  {
    id: 40,
    name: 'tariff',
    unit: '1',
    kind: 'gauge',
    obis: '0-0:96.14.0',
    description: 'Tariff indicator (DSMR)',
  },
  {
    id: 41,
    name: 'power_failures',
    unit: 'count',
    kind: 'counter',
    obis: '0-0:96.7.21',
    description: 'Number of power failures in any phase (DSMR)',
  },
  {
    id: 42,
    name: 'long_power_failures',
    unit: 'count',
    kind: 'counter',
    obis: '0-0:96.7.9',
    description: 'Number of long power failures (DSMR)',
  },
  {
    id: 43,
    name: 'voltage_sags_l1',
    unit: 'count',
    kind: 'counter',
    obis: '1-0:32.32.0',
    description: 'Voltage sags L1 (DSMR)',
  },
  {
    id: 44,
    name: 'voltage_sags_l2',
    unit: 'count',
    kind: 'counter',
    obis: '1-0:52.32.0',
    description: 'Voltage sags L2 (DSMR)',
  },
  {
    id: 45,
    name: 'voltage_sags_l3',
    unit: 'count',
    kind: 'counter',
    obis: '1-0:72.32.0',
    description: 'Voltage sags L3 (DSMR)',
  },
  {
    id: 46,
    name: 'voltage_swells_l1',
    unit: 'count',
    kind: 'counter',
    obis: '1-0:32.36.0',
    description: 'Voltage swells L1 (DSMR)',
  },
  {
    id: 47,
    name: 'voltage_swells_l2',
    unit: 'count',
    kind: 'counter',
    obis: '1-0:52.36.0',
    description: 'Voltage swells L2 (DSMR)',
  },
  {
    id: 48,
    name: 'voltage_swells_l3',
    unit: 'count',
    kind: 'counter',
    obis: '1-0:72.36.0',
    description: 'Voltage swells L3 (DSMR)',
  },
  {
    id: 49,
    name: 'power_max_demand_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:1.6.0',
    description: 'Maximum demand, current month (e-MUCS, Belgium)',
  },
  {
    id: 50,
    name: 'power_avg_demand_w',
    unit: 'W',
    kind: 'gauge',
    obis: '1-0:1.4.0',
    description: 'Current average demand, 15-minute window (e-MUCS, Belgium)',
  },
];

export const channels: readonly ChannelDef[] = Object.freeze(defs.map((d) => Object.freeze(d)));

const byName = new Map(channels.map((c) => [c.name, c]));
const byId = new Map(channels.map((c) => [c.id, c]));

export type ChannelName = string;

export function channelByName(name: string): ChannelDef | undefined {
  return byName.get(name);
}

export function channelById(id: number): ChannelDef | undefined {
  return byId.get(id);
}

export function isChannelName(name: string): boolean {
  return byName.has(name);
}
