/**
 * Eastron SDM630 (Modbus V2), three-phase DIN-rail meter.
 * Source: Eastron "SDM630 Modbus Smart Meter — Modbus Protocol Implementation V1.8" (input registers 3X,
 * IEEE 754 float32, high word first; documented as 30001 = wire address 0x0000).
 */
import type { ModbusProfile } from '../modbus/profile.js';

export const eastronSdm630: ModbusProfile = {
  name: 'eastron-sdm630',
  vendor: 'Eastron',
  model: 'SDM630',
  source: 'Eastron SDM630 Modbus Protocol Implementation V1.8, input register table (30001 ff.)',
  phases: 3,
  addressBase: 0,
  // "A maximum of 40 parameters (80 registers) may be requested in one query" (protocol document §3).
  maxRegisters: 80,
  maxGap: 40,
  defaults: { baud: 9600, parity: 'none' },
  registers: [
    { channel: 'voltage_l1_v', function: 'input', address: 0x0000, type: 'float32', unit: 'V' },
    { channel: 'voltage_l2_v', function: 'input', address: 0x0002, type: 'float32', unit: 'V' },
    { channel: 'voltage_l3_v', function: 'input', address: 0x0004, type: 'float32', unit: 'V' },
    { channel: 'current_l1_a', function: 'input', address: 0x0006, type: 'float32', unit: 'A' },
    { channel: 'current_l2_a', function: 'input', address: 0x0008, type: 'float32', unit: 'A' },
    { channel: 'current_l3_a', function: 'input', address: 0x000a, type: 'float32', unit: 'A' },
    { channel: 'power_l1_w', function: 'input', address: 0x000c, type: 'float32', unit: 'W' },
    { channel: 'power_l2_w', function: 'input', address: 0x000e, type: 'float32', unit: 'W' },
    { channel: 'power_l3_w', function: 'input', address: 0x0010, type: 'float32', unit: 'W' },
    { channel: 'power_factor_l1', function: 'input', address: 0x001e, type: 'float32', unit: '1' },
    { channel: 'power_factor_l2', function: 'input', address: 0x0020, type: 'float32', unit: '1' },
    { channel: 'power_factor_l3', function: 'input', address: 0x0022, type: 'float32', unit: '1' },
    { channel: 'power_w', function: 'input', address: 0x0034, type: 'float32', unit: 'W' },
    { channel: 'apparent_power_va', function: 'input', address: 0x0038, type: 'float32', unit: 'VA' },
    { channel: 'reactive_power_var', function: 'input', address: 0x003c, type: 'float32', unit: 'var' },
    { channel: 'power_factor', function: 'input', address: 0x003e, type: 'float32', unit: '1' },
    { channel: 'frequency_hz', function: 'input', address: 0x0046, type: 'float32', unit: 'Hz' },
    { channel: 'energy_import_kwh', function: 'input', address: 0x0048, type: 'float32', unit: 'kWh' },
    { channel: 'energy_export_kwh', function: 'input', address: 0x004a, type: 'float32', unit: 'kWh' },
    {
      channel: 'energy_reactive_import_kvarh',
      function: 'input',
      address: 0x004c,
      type: 'float32',
      unit: 'kvarh',
    },
    {
      channel: 'energy_reactive_export_kvarh',
      function: 'input',
      address: 0x004e,
      type: 'float32',
      unit: 'kvarh',
    },
    { channel: 'voltage_l1_l2_v', function: 'input', address: 0x00c8, type: 'float32', unit: 'V' },
    { channel: 'voltage_l2_l3_v', function: 'input', address: 0x00ca, type: 'float32', unit: 'V' },
    { channel: 'voltage_l3_l1_v', function: 'input', address: 0x00cc, type: 'float32', unit: 'V' },
    { channel: 'current_n_a', function: 'input', address: 0x00e0, type: 'float32', unit: 'A' },
    { channel: 'energy_total_kwh', function: 'input', address: 0x0156, type: 'float32', unit: 'kWh' },
  ],
};
