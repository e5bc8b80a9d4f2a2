/** The drivers' knowledge of meter profiles, as config validation needs it (names and the map validator). */
import { builtinProfiles, validateProfile } from '../../drivers/index.js';
import type { ProfileCatalog } from './checks.js';

export const driverProfiles: ProfileCatalog = {
  names: Object.keys(builtinProfiles),
  validate: validateProfile,
};
