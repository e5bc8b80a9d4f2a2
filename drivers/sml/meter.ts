/**
 * The SML meter reader: an IR read head on the meter's info interface (9600 8N1; the meter pushes a file
 * every 1–4 s). Keeps the port open, frames files as they stream in, answers `read()` with the next
 * CRC-valid file. Files with a bad CRC, truncated files and noise are counted and dropped; no valid file for
 * `watchdogMs` reopens the port.
 *
 * Incomplete data: many German meters send only the counters (1.8.x/2.8.x) until the customer enters the
 * PIN on the meter (or after a power cycle locks it again). A meter that never sent power is read as a
 * counter-only meter (no flag). Once a channel was seen, a later file without it is `partial` with the
 * channel in `missing` and a `BAD_FRAME` error with `context.reason = 'incomplete'` (PIN locked again).
 */
import { QualityFlag } from '../../cloud-contract/sample.js';
import type { OpenP1Port } from '../dsmr/port.js';
import { DriverError } from '../errors.js';
import type { MeterReader, MeterReading } from '../reader.js';
import { createSerialStream, streamReader } from '../serial-stream.js';
import { decodeSmlFile, type SmlReadingData } from './decode.js';
import { SmlFramer, type SmlFramerStats } from './transport.js';

export interface SmlMeterOptions {
  readonly id: string;
  /** Serial device of the IR head, e.g. `/dev/ttyUSB0`. */
  readonly port: string;
  /** Default 9600 (SML info interface). */
  readonly baud?: number;
  /** Reopen the port when no valid file came for this long (ms). Default 30 s. */
  readonly watchdogMs?: number;
  /** `read()` gives up after this long (ms). Default 10 s. */
  readonly readTimeoutMs?: number;
  /** Per-message CRC: `check` (default) or `ignore` (see `SmlDecodeOptions`). */
  readonly messageCrc?: 'check' | 'ignore';
}

export interface SmlMeterStats extends SmlFramerStats {
  good: number;
  crcErrors: number;
  /** Files dropped because a message's own CRC was wrong (counted in crcErrors too). */
  messageCrcErrors: number;
  badFiles: number;
  watchdogReopens: number;
  opens: number;
  portLost: number;
  /** True while no power channel was ever received (a counter-only or PIN-locked meter). */
  counterOnly: boolean;
}

export interface SmlMeterReader extends MeterReader {
  stats(): Readonly<SmlMeterStats>;
}

/** Turns decoded data into a reading; `seen` (channels seen before) grows, drops are flagged incomplete. */
export function smlToReading(d: SmlReadingData, seen: Set<string>): MeterReading {
  const errors: DriverError[] = d.problems.map(
    (p) =>
      new DriverError('BAD_FRAME', `SML entry ${p.obis} (${p.channel}) has an unusable value (${p.reason})`, {
        context: { ...p },
      }),
  );
  const missing = d.problems.map((p) => p.channel);
  const gone = [...seen].filter((c) => !(c in d.values) && !missing.includes(c));
  if (gone.length > 0) {
    missing.push(...gone);
    errors.push(
      new DriverError('BAD_FRAME', `SML meter stopped sending ${gone.join(', ')} (PIN locked again?)`, {
        context: { reason: 'incomplete', channels: gone },
      }),
    );
  }
  for (const c of Object.keys(d.values)) seen.add(c);
  const reading: MeterReading = {
    values: d.values,
    flags:
      missing.length > 0 ? QualityFlag.partial | (d.problems.length > 0 ? QualityFlag.outOfRange : 0) : 0,
    missing,
    errors,
  };
  return d.serial === undefined ? reading : { ...reading, serial: d.serial };
}

export function createSmlMeter(opts: SmlMeterOptions, deps: { openPort?: OpenP1Port } = {}): SmlMeterReader {
  const readTimeoutMs = opts.readTimeoutMs ?? 10_000;
  const framer = new SmlFramer();
  const c = { good: 0, crcErrors: 0, messageCrcErrors: 0, badFiles: 0 };
  const seen = new Set<string>();
  const onFile = (file: Buffer) => {
    const r = decodeSmlFile(file, { messageCrc: opts.messageCrc ?? 'check' });
    if (!r.ok) {
      if (r.error.context.reason === 'message-crc') c.messageCrcErrors++;
      if (r.error.code === 'CRC') c.crcErrors++;
      else c.badFiles++;
      stream.noteFrameError(r.error);
      return;
    }
    c.good++;
    stream.deliver(smlToReading(r.data, seen));
  };
  const stream = createSerialStream({
    id: opts.id,
    port: opts.port,
    what: 'SML meter',
    portWhat: 'IR head port',
    settings: { baudRate: opts.baud ?? 9600, dataBits: 8, parity: 'none', stopBits: 1 },
    watchdogMs: opts.watchdogMs ?? 30_000,
    readTimeoutMs,
    ...(deps.openPort ? { openPort: deps.openPort } : {}),
    onOpen: () => framer.reset(),
    onData: (chunk) => {
      for (const f of framer.push(chunk)) onFile(f);
    },
    timeoutError: (fileError) => {
      const context = {
        meter: opts.id,
        port: opts.port,
        waitedMs: readTimeoutMs,
        crcErrors: c.crcErrors,
        badFiles: c.badFiles,
      };
      return new DriverError(
        'TIMEOUT',
        `no valid SML file on ${opts.port} within ${readTimeoutMs} ms (check the IR head sits on the meter's optical port and the baud rate)`,
        fileError ? { cause: fileError, context } : { context },
      );
    },
  });

  return streamReader(opts.id, stream, () => ({
    ...framer.stats,
    ...c,
    counterOnly: !['power_w', 'power_l1_w'].some((x) => seen.has(x)),
  }));
}
