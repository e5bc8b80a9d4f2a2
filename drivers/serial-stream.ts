/**
 * The serial-port half every streaming meter reader shares (DSMR P1, SML, IEC 62056-21): keep the port open,
 * reopen it when it disappears or when no good frame came for `watchdogMs`, and answer `read()` with the next
 * reading the driver delivers — or, after `readTimeoutMs`, with the port's error or the driver's timeout error.
 * Every open gets a generation: bytes and notices of an older port are ignored after a reopen.
 *
 * The driver owns framing and decoding: it gets the bytes (`onData`), calls `deliver(reading)` for a good
 * frame and `noteFrameError(err)` for a dropped one. Request/response protocols (IEC 62056-21 mode C) also
 * write to the port and change its speed through `port()`, and start a request from `onRead`.
 */
import { openSerialP1Port, type OpenP1Port, type P1LineSettings, type P1Port } from './dsmr/port.js';
import { DriverError } from './errors.js';
import type { MeterReading } from './reader.js';

export interface SerialStreamOptions {
  /** Meter id from the config. */
  readonly id: string;
  /** Serial device path. */
  readonly port: string;
  /** What the meter is, for messages: `SML meter`, `DSMR meter`. */
  readonly what: string;
  /** What the port is, for messages: `IR head port`, `P1 port`. */
  readonly portWhat: string;
  readonly settings: P1LineSettings;
  readonly watchdogMs: number;
  readonly readTimeoutMs: number;
  /** Wait between attempts to reopen a port that is gone (ms). Default min(1 s, watchdogMs). */
  readonly retryMs?: number;
  readonly openPort?: OpenP1Port;
  /** Bytes from the current port. */
  onData(chunk: Buffer): void;
  /** A port was (re)opened: reset the framer. */
  onOpen?(port: P1Port): void;
  /** A read starts waiting (request/response drivers send their request here). */
  onRead?(): void;
  /** The error a read that waited `readTimeoutMs` for nothing rejects with (the port is open). */
  timeoutError(lastFrameError: DriverError | undefined): DriverError;
}

export interface SerialStreamCounters {
  watchdogReopens: number;
  opens: number;
  portLost: number;
}

export interface SerialStream {
  /** Resolves every waiting read with `reading` and rearms the watchdog. */
  deliver(reading: MeterReading): void;
  /** Rejects every waiting read with `err` (a request that failed for good). */
  fail(err: DriverError): void;
  /** Remembers why the last frame was dropped (the cause of a later timeout). */
  noteFrameError(err: DriverError): void;
  /** The open port, if any. */
  port(): P1Port | undefined;
  /** True while reads are waiting. */
  waiting(): boolean;
  readonly counters: Readonly<SerialStreamCounters>;
  read(signal?: AbortSignal): Promise<MeterReading>;
  close(): Promise<void>;
}

interface Waiter {
  resolve(r: MeterReading): void;
  reject(e: DriverError): void;
}

export function createSerialStream(opts: SerialStreamOptions): SerialStream {
  const openPort = opts.openPort ?? openSerialP1Port;
  const retryMs = opts.retryMs ?? Math.min(1000, opts.watchdogMs);
  const counters: SerialStreamCounters = { watchdogReopens: 0, opens: 0, portLost: 0 };
  const waiters = new Set<Waiter>();
  let current: P1Port | undefined;
  let opening: Promise<void> | undefined;
  let started = false;
  let closed = false;
  let generation = 0;
  let watchdog: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let portError: DriverError | undefined;
  let frameError: DriverError | undefined;

  const armWatchdog = () => {
    clearTimeout(watchdog);
    if (closed) return;
    watchdog = setTimeout(() => {
      counters.watchdogReopens++;
      void reopen();
    }, opts.watchdogMs);
  };
  const scheduleRetry = () => {
    clearTimeout(retry);
    if (!closed) retry = setTimeout(() => void open(), retryMs);
  };

  const open = (): Promise<void> => {
    if (closed || current) return Promise.resolve();
    opening ??= (async () => {
      const gen = ++generation;
      try {
        const p = await openPort(opts.port, opts.settings);
        if (closed || gen !== generation) return void (await p.close());
        counters.opens++;
        current = p;
        portError = undefined;
        opts.onOpen?.(p);
        p.onData((chunk) => {
          if (gen === generation) opts.onData(chunk);
        });
        p.onLost((err) => {
          if (gen !== generation || closed) return;
          counters.portLost++;
          current = undefined;
          portError = new DriverError(
            'PORT_GONE',
            `${opts.portWhat} ${opts.port} disappeared (adapter unplugged?)`,
            { cause: err, context: { port: opts.port, meter: opts.id } },
          );
          scheduleRetry();
        });
        armWatchdog();
      } catch (err) {
        portError =
          err instanceof DriverError
            ? err
            : new DriverError('PORT_OPEN_FAILED', `cannot open ${opts.portWhat} ${opts.port}`, {
                cause: err,
                context: { port: opts.port },
              });
        scheduleRetry();
      } finally {
        opening = undefined;
      }
    })();
    return opening;
  };

  const reopen = async () => {
    const p = current;
    current = undefined;
    generation++;
    await p?.close();
    await open();
    // Keep watching even when the reopen failed: the retry timer reopens, the watchdog counts stalls.
    if (!current) armWatchdog();
  };

  return {
    counters,
    port: () => current,
    waiting: () => waiters.size > 0,
    deliver(reading) {
      armWatchdog();
      for (const w of [...waiters]) w.resolve(reading);
    },
    fail(err) {
      for (const w of [...waiters]) w.reject(err);
    },
    noteFrameError(err) {
      frameError = err;
    },
    read(signal) {
      if (closed) return Promise.reject(new DriverError('CLOSED', `${opts.what} ${opts.id} is closed`));
      if (!started) {
        started = true;
        void open();
      }
      return new Promise<MeterReading>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          waiters.delete(waiter);
        };
        const waiter: Waiter = {
          resolve: (r) => (done(), resolve(r)),
          reject: (e) => (done(), reject(e)),
        };
        const onAbort = () =>
          waiter.reject(
            new DriverError('TIMEOUT', `read of ${opts.what} ${opts.id} aborted`, {
              cause: signal?.reason,
              context: { meter: opts.id, port: opts.port, aborted: true },
            }),
          );
        const timer = setTimeout(() => {
          if (!current && portError) return waiter.reject(portError);
          waiter.reject(opts.timeoutError(frameError));
        }, opts.readTimeoutMs);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.add(waiter);
        opts.onRead?.();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(watchdog);
      clearTimeout(retry);
      for (const w of [...waiters]) w.reject(new DriverError('CLOSED', `${opts.what} ${opts.id} was closed`));
      // An open still under way is not awaited: it closes its own port when it lands (see open()).
      generation++;
      const p = current;
      current = undefined;
      await p?.close();
    },
  };
}

/** The reader a stream driver returns: `read`/`close` through the stream, its stats with the stream's counters. */
export function streamReader<S extends object>(
  id: string,
  stream: SerialStream,
  stats: () => S,
  beforeClose?: () => void,
): { id: string; stats(): S & SerialStreamCounters; read: SerialStream['read']; close(): Promise<void> } {
  return {
    id,
    stats: () => ({ ...stats(), ...stream.counters }),
    read: (signal) => stream.read(signal),
    close: async () => {
      beforeClose?.();
      await stream.close();
    },
  };
}
