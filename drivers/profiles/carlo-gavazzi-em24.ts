/**
 * Carlo Gavazzi EM24-DIN, three-phase DIN-rail meter.
 * Source: Carlo Gavazzi "EM24-DIN Communication Protocol, Version 3 Revision 1", instantaneous variables and
 * meters tables. INT32 values are sent least significant word
 * first (CDAB); physical addresses are 0-based (Modicon 300001 = 0000h).
 */
import type { ModbusProfile } from '../modbus/profile.js';
import { carloGavazziExportRegisters, carloGavazziSharedRegisters } from './parts/carlo-gavazzi.js';

export const carloGavazziEm24: ModbusProfile = {
  name: 'carlo-gavazzi-em24',
  vendor: 'Carlo Gavazzi',
  model: 'EM24-DIN',
  source: 'Carlo Gavazzi EM24-DIN Communication Protocol v3r1, tables 2.x (instantaneous variables, meters)',
  phases: 3,
  addressBase: 0,
  // The EM24 answers at most 50 words per request (protocol document, function 04h); the kWh(-) and kvarh(-)
  // totals sit after the tariff and partial counters, at 005Ch.
  maxRegisters: 50,
  maxGap: 16,
  defaults: { baud: 9600, parity: 'none' },
  registers: [...carloGavazziSharedRegisters, ...carloGavazziExportRegisters(0x005c)],
};
