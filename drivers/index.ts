/**
 * Public exports of drivers/: what the agent (and benchmarks) may import. Each driver family adds its lines.
 */
export type { MeterReader, MeterReading } from './reader.js';
export { DriverError, isDriverError, type DriverErrorCode } from './errors.js';

// Modbus: meters, profiles, planner, simulator.
export {
  createModbusMeter,
  resolveProfile,
  type ModbusMeterOptions,
  type ModbusMeterDeps,
} from './modbus/meter.js';
export { openBuses, type ModbusTransport } from './modbus/bus.js';
export { planReads, rtuTransactionBytes, type ReadBlock } from './modbus/planner.js';
export {
  validateProfile,
  type ModbusProfile,
  type RegisterDef,
  type ProfileProblem,
} from './modbus/profile.js';
export { scanModbusBus, type ScanOptions, type ScanResult } from './modbus/scan.js';
export { builtinProfiles } from './profiles/index.js';
export {
  startModbusSimulator,
  type ModbusSimulator,
  type ModbusSimulatorOptions,
  type SimFaults,
  type SimUnit,
} from './simulator/modbus-simulator.js';
export {
  createApartmentModel,
  type ApartmentModel,
  type ApartmentState,
} from './simulator/apartment-model.js';

// DSMR P1: reader, telegram parser, emitter (simulator).
export * from './dsmr/index.js';
export {
  startDsmrEmitter,
  type DsmrEmitter,
  type DsmrEmitterFaults,
  type DsmrEmitterOptions,
  type EmittedTelegram,
} from './simulator/dsmr-emitter.js';
export { DsmrApartmentModel, seededRandom, type DsmrSnapshot } from './simulator/dsmr-model.js';
export { renderTelegram, dsmrFlavours, type DsmrFlavour } from './simulator/dsmr-render.js';

// SML (IR read head): transport, messages, reader; emitter (simulator).
export * from './sml/index.js';
export {
  startSmlEmitter,
  createSmlModel,
  defaultSmlServerId,
  type SmlEmitter,
  type SmlEmitterFaults,
  type SmlEmitterOptions,
  type SmlEmittedFile,
} from './simulator/sml-emitter.js';
export { renderSmlFile, smlValues, type SmlSnapshot } from './simulator/sml-render.js';
