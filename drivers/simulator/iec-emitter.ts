/**
 * The IEC 62056-21 side of the simulator: an optical D0 port with the apartment model behind it.
 *
 * Mode C: listens at 300 baud 7E1 for the sign-on `/?!` CR LF (or `/?<address>!`), answers with the
 * identification `/SIM<Z>ML100`, waits for the ACK option select, switches to the speed the ACK asks for
 * (`onRequest` reports it: a pty does not really change speed, so tests check the protocol there), sends the
 * data message and drops back to 300 baud. Mode D: pushes identification + data message every interval.
 *
 * Faults, by request/push number: bad BCC, truncated message, noise before the message, silent (no answer to
 * the sign-on: every Nth or always).
 */
import type { SerialPort } from 'serialport';
import { modeCBaud, parseAckOptionSelect, transmitMs } from '../iec62056/protocol.js';
import { createApartmentModel, type ApartmentState } from './apartment-model.js';
import { applyFaults, every, openSimPort, startPushLoop, writePort, type FrameKind } from './emitter-core.js';
import { frameIecBlock, renderIecBlock } from './iec-render.js';
import { seededRandom } from './random.js';

export interface IecEmitterFaults {
  readonly badBccEvery?: number | undefined;
  readonly truncateEvery?: number | undefined;
  readonly noiseEvery?: number | undefined;
  /** Mode C: no answer to every Nth sign-on. */
  readonly silentEvery?: number | undefined;
  /** Mode C: never answer (a head that does not sit on the port). */
  readonly silent?: boolean | undefined;
}

export interface IecEmitterOptions {
  readonly path: string;
  readonly mode?: 'c' | 'd';
  /** Mode C: the Z character offered in the identification (default `5`, 9600). Mode D: the push speed. */
  readonly z?: string;
  /** Mode D: push speed (default 9600). */
  readonly baud?: number;
  /** Mode D: time between pushes (default 1 s). */
  readonly intervalMs?: number;
  /** Model time per data message (default 1 s). */
  readonly stepMs?: number;
  readonly seed?: number;
  readonly serial?: string;
  /** Mode D: send the block bare (no STX/ETX/BCC), as EasyMeter/Hager push meters do. */
  readonly bare?: boolean;
  readonly count?: number;
  readonly faults?: IecEmitterFaults;
  readonly onMessage?: (m: IecEmittedMessage) => void;
  readonly onPortError?: (err: Error) => void;
}

export interface IecEmittedMessage {
  readonly index: number;
  readonly kind: FrameKind | 'silent';
  readonly bytes: Buffer;
  readonly state: ApartmentState;
  /** Mode C: the Z the ACK asked for, and its speed. */
  readonly askedZ?: string;
  readonly askedBaud?: number;
}

export interface IecEmitter {
  readonly sent: number;
  readonly goodSent: number;
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export const defaultIecSerial = '001SIM0012345678';
const START = Date.UTC(2024, 5, 1, 10);
/** The simulated meter's response time after the ACK (the standard allows 200–1500 ms). */
const RESPONSE_MS = 1000;

export function iecModelStates(seed: number, stepMs: number): (index: number) => ApartmentState {
  const model = createApartmentModel(seed, { start: START });
  return (index) => {
    model.advanceTo(START + index * stepMs);
    return model.state();
  };
}

export async function startIecEmitter(opts: IecEmitterOptions): Promise<IecEmitter> {
  const mode = opts.mode ?? 'c';
  const faults = opts.faults ?? {};
  const stepMs = opts.stepMs ?? 1000;
  const stateAt = iecModelStates(opts.seed ?? 1, stepMs);
  const rnd = seededRandom((opts.seed ?? 1) ^ 0x1ec);
  const serial = opts.serial ?? defaultIecSerial;
  const z = opts.z ?? '5';
  const message = (index: number, bare: boolean) => {
    const state = stateAt(index);
    const block = renderIecBlock(state, { serial });
    const body = bare ? Buffer.from(`\r\n${block}`, 'latin1') : frameIecBlock(block);
    const f = applyFaults(
      body,
      index,
      {
        truncateEvery: faults.truncateEvery,
        corruptEvery: bare ? undefined : faults.badBccEvery,
        noiseEvery: faults.noiseEvery,
        noiseBytes: 29,
      },
      {
        rnd,
        corrupt: (b) => {
          b[b.length - 1] = (b[b.length - 1] as number) ^ 0x01;
          return b;
        },
      },
    );
    return { ...f, state };
  };

  if (mode === 'd') {
    const states = new Map<number, ApartmentState>();
    const ident = Buffer.from(`/SIM${z}ML100\r\n`, 'latin1');
    const loop = await startPushLoop({
      path: opts.path,
      settings: { baudRate: opts.baud ?? 9600, dataBits: 7, parity: 'even', stopBits: 1 },
      intervalMs: opts.intervalMs ?? 1000,
      count: opts.count,
      onPortError: opts.onPortError,
      frame(index) {
        const m = message(index, opts.bare ?? false);
        states.set(index, m.state);
        // Noise goes before the identification, as a head picks it up between pushes.
        const n = m.noise;
        return { bytes: Buffer.concat([m.bytes.subarray(0, n), ident, m.bytes.subarray(n)]), kind: m.kind };
      },
      sent(index, kind, bytes) {
        const state = states.get(index) as ApartmentState;
        states.delete(index);
        opts.onMessage?.({ index, kind, bytes, state });
      },
    });
    return {
      get sent() {
        return loop.sent;
      },
      get goodSent() {
        return loop.good;
      },
      done: loop.done,
      stop: () => loop.stop(),
    };
  }

  // Mode C: a request/response server.
  const port: SerialPort = await openSimPort(opts.path, {
    baudRate: 300,
    dataBits: 7,
    parity: 'even',
    stopBits: 1,
  });
  port.on('error', (err) => opts.onPortError?.(err));
  let requests = 0;
  let sent = 0;
  let good = 0;
  let stopped = false;
  let buf = Buffer.alloc(0);
  let awaiting: { index: number; timer: NodeJS.Timeout } | undefined;
  let busy = false;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const setBaud = (baudRate: number) =>
    new Promise<void>((resolve) => port.update({ baudRate }, () => resolve()));

  const answer = async (index: number, askedZ: string) => {
    busy = true;
    try {
      const askedBaud = modeCBaud(askedZ) ?? 300;
      // On a real line the ACK takes 200 ms at 300 baud, then the meter waits its response time (200 ms to
      // 1500 ms by the standard) and answers at the new speed. The pty delivers at once: wait both, taking
      // a long response time so that a reader on a busy machine has switched (serialport flushes the line
      // when the speed changes) before the answer comes.
      await new Promise((r) => setTimeout(r, transmitMs(6, 300) + RESPONSE_MS));
      if (stopped) return;
      await setBaud(askedBaud);
      const m = message(index, false);
      await writePort(port, m.bytes);
      sent++;
      if (m.kind === 'good') good++;
      opts.onMessage?.({ index, kind: m.kind, bytes: m.bytes, state: m.state, askedZ, askedBaud });
      // Back to 300 baud on the next sign-on (a speed change flushes the line: not while this one drains).
    } catch (err) {
      opts.onPortError?.(err as Error);
    } finally {
      busy = false;
    }
    if (opts.count !== undefined && sent >= opts.count) {
      stopped = true;
      finish();
    }
  };

  const onBytes = async () => {
    for (;;) {
      if (stopped || busy) return;
      if (awaiting) {
        const ack = buf.indexOf(0x06);
        if (ack < 0 || buf.length < ack + 6) {
          // A new sign-on instead of the ACK: the reader gave up; start over.
          if (buf.indexOf('/?') < 0) return;
          clearTimeout(awaiting.timer);
          awaiting = undefined;
          continue;
        }
        const a = parseAckOptionSelect(buf.subarray(ack, ack + 6));
        buf = buf.subarray(ack + 6);
        const index = awaiting.index;
        clearTimeout(awaiting.timer);
        awaiting = undefined;
        if (a) await answer(index, a.z);
        continue;
      }
      const start = buf.indexOf('/?');
      const end = start < 0 ? -1 : buf.indexOf('!\r\n', start);
      if (end < 0) {
        if (buf.length > 256) buf = buf.subarray(-64);
        return;
      }
      buf = buf.subarray(end + 3);
      const index = ++requests;
      if (faults.silent || every(faults.silentEvery, index)) {
        opts.onMessage?.({ index, kind: 'silent', bytes: Buffer.alloc(0), state: stateAt(index) });
        continue;
      }
      try {
        await setBaud(300);
        await writePort(port, Buffer.from(`/SIM${z}ML100\r\n`, 'latin1'));
      } catch (err) {
        opts.onPortError?.(err as Error);
        continue;
      }
      // The standard gives the reader 1.5 s for its ACK; after that the meter goes back to waiting.
      awaiting = {
        index,
        timer: setTimeout(() => {
          awaiting = undefined;
        }, 5000),
      };
    }
  };
  port.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    void onBytes();
  });

  return {
    get sent() {
      return sent;
    },
    get goodSent() {
      return good;
    },
    done,
    async stop() {
      stopped = true;
      if (awaiting) clearTimeout(awaiting.timer);
      finish();
      if (port.isOpen) await new Promise<void>((r) => port.close(() => r()));
    },
  };
}
