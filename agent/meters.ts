/**
 * From the config's meters to driver readers: the one place that maps config keys to driver options, used
 * by `meterlink read` and the daemon alike.
 */
import { createSmlMeter } from '../drivers/sml/index.js';
import { createIecMeter, type IecMeterOptions } from '../drivers/iec62056/index.js';
import {
  createDsmrMeter,
  createModbusMeter,
  type DsmrMeterOptions,
  type MeterReader,
  type ModbusMeterOptions,
  type ModbusProfile,
} from '../drivers/index.js';
import type {
  DsmrMeterConfig,
  MeterConfig,
  SmlMeterConfig,
  IecMeterConfig,
  ModbusRtuMeterConfig,
  ModbusTcpMeterConfig,
} from './config/index.js';

export function modbusMeterOptions(m: ModbusRtuMeterConfig | ModbusTcpMeterConfig): ModbusMeterOptions {
  return {
    id: m.id,
    transport:
      m.driver === 'modbus-rtu'
        ? {
            kind: 'rtu',
            port: m.port,
            baud: m.baud,
            parity: m.parity,
            dataBits: m.dataBits,
            stopBits: m.stopBits,
          }
        : { kind: m.transport, host: m.host, port: m.port },
    unit: m.unit,
    // loadConfig has run an inline map through the drivers' validateProfile already.
    profile: typeof m.profile === 'string' ? m.profile : (m.profile as unknown as ModbusProfile),
    timeout: m.timeout,
    retries: m.retries,
  };
}

export function dsmrMeterOptions(
  m: DsmrMeterConfig,
  opts: { readTimeoutMs?: number } = {},
): DsmrMeterOptions {
  return {
    id: m.id,
    port: m.port,
    baud: m.baud,
    version: m.version,
    watchdogMs: m.timeout,
    ...(m.key === undefined ? {} : { key: Buffer.from(m.key, 'hex') }),
    ...(opts.readTimeoutMs === undefined ? {} : { readTimeoutMs: opts.readTimeoutMs }),
  };
}

export function smlMeterOptions(m: SmlMeterConfig, opts: { readTimeoutMs?: number } = {}) {
  return {
    id: m.id,
    port: m.port,
    baud: m.baud,
    messageCrc: m.messageCrc,
    watchdogMs: m.timeout,
    ...(opts.readTimeoutMs === undefined ? {} : { readTimeoutMs: opts.readTimeoutMs }),
  };
}

export function iecMeterOptions(m: IecMeterConfig, opts: { readTimeoutMs?: number } = {}): IecMeterOptions {
  return {
    id: m.id,
    port: m.port,
    mode: m.mode,
    watchdogMs: m.timeout,
    ...(m.baud === undefined ? {} : { baud: m.baud }),
    ...(m.address === undefined ? {} : { address: m.address }),
    ...(opts.readTimeoutMs === undefined ? {} : { readTimeoutMs: opts.readTimeoutMs }),
  };
}

/** A reader for one configured meter (Modbus meters on one port or host share one bus and queue). */
export function createMeterReader(m: MeterConfig, opts: { dsmrReadTimeoutMs?: number } = {}): MeterReader {
  if (m.driver === 'iec62056-21')
    return createIecMeter(
      iecMeterOptions(
        m,
        opts.dsmrReadTimeoutMs === undefined ? {} : { readTimeoutMs: Math.max(opts.dsmrReadTimeoutMs, 5000) },
      ),
    );
  if (m.driver === 'sml')
    return createSmlMeter(
      smlMeterOptions(
        m,
        opts.dsmrReadTimeoutMs === undefined ? {} : { readTimeoutMs: opts.dsmrReadTimeoutMs },
      ),
    );
  return m.driver === 'dsmr'
    ? createDsmrMeter(
        dsmrMeterOptions(
          m,
          opts.dsmrReadTimeoutMs === undefined ? {} : { readTimeoutMs: opts.dsmrReadTimeoutMs },
        ),
      )
    : createModbusMeter(modbusMeterOptions(m));
}

/** What a meter is, in a few words, for logs and `read` output: `modbus-rtu /dev/ttyUSB0 unit 1, eastron-sdm630`. */
export function meterLabel(m: MeterConfig): string {
  const profile = (p: unknown) => (typeof p === 'string' ? p : 'inline profile');
  switch (m.driver) {
    case 'modbus-rtu':
      return `modbus-rtu ${m.port} unit ${m.unit}, ${profile(m.profile)}`;
    case 'modbus-tcp':
      return `${m.transport === 'tcp' ? 'modbus-tcp' : 'modbus rtu-over-tcp'} ${m.host}:${m.port} unit ${m.unit}, ${profile(m.profile)}`;
    case 'dsmr':
      return `dsmr ${m.port}`;
    case 'sml':
      return `sml ${m.port}`;
    case 'iec62056-21':
      return `iec62056-21 ${m.port} mode ${m.mode.toUpperCase()}`;
  }
}
