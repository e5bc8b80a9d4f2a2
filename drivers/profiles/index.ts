/**
 * The built-in meter profiles, by name. One data file per model (`vendor-model.ts`); adding a model means
 * adding its file and one line here (test/drivers/profiles.test.ts lints and plans every entry).
 */
import type { ModbusProfile } from '../modbus/profile.js';
import { abbB23 } from './abb-b23.js';
import { carloGavazziEm24 } from './carlo-gavazzi-em24.js';
import { carloGavazziEm340 } from './carlo-gavazzi-em340.js';
import { eastronSdm120 } from './eastron-sdm120.js';
import { eastronSdm230 } from './eastron-sdm230.js';
import { eastronSdm630 } from './eastron-sdm630.js';
import { finder7m38 } from './finder-7m38.js';
import { schneiderIem3155 } from './schneider-iem3155.js';

const all: readonly ModbusProfile[] = [
  eastronSdm120,
  eastronSdm230,
  eastronSdm630,
  carloGavazziEm24,
  carloGavazziEm340,
  abbB23,
  schneiderIem3155,
  finder7m38,
];

export const builtinProfiles: Readonly<Record<string, ModbusProfile>> = Object.freeze(
  Object.fromEntries(all.map((p) => [p.name, p])),
);
