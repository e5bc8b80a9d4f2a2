/**
 * Carlo Gavazzi EM340, three-phase DIN-rail meter (direct connection, 65 A).
 * Source: Carlo Gavazzi "EM300 Series and ET300 Series Communication Protocol, Version 2 Revision 17
 * (2021-07-05)", instantaneous variables and meters table. INT32 values are sent least significant word
 * first (CDAB); physical addresses are 0-based (Modicon 300001 = 0000h).
 */
import type { ModbusProfile } from '../modbus/profile.js';
import { carloGavazziExportRegisters, carloGavazziSharedRegisters } from './parts/carlo-gavazzi.js';

export const carloGavazziEm340: ModbusProfile = {
  name: 'carlo-gavazzi-em340',
  vendor: 'Carlo Gavazzi',
  model: 'EM340',
  source: 'Carlo Gavazzi EM300/ET300 Series Communication Protocol v2r17 (2021-07-05), tables 4.x',
  phases: 3,
  addressBase: 0,
  // The protocol document limits function 03h/04h to 50 words per request.
  maxRegisters: 50,
  maxGap: 16,
  defaults: { baud: 9600, parity: 'none' },
  registers: [...carloGavazziSharedRegisters, ...carloGavazziExportRegisters(0x004e)],
};
