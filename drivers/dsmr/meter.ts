/**
 * The DSMR P1 meter reader: keeps the port open, frames telegrams as they stream in, and answers `read()`
 * with the next complete, CRC-valid telegram. A watchdog reopens the port when no good telegram arrives
 * for `watchdogMs` — the field's classic silent stall that otherwise needs a manual restart.
 */
import { QualityFlag } from '../../cloud-contract/sample.js';
import { DriverError } from '../errors.js';
import type { MeterReader, MeterReading } from '../reader.js';
import { createSerialStream, streamReader } from '../serial-stream.js';
import { decryptGgcFrame, GgcFramer, parseGgcFrame } from './decrypt.js';
import { TelegramFramer, type FramerStats } from './framer.js';
import type { OpenP1Port, P1LineSettings } from './port.js';
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
  const now = deps.now ?? Date.now;
  const version = opts.version ?? 'auto';
  const requireCrc = version !== 'auto' && version !== '2.2' && version !== '3';
  const watchdogMs = opts.watchdogMs ?? 30_000;
  const readTimeoutMs = opts.readTimeoutMs ?? 15_000;
  const plainFramer = new TelegramFramer();
  const ggc = opts.key ? new GgcFramer() : undefined;
  const framer = ggc ?? plainFramer;
  const counters = { telegrams: 0, crcErrors: 0, badTelegrams: 0, decryptErrors: 0 };
  let last: DsmrTelegram | undefined;
  let lastAt: number | undefined;

  const onFrame = (raw: Buffer) => {
    let frame = raw;
    if (opts.key) {
      const g = parseGgcFrame(raw);
      const d = g.ok ? decryptGgcFrame(g.frame, opts.key) : g;
      if (!d.ok) {
        if (d.error.code === 'DECRYPT') counters.decryptErrors++;
        else counters.badTelegrams++;
        stream.noteFrameError(d.error);
        return;
      }
      frame = d.plaintext;
    }
    const r = parseTelegram(frame, { requireCrc });
    if (!r.ok) {
      if (r.error.code === 'CRC') counters.crcErrors++;
      else counters.badTelegrams++;
      stream.noteFrameError(r.error);
      return;
    }
    counters.telegrams++;
    last = r.telegram;
    lastAt = now();
    stream.deliver(telegramToReading(r.telegram));
  };

  const stream = createSerialStream({
    id: opts.id,
    port: opts.port,
    what: 'DSMR meter',
    portWhat: 'P1 port',
    settings: lineSettings(opts),
    watchdogMs,
    readTimeoutMs,
    retryMs: opts.retryMs ?? Math.min(1000, watchdogMs),
    ...(deps.openPort ? { openPort: deps.openPort } : {}),
    onOpen: () => framer.reset(),
    onData: (chunk) => {
      for (const f of framer.push(chunk)) onFrame(f);
    },
    timeoutError: (frameError) => {
      // Frames arrive but none authenticates: the key is wrong. Say so, not just "timeout".
      if (frameError?.code === 'DECRYPT') return frameError;
      const context = {
        meter: opts.id,
        port: opts.port,
        waitedMs: readTimeoutMs,
        lastTelegramAt: lastAt,
        crcErrors: counters.crcErrors,
        badTelegrams: counters.badTelegrams,
      };
      return new DriverError(
        'TIMEOUT',
        `no valid DSMR telegram on ${opts.port} within ${readTimeoutMs} ms ` +
          '(check the P1 cable, the baud rate and that the P1 port is enabled)',
        frameError ? { cause: frameError, context } : { context },
      );
    },
  });

  return {
    ...streamReader(opts.id, stream, () => ({ ...plainFramer.stats, ...counters })),
    lastTelegram: () => last,
  };
}
