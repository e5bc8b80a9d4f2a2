/** The agent's configuration: schema, loader, problems. See README.md of agent/ and DESIGN §8. */
export { loadConfig, parseConfig, type LoadConfigOptions } from './load.js';
export {
  ConfigError,
  isConfigError,
  formatProblem,
  type ConfigProblem,
  type ConfigProblemCode,
} from './errors.js';
export type { ProfileCatalog } from './checks.js';
export {
  ConfigSchema,
  iotCoreAlpn,
  iotCoreMaxMessageBytes,
  type Config,
  type MeterConfig,
  type ModbusRtuMeterConfig,
  type ModbusTcpMeterConfig,
  type DsmrMeterConfig,
  type SmlMeterConfig,
  type IecMeterConfig,
  type CloudConfig,
} from './schema.js';
export { parseDuration, parseSize, formatDuration, formatSize } from './units.js';
