/**
 * Finder 7M.38 (and 7M.24 for the single-phase values), multifunction DIN-rail energy meter with Modbus RTU.
 * Source: Finder "Modbus Protocol Guide RS485 — 7M.24 / 7M.38, v2 (2021-06-30)", measurement table, float
 * section (input registers 3X, IEEE 754 float32 big-endian, 0-based wire addresses 2480 ff.). The float
 * energy counters E1–E4 (import/export active, import/export reactive) are given in Wh/varh.
 */
import type { ModbusProfile } from '../modbus/profile.js';

export const finder7m38: ModbusProfile = {
  name: 'finder-7m38',
  vendor: 'Finder',
  model: '7M.38',
  source: 'Finder Modbus Protocol Guide RS485 7M.24/7M.38 v2 (2021-06-30), float measurement table 2480 ff.',
  phases: 3,
  addressBase: 0,
  maxRegisters: 125,
  maxGap: 20,
  defaults: { baud: 19200, parity: 'none' },
  registers: [
    { channel: 'power_w', function: 'input', address: 2490, type: 'float32', unit: 'W' },
    { channel: 'reactive_power_var', function: 'input', address: 2492, type: 'float32', unit: 'var' },
    { channel: 'apparent_power_va', function: 'input', address: 2494, type: 'float32', unit: 'VA' },
    { channel: 'power_factor', function: 'input', address: 2496, type: 'float32', unit: '1' },
    { channel: 'frequency_hz', function: 'input', address: 2498, type: 'float32', unit: 'Hz' },
    { channel: 'voltage_l1_v', function: 'input', address: 2500, type: 'float32', unit: 'V' },
    { channel: 'voltage_l2_v', function: 'input', address: 2502, type: 'float32', unit: 'V' },
    { channel: 'voltage_l3_v', function: 'input', address: 2504, type: 'float32', unit: 'V' },
    { channel: 'voltage_l1_l2_v', function: 'input', address: 2508, type: 'float32', unit: 'V' },
    { channel: 'voltage_l2_l3_v', function: 'input', address: 2510, type: 'float32', unit: 'V' },
    { channel: 'voltage_l3_l1_v', function: 'input', address: 2512, type: 'float32', unit: 'V' },
    { channel: 'current_l1_a', function: 'input', address: 2516, type: 'float32', unit: 'A' },
    { channel: 'current_l2_a', function: 'input', address: 2518, type: 'float32', unit: 'A' },
    { channel: 'current_l3_a', function: 'input', address: 2520, type: 'float32', unit: 'A' },
    { channel: 'power_l1_w', function: 'input', address: 2530, type: 'float32', unit: 'W' },
    { channel: 'power_l2_w', function: 'input', address: 2532, type: 'float32', unit: 'W' },
    { channel: 'power_l3_w', function: 'input', address: 2534, type: 'float32', unit: 'W' },
    { channel: 'power_factor_l1', function: 'input', address: 2554, type: 'float32', unit: '1' },
    { channel: 'power_factor_l2', function: 'input', address: 2556, type: 'float32', unit: '1' },
    { channel: 'power_factor_l3', function: 'input', address: 2558, type: 'float32', unit: '1' },
    { channel: 'energy_import_kwh', function: 'input', address: 2760, type: 'float32', unit: 'Wh' },
    { channel: 'energy_export_kwh', function: 'input', address: 2762, type: 'float32', unit: 'Wh' },
    {
      channel: 'energy_reactive_import_kvarh',
      function: 'input',
      address: 2764,
      type: 'float32',
      unit: 'varh',
    },
    {
      channel: 'energy_reactive_export_kvarh',
      function: 'input',
      address: 2766,
      type: 'float32',
      unit: 'varh',
    },
  ],
};
