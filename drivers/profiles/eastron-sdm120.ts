/**
 * Eastron SDM120-Modbus, single-phase DIN-rail meter (1 module).
 * Source: Eastron "SDM120-Modbus Smart Meter — Modbus Protocol Implementation V2.1" (input registers 3X,
 * IEEE 754 float32, high word first; 30001 = wire address 0x0000).
 */
import type { ModbusProfile } from '../modbus/profile.js';

export const eastronSdm120: ModbusProfile = {
  name: 'eastron-sdm120',
  vendor: 'Eastron',
  model: 'SDM120-Modbus',
  source: 'Eastron SDM120-Modbus Protocol Implementation V2.1, input register table (30001 ff.)',
  phases: 1,
  addressBase: 0,
  maxRegisters: 80,
  maxGap: 40,
  // Field reports: the SDM120 drops a request that follows its previous answer too closely.
  pauseMs: 20,
  defaults: { baud: 2400, parity: 'none' },
  registers: [
    { channel: 'voltage_l1_v', function: 'input', address: 0x0000, type: 'float32', unit: 'V' },
    { channel: 'current_l1_a', function: 'input', address: 0x0006, type: 'float32', unit: 'A' },
    { channel: 'power_w', function: 'input', address: 0x000c, type: 'float32', unit: 'W' },
    { channel: 'apparent_power_va', function: 'input', address: 0x0012, type: 'float32', unit: 'VA' },
    { channel: 'reactive_power_var', function: 'input', address: 0x0018, type: 'float32', unit: 'var' },
    { channel: 'power_factor', function: 'input', address: 0x001e, type: 'float32', unit: '1' },
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
    { channel: 'energy_total_kwh', function: 'input', address: 0x0156, type: 'float32', unit: 'kWh' },
  ],
};
