/**
 * The Modbus meter simulator: one or more unit ids, each a built-in (or inline) profile fed by its own
 * apartment model, served as an RTU slave on a serial path, or as a TCP server (MBAP, or RTU frames over
 * TCP like a serial gateway). Written by hand rather than on modbus-serial's servers so that it can break
 * the protocol on purpose: drop answers, corrupt the CRC, answer with an exception, answer slowly, answer
 * as another unit id.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { SerialPort } from 'serialport';
import { valueToNumber } from '../../cloud-contract/sample.js';
import { crcOk, withCrc } from '../modbus/crc.js';
import { decodeRegister, encodeRegister } from '../modbus/codec.js';
import { resolveProfile } from '../modbus/meter.js';
import { registerSpans } from '../modbus/planner.js';
import { functionCode, registerWords, type ModbusProfile, type RegisterDef } from '../modbus/profile.js';
import { createApartmentModel, seededRandom, type ApartmentModel } from './apartment-model.js';

export interface SimFaults {
  /** Probability (0–1) that a request gets no answer at all. */
  readonly dropRate?: number;
  /** Probability that the answer's CRC is corrupted (RTU framing only). */
  readonly corruptCrcRate?: number;
  /** Answer with this Modbus exception code (1–4, 0x0A, 0x0B, …) … */
  readonly exception?: number;
  /** … with this probability (default 1 when `exception` is set). */
  readonly exceptionRate?: number;
  /** Delay every answer by this many ms. */
  readonly delayMs?: number;
  /** Answer as this unit id instead of the one asked. */
  readonly wrongUnit?: number;
}

export interface SimUnitOptions {
  readonly unit: number;
  readonly profile: string | ModbusProfile;
  /** Seed of this unit's apartment model (default: the unit id). */
  readonly seed?: number;
  readonly faults?: SimFaults;
}

export type SimTransport =
  | {
      readonly kind: 'rtu';
      readonly path: string;
      readonly baud?: number;
      readonly parity?: 'none' | 'even' | 'odd';
    }
  | {
      readonly kind: 'tcp';
      /** 0 or absent: a free port (see `ModbusSimulator.port`). */
      readonly port?: number;
      readonly host?: string;
      /** `mbap` (Modbus TCP, default) or `rtu` (RTU frames over TCP, like a serial gateway). */
      readonly framing?: 'mbap' | 'rtu';
    };

export interface ModbusSimulatorOptions {
  readonly transport: SimTransport;
  readonly units: readonly SimUnitOptions[];
  /** Clock of the value models, ms (inject a fixed clock to freeze values). Default Date.now. */
  readonly now?: () => number;
  /** Seed of the fault dice. */
  readonly seed?: number;
}

export interface SimUnit {
  readonly unit: number;
  readonly profile: ModbusProfile;
  readonly model: ApartmentModel;
  faults: SimFaults;
  /** Requests addressed to this unit, and answers actually sent. */
  requests: number;
  answers: number;
  /** Channel → value as last served (after the register's own rounding). */
  readonly served: Record<string, number>;
  /** Channel → value the registers hold right now (what a read at this instant must return). */
  expected(): Record<string, number>;
}

export interface ModbusSimulator {
  /** TCP port listened on (TCP transport). */
  readonly port: number | undefined;
  readonly units: ReadonlyMap<number, SimUnit>;
  unit(id: number): SimUnit;
  setFaults(unit: number, faults: SimFaults): void;
  stop(): Promise<void>;
}

interface Answer {
  readonly unit: number;
  /** PDU: function code + data, or exception. */
  readonly pdu: Buffer;
}

const exceptionPdu = (fn: number, code: number) => Buffer.from([fn | 0x80, code]);

function registerBank(profile: ModbusProfile) {
  const spans = registerSpans(profile);
  const base = profile.addressBase ?? 0;
  const lookup = new Map<number, Map<number, { reg: RegisterDef; word: number }>>();
  const bounds = new Map<number, [number, number]>();
  for (const [fn, list] of spans) {
    const m = new Map<number, { reg: RegisterDef; word: number }>();
    for (const s of list) for (let w = 0; w <= s.to - s.from; w++) m.set(s.from + w, { reg: s.reg, word: w });
    lookup.set(fn, m);
    bounds.set(fn, [list[0]!.from, Math.max(...list.map((s) => s.to))]);
  }
  const refused = (fn: number, from: number, to: number) =>
    (profile.refused ?? []).some(
      (r) => functionCode[r.function] === fn && from <= r.to - base && to >= r.from - base,
    );
  return { lookup, bounds, refused };
}

export async function startModbusSimulator(opts: ModbusSimulatorOptions): Promise<ModbusSimulator> {
  const now = opts.now ?? Date.now;
  const dice = seededRandom(opts.seed ?? 7);
  const units = new Map<number, SimUnit & { bank: ReturnType<typeof registerBank> }>();
  for (const u of opts.units) {
    const profile = resolveProfile(u.profile, `simulated unit ${u.unit} profile`);
    const model = createApartmentModel(u.seed ?? u.unit, { phases: profile.phases, start: now() });
    const encodeAll = (): Record<string, number> => {
      model.advanceTo(now());
      const ch = model.channels();
      const out: Record<string, number> = {};
      for (const reg of profile.registers) {
        const d = decodeRegister(reg, encodeRegister(reg, ch[reg.channel] ?? 0));
        if (d.ok) out[reg.channel] = valueToNumber(d.value);
      }
      return out;
    };
    units.set(u.unit, {
      unit: u.unit,
      profile,
      model,
      faults: u.faults ?? {},
      requests: 0,
      answers: 0,
      served: {},
      expected: encodeAll,
      bank: registerBank(profile),
    });
  }

  const roll = (p: number | undefined) => p !== undefined && p > 0 && (p >= 1 || dice() < p);

  /** The answer to one request PDU, or undefined to stay silent. */
  const handle = (unitId: number, pdu: Buffer): Answer | undefined => {
    const u = units.get(unitId);
    if (!u) return undefined; // another meter's address: an RS-485 slave stays silent
    u.requests++;
    const f = u.faults;
    if (roll(f.dropRate)) return undefined;
    const fn = pdu[0]!;
    const answerUnit = f.wrongUnit ?? unitId;
    if (f.exception !== undefined && roll(f.exceptionRate ?? 1))
      return { unit: answerUnit, pdu: exceptionPdu(fn, f.exception) };
    if (fn !== 3 && fn !== 4) return { unit: answerUnit, pdu: exceptionPdu(fn, 1) };
    if (pdu.length < 5) return { unit: answerUnit, pdu: exceptionPdu(fn, 3) };
    const address = pdu.readUInt16BE(1);
    const count = pdu.readUInt16BE(3);
    if (count < 1 || count > (u.profile.maxRegisters ?? 125))
      return { unit: answerUnit, pdu: exceptionPdu(fn, 3) };
    const b = u.bank.bounds.get(fn);
    const end = address + count - 1;
    if (!b || address < b[0] || end > b[1] || u.bank.refused(fn, address, end))
      return { unit: answerUnit, pdu: exceptionPdu(fn, 2) };
    u.model.advanceTo(now());
    const ch = u.model.channels();
    const words = Buffer.alloc(count * 2);
    const encoded = new Map<RegisterDef, Buffer>();
    const m = u.bank.lookup.get(fn)!;
    for (let a = address; a <= end; a++) {
      const hit = m.get(a);
      if (!hit) continue; // an unused register inside the map reads as 0
      let bytes = encoded.get(hit.reg);
      if (!bytes) {
        bytes = encodeRegister(hit.reg, ch[hit.reg.channel] ?? 0);
        encoded.set(hit.reg, bytes);
        if (hit.word === 0 && a + registerWords[hit.reg.type] - 1 <= end) {
          const d = decodeRegister(hit.reg, bytes);
          if (d.ok) u.served[hit.reg.channel] = valueToNumber(d.value);
        }
      }
      bytes.copy(words, (a - address) * 2, hit.word * 2, hit.word * 2 + 2);
    }
    u.answers++;
    return { unit: answerUnit, pdu: Buffer.concat([Buffer.from([fn, count * 2]), words]) };
  };

  const later = (unitId: number, send: () => void) => {
    const d = units.get(unitId)?.faults.delayMs ?? 0;
    if (d > 0) setTimeout(send, d).unref();
    else send();
  };

  const rtuAnswer = (a: Answer, requestedUnit: number): Buffer => {
    const frame = withCrc(Buffer.concat([Buffer.from([a.unit]), a.pdu]));
    if (roll(units.get(requestedUnit)?.faults.corruptCrcRate)) frame[frame.length - 1]! ^= 0xff;
    return frame;
  };

  /** Consumes complete RTU request frames from `buf`, answering through `write`; returns the rest. */
  const rtuConsume = (input: Buffer, write: (b: Buffer) => void): Buffer => {
    let buf = input;
    while (buf.length >= 8) {
      const frame = buf.subarray(0, 8);
      if (!crcOk(frame)) {
        buf = buf.subarray(1); // resynchronise on garbage
        continue;
      }
      buf = buf.subarray(8);
      const unitId = frame[0]!;
      const ans = handle(unitId, frame.subarray(1, 6));
      if (ans) later(unitId, () => write(rtuAnswer(ans, unitId)));
    }
    return buf;
  };

  let stopped = false;
  const closers: (() => Promise<void>)[] = [];
  let tcpPort: number | undefined;
  const t = opts.transport;

  if (t.kind === 'rtu') {
    let port: SerialPort | undefined;
    let retry: NodeJS.Timeout | undefined;
    const open = () =>
      new Promise<void>((resolve, reject) => {
        const p = new SerialPort({
          path: t.path,
          baudRate: t.baud ?? 9600,
          parity: t.parity ?? 'none',
          autoOpen: false,
        });
        p.open((err) => {
          if (err) return reject(err);
          let buf: Buffer = Buffer.alloc(0);
          p.on('data', (d: Buffer) => {
            buf = rtuConsume(Buffer.concat([buf, d]), (b) => p.isOpen && p.write(b));
          });
          p.on('error', () => undefined);
          // The path vanished (adapter unplugged): keep trying until it is back, like a meter that powers up.
          p.on('close', () => {
            port = undefined;
            if (!stopped) scheduleReopen();
          });
          port = p;
          resolve();
        });
      });
    const scheduleReopen = () => {
      retry = setTimeout(() => {
        if (stopped) return;
        open().catch(scheduleReopen);
      }, 50);
    };
    await open();
    closers.push(async () => {
      if (retry) clearTimeout(retry);
      const p = port;
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    });
  } else {
    const sockets = new Set<Socket>();
    const server: Server = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => undefined);
      let buf: Buffer = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (t.framing === 'rtu') {
          buf = rtuConsume(buf, (b) => !sock.destroyed && sock.write(b));
          return;
        }
        while (buf.length >= 7) {
          const len = buf.readUInt16BE(4);
          if (buf.length < 6 + len) break;
          const frame = buf.subarray(0, 6 + len);
          buf = buf.subarray(6 + len);
          const unitId = frame[6]!;
          const ans = handle(unitId, frame.subarray(7));
          if (!ans) continue;
          const head = Buffer.alloc(7);
          head.writeUInt16BE(frame.readUInt16BE(0), 0);
          head.writeUInt16BE(0, 2);
          head.writeUInt16BE(ans.pdu.length + 1, 4);
          head[6] = ans.unit;
          later(unitId, () => !sock.destroyed && sock.write(Buffer.concat([head, ans.pdu])));
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(t.port ?? 0, t.host ?? '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    tcpPort = typeof addr === 'object' && addr ? addr.port : undefined;
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    );
  }

  const unit = (id: number): SimUnit => {
    const u = units.get(id);
    if (!u) throw new Error(`the simulator serves no unit ${id}`);
    return u;
  };
  return {
    port: tcpPort,
    units,
    unit,
    setFaults(id, faults) {
      unit(id).faults = faults;
    },
    async stop() {
      stopped = true;
      for (const c of closers) await c();
    },
  };
}
