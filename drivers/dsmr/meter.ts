/**
 * The DSMR P1 meter reader: keeps the port open, frames telegrams as they stream in, and answers `read()`
 * with the next complete, CRC-valid telegram. A watchdog reopens the port when no good telegram arrives
 * for `watchdogMs` — the field's classic silent stall that otherwise needs a manual restart.
 */
import { QualityFlag } from '../../cloud-contract/sample.js';
import { DriverError } from '../errors.js';
import type { MeterReader, MeterReading } from '../reader.js';
import { decryptGgcFrame, GgcFramer, parseGgcFrame } from './decrypt.js';
import { TelegramFramer, type FramerStats } from './framer.js';
import { openSerialP1Port, type OpenP1Port, type P1LineSettings, type P1Port } from './port.js';
import { parseTelegram, type DsmrTelegram } from './telegram.js';

export type DsmrVersionHint = 'auto' | '2.2' | '3' | '4' | '5' | 'e-mucs' | 'smarty';

export interface DsmrMeterOptions {
  /** Meter id from the config. */
  readonly id: string;
  /** Serial device of the P1 cable, e.g. `/dev/ttyUSB1`. */
  readonly port: string;
  /** Line speed; default 115200 (DSMR 4/5, e-MUCS, Smarty), 9600 for versions 2.2 and 3. */
  readonly baud?: number;
  /** Protocol version: 2.2/3 mean 9600 7E1 and no CRC; 4/5/e-mucs/smarty require the CRC. Default `auto`. */
  readonly version?: DsmrVersionHint;
  /** Reopen the port when no valid telegram came for this long (ms). Default 30 s (3 DSMR 4 intervals). */
  readonly watchdogMs?: number;
  /** `read()` gives up after this long (ms). Default 15 s (a DSMR 4 meter sends every 10 s). */
  readonly readTimeoutMs?: number;
  /** Wait between attempts to reopen a port that is gone (ms). Default min(1 s, watchdogMs). */
  readonly retryMs?: number;
  /** AES-128-GCM key (Smarty / Austrian encrypted P1): frames are DLMS general-global-ciphering, decrypted here. */
  readonly key?: Buffer;
}

export interface DsmrMeterDeps {
  readonly openPort?: OpenP1Port;
  readonly now?: () => number;
}

export interface DsmrMeterStats extends FramerStats {
  /** Valid telegrams received. */
  telegrams: number;
  /** Telegrams dropped for a CRC mismatch. */
  crcErrors: number;
  /** Telegrams dropped as malformed (bad line, truncated footer, missing CRC). */
  badTelegrams: number;
  /** Times the watchdog reopened the port. */
  watchdogReopens: number;
  /** Times the port was opened (first open included). */
  opens: number;
  /** Times the port disappeared under us. */
  portLost: number;
  /** Encrypted frames that failed authentication (wrong key or corrupted). */
  decryptErrors: number;
}

export interface DsmrMeterReader extends MeterReader {
  /** Counters since creation. */
  stats(): Readonly<DsmrMeterStats>;
  /** The last valid telegram, if any. */
  lastTelegram(): DsmrTelegram | undefined;
}

interface Waiter {
  resolve(r: MeterReading): void;
  reject(e: DriverError): void;
}

export function lineSettings(opts: Pick<DsmrMeterOptions, 'baud' | 'version'>): P1LineSettings {
  // DSMR 2.2/3 §4.2: 9600 baud, 7 data bits, even parity, 1 stop bit. DSMR 4+: 115200 8N1. With no version
  // given, 9600 baud can only be a DSMR 2.2/3 port (as the config schema reads it too).
  const version = opts.version ?? 'auto';
  const old = version === '2.2' || version === '3' || (version === 'auto' && opts.baud === 9600);
  return old
    ? { baudRate: opts.baud ?? 9600, dataBits: 7, parity: 'even', stopBits: 1 }
    : { baudRate: opts.baud ?? 115200, dataBits: 8, parity: 'none', stopBits: 1 };
}

export function telegramToReading(t: DsmrTelegram): MeterReading {
  const missing = [...new Set(t.problems.map((p) => p.channel))];
  const errors = t.problems.map(
    (p) =>
      new DriverError('BAD_FRAME', `DSMR line ${p.line} (${p.obis}) has an unusable value "${p.text}"`, {
        context: { reason: p.reason, line: p.line, obis: p.obis, channel: p.channel },
      }),
  );
  const reading: MeterReading = {
    values: t.values,
    flags: missing.length > 0 ? QualityFlag.partial | QualityFlag.outOfRange : 0,
    missing,
    errors,
  };
  return Object.assign(
    reading,
    t.meterTime === undefined ? {} : { meterTime: t.meterTime },
    t.serial === undefined ? {} : { serial: t.serial },
    Object.keys(t.channelTimes).length === 0 ? {} : { channelTimes: t.channelTimes },
  );
}

export function createDsmrMeter(opts: DsmrMeterOptions, deps: DsmrMeterDeps = {}): DsmrMeterReader {
  const openPort = deps.openPort ?? openSerialP1Port;
  const now = deps.now ?? Date.now;
  const version = opts.version ?? 'auto';
  const requireCrc = version !== 'auto' && version !== '2.2' && version !== '3';
  const watchdogMs = opts.watchdogMs ?? 30_000;
  const readTimeoutMs = opts.readTimeoutMs ?? 15_000;
  const retryMs = opts.retryMs ?? Math.min(1000, watchdogMs);
  const settings = lineSettings(opts);
  const plainFramer = new TelegramFramer();
  const ggc = opts.key ? new GgcFramer() : undefined;
  const framer = {
    stats: plainFramer.stats,
    reset: () => (ggc ?? plainFramer).reset(),
    push: (c: Buffer) => (ggc ?? plainFramer).push(c),
  };
  const counters = {
    telegrams: 0,
    crcErrors: 0,
    badTelegrams: 0,
    watchdogReopens: 0,
    opens: 0,
    portLost: 0,
    decryptErrors: 0,
  };
  const waiters = new Set<Waiter>();

  let port: P1Port | undefined;
  let opening: Promise<void> | undefined;
  let started = false;
  let closed = false;
  let watchdog: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let portError: DriverError | undefined;
  let frameError: DriverError | undefined;
  let last: DsmrTelegram | undefined;
  let lastAt: number | undefined;
  // Every open gets a generation; callbacks of an older port are ignored after a reopen.
  let generation = 0;

  const armWatchdog = () => {
    clearTimeout(watchdog);
    if (closed) return;
    watchdog = setTimeout(() => {
      counters.watchdogReopens++;
      void reopen();
    }, watchdogMs);
  };

  const scheduleRetry = () => {
    clearTimeout(retry);
    if (!closed) retry = setTimeout(() => void open(), retryMs);
  };

  const onFrame = (raw: Buffer) => {
    let frame = raw;
    if (opts.key) {
      const g = parseGgcFrame(raw);
      const d = g.ok ? decryptGgcFrame(g.frame, opts.key) : g;
      if (!d.ok) {
        if (d.error.code === 'DECRYPT') counters.decryptErrors++;
        else counters.badTelegrams++;
        frameError = d.error;
        return;
      }
      frame = d.plaintext;
    }
    const r = parseTelegram(frame, { requireCrc });
    if (!r.ok) {
      if (r.error.code === 'CRC') counters.crcErrors++;
      else counters.badTelegrams++;
      frameError = r.error;
      return;
    }
    counters.telegrams++;
    last = r.telegram;
    lastAt = now();
    armWatchdog();
    const reading = telegramToReading(r.telegram);
    for (const w of [...waiters]) w.resolve(reading);
  };

  const open = (): Promise<void> => {
    if (closed || port) return Promise.resolve();
    opening ??= (async () => {
      const gen = ++generation;
      try {
        const p = await openPort(opts.port, settings);
        if (closed || gen !== generation) {
          await p.close();
          return;
        }
        counters.opens++;
        port = p;
        portError = undefined;
        framer.reset();
        p.onData((chunk) => {
          if (gen === generation) for (const f of framer.push(chunk)) onFrame(f);
        });
        p.onLost((err) => {
          if (gen !== generation || closed) return;
          counters.portLost++;
          port = undefined;
          portError = new DriverError('PORT_GONE', `P1 port ${opts.port} disappeared (adapter unplugged?)`, {
            cause: err,
            context: { port: opts.port, meter: opts.id },
          });
          scheduleRetry();
        });
        armWatchdog();
      } catch (err) {
        portError =
          err instanceof DriverError
            ? err
            : new DriverError('PORT_OPEN_FAILED', `cannot open P1 port ${opts.port}`, {
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
    const p = port;
    port = undefined;
    generation++;
    await p?.close();
    await open();
    // Keep watching even when the reopen failed: the retry timer reopens, the watchdog counts stalls.
    if (!port) armWatchdog();
  };

  return {
    id: opts.id,
    stats: () => ({ ...framer.stats, ...counters }),
    lastTelegram: () => last,
    read(signal?: AbortSignal): Promise<MeterReading> {
      if (closed) return Promise.reject(new DriverError('CLOSED', `DSMR meter ${opts.id} is closed`));
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
            new DriverError('TIMEOUT', `read of DSMR meter ${opts.id} aborted`, {
              cause: signal?.reason,
              context: { meter: opts.id, port: opts.port, aborted: true },
            }),
          );
        const timer = setTimeout(() => {
          const context = {
            meter: opts.id,
            port: opts.port,
            waitedMs: readTimeoutMs,
            lastTelegramAt: lastAt,
            crcErrors: counters.crcErrors,
            badTelegrams: counters.badTelegrams,
          };
          if (!port && portError) return waiter.reject(portError);
          // Frames arrive but none authenticates: the key is wrong. Say so, not just "timeout".
          if (frameError?.code === 'DECRYPT') return waiter.reject(frameError);
          waiter.reject(
            new DriverError(
              'TIMEOUT',
              `no valid DSMR telegram on ${opts.port} within ${readTimeoutMs} ms ` +
                '(check the P1 cable, the baud rate and that the P1 port is enabled)',
              frameError ? { cause: frameError, context } : { context },
            ),
          );
        }, readTimeoutMs);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.add(waiter);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(watchdog);
      clearTimeout(retry);
      for (const w of [...waiters]) w.reject(new DriverError('CLOSED', `DSMR meter ${opts.id} was closed`));
      // An open still under way is not awaited: it closes its own port when it lands (see open()).
      generation++;
      const p = port;
      port = undefined;
      await p?.close();
    },
  };
}
