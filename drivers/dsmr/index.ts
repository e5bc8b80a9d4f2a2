/** DSMR P1: telegram framing and parsing, OBIS mapping, and the meter reader. */
export { crc16, crcHex } from './crc16.js';
export {
  decryptGgcFrame,
  encryptGgcFrame,
  GgcFramer,
  parseGgcFrame,
  parseKeyHex,
  SMARTY_AUTH_KEY,
  type GgcFrame,
} from './decrypt.js';
export { TelegramFramer, type FramerOptions, type FramerStats } from './framer.js';
export {
  createDsmrMeter,
  lineSettings,
  telegramToReading,
  type DsmrMeterDeps,
  type DsmrMeterOptions,
  type DsmrMeterReader,
  type DsmrMeterStats,
  type DsmrVersionHint,
} from './meter.js';
export { dsmrObisMap, obisMapping, type ObisMapping } from './obis-map.js';
export { openSerialP1Port, type OpenP1Port, type P1LineSettings, type P1Port } from './port.js';
export {
  decodeHexText,
  parseDsmrNumber,
  parseTelegram,
  type DsmrLine,
  type DsmrProblem,
  type DsmrTelegram,
  type ParseOptions,
  type ParseResult,
} from './telegram.js';
export { formatDsmrTime, isEuSummerTime, parseDsmrTime } from './time.js';
