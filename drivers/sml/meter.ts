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
import { openSerialP1Port, type OpenP1Port, type P1Port } from '../dsmr/port.js';
import { DriverError } from '../errors.js';
import type { MeterReader, MeterReading } from '../reader.js';
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
}

export interface SmlMeterStats extends SmlFramerStats {
  good: number;
  crcErrors: number;
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
  const openPort = deps.openPort ?? openSerialP1Port;
  const watchdogMs = opts.watchdogMs ?? 30_000;
  const readTimeoutMs = opts.readTimeoutMs ?? 10_000;
  const framer = new SmlFramer();
  const c = { good: 0, crcErrors: 0, badFiles: 0, watchdogReopens: 0, opens: 0, portLost: 0 };
  const waiters = new Set<{ resolve(r: MeterReading): void; reject(e: DriverError): void }>();
  const seen = new Set<string>();
  let port: P1Port | undefined;
  let opening: Promise<void> | undefined;
  let started = false;
  let closed = false;
  let generation = 0;
  let watchdog: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let portError: DriverError | undefined;
  let fileError: DriverError | undefined;

  const armWatchdog = () => {
    clearTimeout(watchdog);
    if (!closed)
      watchdog = setTimeout(() => {
        c.watchdogReopens++;
        void reopen();
      }, watchdogMs);
  };
  const onFile = (file: Buffer) => {
    const r = decodeSmlFile(file);
    if (!r.ok) {
      if (r.error.code === 'CRC') c.crcErrors++;
      else c.badFiles++;
      fileError = r.error;
      return;
    }
    c.good++;
    armWatchdog();
    const reading = smlToReading(r.data, seen);
    for (const w of [...waiters]) w.resolve(reading);
  };
  const open = (): Promise<void> => {
    if (closed || port) return Promise.resolve();
    opening ??= (async () => {
      const gen = ++generation;
      try {
        const p = await openPort(opts.port, {
          baudRate: opts.baud ?? 9600,
          dataBits: 8,
          parity: 'none',
          stopBits: 1,
        });
        if (closed || gen !== generation) return void (await p.close());
        c.opens++;
        port = p;
        portError = undefined;
        framer.reset();
        p.onData((chunk) => {
          if (gen === generation) for (const f of framer.push(chunk)) onFile(f);
        });
        p.onLost((err) => {
          if (gen !== generation || closed) return;
          c.portLost++;
          port = undefined;
          portError = new DriverError('PORT_GONE', `IR head port ${opts.port} disappeared (unplugged?)`, {
            cause: err,
            context: { port: opts.port, meter: opts.id },
          });
          retry = setTimeout(() => void open(), Math.min(1000, watchdogMs));
        });
        armWatchdog();
      } catch (err) {
        portError =
          err instanceof DriverError
            ? err
            : new DriverError('PORT_OPEN_FAILED', `cannot open ${opts.port}`, { cause: err });
        if (!closed) retry = setTimeout(() => void open(), Math.min(1000, watchdogMs));
      } finally {
        opening = undefined;
      }
    })();
    return opening;
  };
  const reopen = async () => {
    const p = port;
    port = undefined;
    generation++;
    await p?.close();
    await open();
    if (!port) armWatchdog();
  };

  return {
    id: opts.id,
    stats: () => ({
      ...framer.stats,
      ...c,
      counterOnly: !['power_w', 'power_l1_w'].some((x) => seen.has(x)),
    }),
    read(signal?: AbortSignal): Promise<MeterReading> {
      if (closed) return Promise.reject(new DriverError('CLOSED', `SML meter ${opts.id} is closed`));
      if (!started) {
        started = true;
        void open();
      }
      return new Promise<MeterReading>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          waiters.delete(w);
        };
        const w = {
          resolve: (r: MeterReading) => (done(), resolve(r)),
          reject: (e: DriverError) => (done(), reject(e)),
        };
        const onAbort = () =>
          w.reject(
            new DriverError('TIMEOUT', `read of SML meter ${opts.id} aborted`, {
              context: { aborted: true },
            }),
          );
        const timer = setTimeout(() => {
          if (!port && portError) return w.reject(portError);
          const context = {
            meter: opts.id,
            port: opts.port,
            waitedMs: readTimeoutMs,
            crcErrors: c.crcErrors,
            badFiles: c.badFiles,
          };
          w.reject(
            new DriverError(
              'TIMEOUT',
              `no valid SML file on ${opts.port} within ${readTimeoutMs} ms (check the IR head sits on the meter's optical port and the baud rate)`,
              fileError ? { cause: fileError, context } : { context },
            ),
          );
        }, readTimeoutMs);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.add(w);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(watchdog);
      clearTimeout(retry);
      for (const w of [...waiters]) w.reject(new DriverError('CLOSED', `SML meter ${opts.id} was closed`));
      generation++;
      const p = port;
      port = undefined;
      await p?.close();
    },
  };
}
