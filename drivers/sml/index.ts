/** SML (Smart Message Language 1.04) over an IR read head: transport, messages, OBIS mapping, reader. */
export { crc16x25 } from './crc.js';
export { SmlFramer, packFile, unpackFile, type SmlFramerStats } from './transport.js';
export {
  messageCrc,
  parseMessages,
  obisText,
  type SmlEntry,
  type SmlList,
  type SmlMessageCrcMismatch,
  type SmlMessages,
} from './messages.js';
export { smlObisMap, smlObisMapping, type SmlObisMapping } from './obis-map.js';
export {
  decodeSmlFile,
  type SmlDecodeOptions,
  type SmlDecodeResult,
  type SmlProblem,
  type SmlReadingData,
} from './decode.js';
export {
  createSmlMeter,
  smlToReading,
  type SmlMeterOptions,
  type SmlMeterReader,
  type SmlMeterStats,
} from './meter.js';
