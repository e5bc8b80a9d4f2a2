/**
 * The one interface the agent sees for any meter, whatever the transport: read once, get typed values on
 * canonical channels. Implementations: Modbus (RTU, TCP, RTU-over-TCP) and DSMR P1.
 */
import type { Value } from '../cloud-contract/sample.js';
import type { DriverError } from './errors.js';

export interface MeterReading {
  /** Canonical channel name (cloud-contract/channels.ts) → value exactly as the meter reported it. */
  readonly values: Readonly<Record<string, Value>>;
  /** QualityFlag bits the driver can know: partial, meterError, outOfRange. (Clock flags are the agent's.) */
  readonly flags: number;
  /** Channels the profile promises but this read could not deliver (failed block, NaN, out of range). */
  readonly missing: readonly string[];
  /** What went wrong in a partial read (empty for a clean one). */
  readonly errors: readonly DriverError[];
  /** The meter's own clock, ms since epoch, when it reports one (DSMR 0-0:1.0.0). */
  readonly meterTime?: number;
  /** The meter's serial number / equipment id when known (a change means a meter swap). */
  readonly serial?: string;
  /** Channels measured at another time than the read (DSMR M-Bus gas value with its own capture time). */
  readonly channelTimes?: Readonly<Record<string, number>>;
}

export interface MeterReader {
  /** Meter id from the config. */
  readonly id: string;
  /**
   * One read. Resolves with a reading (possibly `partial`); rejects with a `DriverError` when nothing at all
   * could be read (timeout, port gone, backoff). Never leaves the port in a state the next read cannot use.
   */
  read(signal?: AbortSignal): Promise<MeterReading>;
  /** Releases the port/connection (shared bus ports are closed when their last meter closes). */
  close(): Promise<void>;
}
