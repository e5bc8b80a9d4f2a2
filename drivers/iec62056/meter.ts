/**
 * The IEC 62056-21 meter reader, an optical head on the meter's D0 port (7E1).
 *
 * Mode C (`mode: 'c'`, the default): every `read()` signs on at 300 baud (`/?!` CR LF), waits for the
 * identification `/XXXZ…`, acknowledges with the option select `ACK 0 Z 0` CR LF asking for the speed Z offers
 * (or `maxBaud`, whichever is lower), waits for the ACK to leave the line, switches the port to that speed and
 * takes the data message (`STX … ! CR LF ETX BCC`, BCC checked). A mode B meter (Z `A`–`F`) switches without
 * the ACK, a mode A meter (any other Z) stays at 300 baud. Every speed asked for is recorded in
 * `stats().baudLog` (a pty does not really change speed, so tests read the protocol from there).
 *
 * Mode D (`mode: 'd'`): the meter pushes identification and data block unasked (usually 9600 or 2400 7E1);
 * the reader listens like the SML/DSMR readers, bare blocks (no STX/BCC) included.
 *
 * Faults, coded: no identification within `signOnTimeoutMs` → `TIMEOUT` (`reason: 'no-identification'`); a
 * reserved Z → `BAD_FRAME` (`unknown-baud`); a bad BCC → `CRC`; the block stops → `BAD_FRAME` (`truncated`);
 * noise → counted and skipped.
 */
import { DriverError } from '../errors.js';
import type { OpenP1Port } from '../dsmr/port.js';
import type { MeterReader } from '../reader.js';
import { createSerialStream, streamReader } from '../serial-stream.js';
import { iecToReading, iecToValues, parseDataMessage } from './data.js';
import {
  ackOptionSelect,
  IecFramer,
  modeCBaud,
  modeCBaudChar,
  parseIdentification,
  signOnRequest,
  transmitMs,
  type IecFramerStats,
  type IecMode,
  type Identification,
} from './protocol.js';

export interface IecMeterOptions {
  readonly id: string;
  /** Serial device of the optical head, e.g. `/dev/ttyUSB0`. */
  readonly port: string;
  /** `c`: sign on and read out (default); `d`: the meter pushes. */
  readonly mode?: 'c' | 'd';
  /** Mode C: highest speed to ask for (default: whatever the meter offers). Mode D: the push speed (default 9600). */
  readonly baud?: number;
  /** Mode C: device address in the sign-on (`/?12345678!`), for several meters on one bus. */
  readonly address?: string;
  /** Mode C: wait this long for the identification after the sign-on (ms). Default 2000 (the standard: 1500). */
  readonly signOnTimeoutMs?: number;
  /** Reopen the port when no good block came for this long (ms). Default 60 s. */
  readonly watchdogMs?: number;
  /** `read()` gives up after this long (ms). Default 30 s (a mode A readout at 300 baud is slow). */
  readonly readTimeoutMs?: number;
  /** Mode D: reject bare blocks without STX/ETX/BCC. Default false. */
  readonly requireBcc?: boolean;
}

export interface IecBaudStep {
  /** What happened: the 300 baud sign-on, the speed asked with the ACK (mode C), a mode B switch. */
  readonly step: 'sign-on' | 'ack' | 'switch-b';
  readonly baud: number;
  /** The Z character sent in the ACK (mode C). */
  readonly z?: string;
  /** ms from the ACK write to the speed change (the ACK's own transmission time at 300 baud). */
  readonly afterMs?: number;
}

export interface IecMeterStats extends IecFramerStats {
  blocks: number;
  bccErrors: number;
  badBlocks: number;
  signOns: number;
  noAnswer: number;
  unknownBaud: number;
  watchdogReopens: number;
  opens: number;
  portLost: number;
  /** Identification of the meter (last seen). */
  identification?: Identification;
  /** The last 32 speed steps, oldest first. */
  baudLog: IecBaudStep[];
}

export interface IecMeterReader extends MeterReader {
  stats(): Readonly<IecMeterStats>;
}

const SIGN_ON_BAUD = 300;

export function createIecMeter(opts: IecMeterOptions, deps: { openPort?: OpenP1Port } = {}): IecMeterReader {
  const mode = opts.mode ?? 'c';
  const readTimeoutMs = opts.readTimeoutMs ?? 30_000;
  const signOnTimeoutMs = opts.signOnTimeoutMs ?? 2000;
  const framer = new IecFramer();
  const c = { blocks: 0, bccErrors: 0, badBlocks: 0, signOns: 0, noAnswer: 0, unknownBaud: 0 };
  const baudLog: IecBaudStep[] = [];
  let identification: Identification | undefined;
  // Mode C request state: idle, waiting for the identification, or for the data message.
  let phase: 'idle' | 'ident' | 'data' = 'idle';
  let phaseTimer: NodeJS.Timeout | undefined;
  // Data phase: the meter answers within 1.5 s of the ACK and keeps characters coming (the standard's
  // inter-character limit is 1.5 s); this long without a byte and the readout is over, truncated or absent.
  const dataQuietMs = signOnTimeoutMs + 1500;
  let armData: (() => void) | undefined;
  let cycle = 0;

  const log = (s: IecBaudStep) => {
    baudLog.push(s);
    if (baudLog.length > 32) baudLog.shift();
  };
  const endCycle = () => {
    clearTimeout(phaseTimer);
    phase = 'idle';
  };
  const failCycle = (err: DriverError) => {
    endCycle();
    stream.noteFrameError(err);
    stream.fail(err);
  };
  const context = (extra: Record<string, unknown> = {}) => ({ meter: opts.id, port: opts.port, ...extra });

  const onData = (raw: Buffer, hasBcc: boolean) => {
    const r = parseDataMessage(raw, { requireBcc: opts.requireBcc ?? false });
    if (!r.ok) {
      if (r.error.code === 'CRC') c.bccErrors++;
      else c.badBlocks++;
      if (mode === 'c' && phase === 'data') return failCycle(r.error);
      return stream.noteFrameError(r.error);
    }
    if (mode === 'c' && phase !== 'data') return; // a block nobody asked for (an earlier, late answer)
    if (mode === 'c' && !hasBcc) {
      c.badBlocks++;
      return failCycle(
        new DriverError('BAD_FRAME', 'IEC 62056-21 mode C readout without STX/ETX/BCC', {
          context: context({ reason: 'no-bcc' }),
        }),
      );
    }
    c.blocks++;
    endCycle();
    stream.deliver(iecToReading(iecToValues(r.sets)));
  };

  const onIdent = (line: string) => {
    const r = parseIdentification(line);
    if (!r.ok) {
      if (r.reason === 'unknown-baud') c.unknownBaud++;
      else c.badBlocks++;
      const err = new DriverError('BAD_FRAME', r.message, { context: context({ reason: r.reason, line }) });
      if (mode === 'c' && phase === 'ident') return failCycle(err);
      return stream.noteFrameError(err);
    }
    identification = r.id;
    if (mode !== 'c' || phase !== 'ident') return;
    void optionSelect(r.id);
  };

  const optionSelect = async (id: Identification) => {
    const port = stream.port();
    const my = cycle;
    clearTimeout(phaseTimer);
    phase = 'data';
    armData = () => {
      clearTimeout(phaseTimer);
      phaseTimer = setTimeout(() => {
        if (my !== cycle || phase !== 'data') return;
        const truncated = framer.pending() > 0;
        failCycle(
          truncated
            ? new DriverError(
                'BAD_FRAME',
                `IEC 62056-21 data message from ${opts.port} stopped before its end`,
                {
                  context: context({
                    reason: 'truncated',
                    pendingBytes: framer.pending(),
                    quietMs: dataQuietMs,
                  }),
                },
              )
            : new DriverError(
                'TIMEOUT',
                `meter on ${opts.port} identified itself (${id.manufacturer}${id.z}${id.ident}) but sent no data`,
                { context: context({ reason: 'no-data', quietMs: dataQuietMs }) },
              ),
        );
      }, dataQuietMs);
    };
    armData();
    try {
      if (id.mode === 'C') {
        const z = pickModeC(id.baud, opts.baud);
        const baud = modeCBaud(z) as number;
        const ack = ackOptionSelect(z);
        const t0 = performance.now();
        await port?.write?.(ack);
        // The ACK must leave the UART at 300 baud before the speed changes under it.
        const wait = transmitMs(ack.length, SIGN_ON_BAUD);
        await new Promise((r) => setTimeout(r, wait));
        if (my !== cycle) return;
        log({ step: 'ack', baud, z, afterMs: Math.round(performance.now() - t0) });
        await port?.setBaud?.(baud);
      } else if (id.mode === 'B') {
        await port?.setBaud?.(id.baud);
        log({ step: 'switch-b', baud: id.baud });
      }
    } catch (err) {
      failCycle(
        new DriverError('PORT_GONE', `cannot switch ${opts.port} to the meter's speed`, {
          cause: err,
          context: context(),
        }),
      );
    }
  };

  const signOn = async () => {
    const port = stream.port();
    if (mode !== 'c' || phase !== 'idle' || !port || !stream.waiting()) return;
    const my = ++cycle;
    phase = 'ident';
    c.signOns++;
    framer.reset();
    try {
      await port.setBaud?.(SIGN_ON_BAUD);
      log({ step: 'sign-on', baud: SIGN_ON_BAUD });
      await port.write?.(signOnRequest(opts.address));
    } catch (err) {
      return failCycle(
        new DriverError('PORT_GONE', `cannot send the sign-on on ${opts.port}`, {
          cause: err,
          context: context(),
        }),
      );
    }
    if (my !== cycle || phase !== 'ident') return;
    phaseTimer = setTimeout(() => {
      if (my !== cycle || phase !== 'ident') return;
      c.noAnswer++;
      failCycle(
        new DriverError(
          'TIMEOUT',
          `no answer to the sign-on on ${opts.port} within ${signOnTimeoutMs} ms (check the optical head sits on the meter's D0 port, cable pointing down)`,
          { context: context({ reason: 'no-identification', waitedMs: signOnTimeoutMs }) },
        ),
      );
    }, signOnTimeoutMs);
  };

  const stream = createSerialStream({
    id: opts.id,
    port: opts.port,
    what: 'IEC 62056-21 meter',
    portWhat: 'optical head port',
    settings: {
      baudRate: mode === 'c' ? SIGN_ON_BAUD : (opts.baud ?? 9600),
      dataBits: 7,
      parity: 'even',
      stopBits: 1,
    },
    watchdogMs: opts.watchdogMs ?? 60_000,
    readTimeoutMs,
    ...(deps.openPort ? { openPort: deps.openPort } : {}),
    onOpen: () => {
      framer.reset();
      endCycle();
      // A read that was waiting for the port signs on now.
      queueMicrotask(() => void signOn());
    },
    onRead: () => void signOn(),
    onData: (chunk) => {
      if (mode === 'c' && phase === 'data') armData?.();
      for (const f of framer.push(chunk)) {
        if (f.kind === 'ident') onIdent(f.line);
        else onData(f.raw, f.bcc);
      }
    },
    timeoutError: (frameError) => {
      endCycle();
      return new DriverError(
        'TIMEOUT',
        mode === 'c'
          ? `no IEC 62056-21 readout from ${opts.port} within ${readTimeoutMs} ms`
          : `no valid IEC 62056-21 data block pushed on ${opts.port} within ${readTimeoutMs} ms (check the optical head and the baud rate)`,
        frameError
          ? { cause: frameError, context: context({ waitedMs: readTimeoutMs }) }
          : { context: context({ waitedMs: readTimeoutMs }) },
      );
    },
  });

  return streamReader(
    opts.id,
    stream,
    () => ({
      ...framer.stats,
      ...c,
      ...(identification ? { identification } : {}),
      baudLog: [...baudLog],
    }),
    () => {
      endCycle();
      cycle++;
    },
  );
}

/** The mode C Z to ask for: the meter's offer, capped at `max` (the highest mode C speed not above it). */
export function pickModeC(offered: number, max: number | undefined): string {
  const speeds = [19200, 9600, 4800, 2400, 1200, 600, 300];
  const best = speeds.find((s) => s <= offered && (max === undefined || s <= max)) ?? SIGN_ON_BAUD;
  return modeCBaudChar(best) as string;
}

export type { IecMode };
