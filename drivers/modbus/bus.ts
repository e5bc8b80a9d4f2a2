/**
 * A bus: one connection (serial port, TCP socket) and one request queue shared by every meter on it. RS-485
 * is half-duplex and a TCP gateway serialises anyway, so one request at a time per bus (p-queue,
 * concurrency 1), with the RTU inter-frame silence kept between requests. Buses live in a registry keyed by
 * port (or host:port), ref-counted, and are closed when their last meter closes.
 */
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';
import PQueue from 'p-queue';
import { setTimeout as delay } from 'node:timers/promises';
import { DriverError, isDriverError } from '../errors.js';
import { serialLink, tcpLink } from './link.js';
import { RtuFramePort } from './rtu-port.js';

export type ModbusTransport =
  | {
      readonly kind: 'rtu';
      /** Serial device, e.g. /dev/ttyUSB0. */
      readonly port: string;
      readonly baud?: number;
      readonly parity?: 'none' | 'even' | 'odd';
      readonly dataBits?: 7 | 8;
      readonly stopBits?: 1 | 2;
    }
  | { readonly kind: 'tcp'; readonly host: string; /** Default 502. */ readonly port?: number }
  | { readonly kind: 'rtu-over-tcp'; readonly host: string; readonly port: number };

export interface RegisterRequest {
  readonly unit: number;
  readonly fn: 3 | 4;
  readonly address: number;
  readonly count: number;
  readonly timeout: number;
}

export function busKey(t: ModbusTransport): string {
  if (t.kind === 'rtu') return `rtu:${t.port}`;
  return `${t.kind}:${t.host}:${t.kind === 'tcp' ? (t.port ?? 502) : t.port}`;
}

function describe(t: ModbusTransport): string {
  return t.kind === 'rtu' ? t.port : `${t.host}:${t.kind === 'tcp' ? (t.port ?? 502) : t.port}`;
}

/** RTU silence between frames: 3.5 character times (11 bits each), fixed 1.75 ms above 19200 baud. */
export function interFrameMs(baud: number): number {
  return baud > 19200 ? 1.75 : (3.5 * 11 * 1000) / baud;
}

type Client = ModbusClient;
// modbus-serial is CommonJS whose typings declare an ES default export; the class is module.exports itself.
const ModbusRTU = ModbusSerial as unknown as new (port?: unknown) => Client;

export class ModbusBus {
  readonly key: string;
  refs = 0;
  private readonly queue = new PQueue({ concurrency: 1 });
  private client: Client | undefined;
  private framePort: RtuFramePort | undefined;
  private everOpen = false;
  private lastIo = 0;
  private readonly silenceMs: number;

  constructor(readonly transport: ModbusTransport) {
    this.key = busKey(transport);
    this.silenceMs = transport.kind === 'rtu' ? interFrameMs(transport.baud ?? 9600) : 0;
  }

  /** Queued read of `count` registers; resolves with the raw register bytes (2 per register). */
  read(req: RegisterRequest): Promise<Buffer> {
    return this.queue.add(() => this.exchange(req)) as Promise<Buffer>;
  }

  private async exchange(req: RegisterRequest): Promise<Buffer> {
    const client = await this.connect();
    const wait = this.lastIo + this.silenceMs - performance.now();
    if (wait > 0) await delay(wait);
    client.setID(req.unit);
    client.setTimeout(req.timeout);
    try {
      const res =
        req.fn === 3
          ? await client.readHoldingRegisters(req.address, req.count)
          : await client.readInputRegisters(req.address, req.count);
      return res.buffer;
    } catch (err) {
      throw this.mapError(err, req);
    } finally {
      this.lastIo = performance.now();
    }
  }

  private async connect(): Promise<Client> {
    if (this.client?.isOpen) return this.client;
    await this.dropClient();
    const t = this.transport;
    let client: Client;
    try {
      if (t.kind === 'tcp') {
        client = new ModbusRTU();
        await client.connectTCP(t.host, { port: t.port ?? 502 });
      } else {
        const link =
          t.kind === 'rtu'
            ? serialLink({
                path: t.port,
                baud: t.baud ?? 9600,
                parity: t.parity ?? 'none',
                dataBits: t.dataBits ?? 8,
                stopBits: t.stopBits ?? 1,
              })
            : tcpLink(t.host, t.port);
        // A frame that never completes is declared bad after this much quiet (generous: ptys and gateways
        // deliver in bursts, so the 3.5-character rule alone would cut frames).
        const port = new RtuFramePort(link, Math.max(30, this.silenceMs * 4));
        client = new ModbusRTU(port);
        await new Promise<void>((resolve, reject) =>
          client.open((e: Error | null) => (e ? reject(e) : resolve())),
        );
        this.framePort = port;
      }
    } catch (err) {
      throw new DriverError(
        this.everOpen ? 'PORT_GONE' : 'PORT_OPEN_FAILED',
        `cannot open Modbus ${t.kind} ${describe(t)}: ${(err as Error).message}` +
          (t.kind === 'rtu' ? ' (is the adapter plugged in, and is the user in the dialout group?)' : ''),
        { cause: err, context: { bus: this.key } },
      );
    }
    // Errors after open surface through the failed request; the listener keeps them from being unhandled.
    client.on('error', () => undefined);
    this.client = client;
    this.everOpen = true;
    return client;
  }

  private mapError(err: unknown, req: RegisterRequest): DriverError {
    if (isDriverError(err)) return err;
    const e = err as { errno?: string; modbusCode?: number; message?: string; name?: string };
    const context = { bus: this.key, unit: req.unit, fn: req.fn, address: req.address, count: req.count };
    const issue = this.framePort?.lastIssue;
    const where = `unit ${req.unit} on ${describe(this.transport)}, fn ${req.fn} @${req.address}+${req.count}`;
    if (issue === 'wrong-unit')
      return new DriverError('WRONG_UNIT', `answer from another unit id (${where})`, { cause: err, context });
    if (issue === 'crc')
      return new DriverError('CRC', `bad CRC in the answer (${where})`, { cause: err, context });
    if (typeof e.modbusCode === 'number')
      return new DriverError('MODBUS_EXCEPTION', `Modbus exception ${e.modbusCode} (${where})`, {
        cause: err,
        context: { ...context, exceptionCode: e.modbusCode },
      });
    if (!this.client?.isOpen || e.errno === 'ECONNREFUSED' || e.name === 'PortNotOpenError')
      return new DriverError('PORT_GONE', `the connection went away (${where})`, { cause: err, context });
    if (e.errno === 'ETIMEDOUT')
      return new DriverError('TIMEOUT', `no answer within ${req.timeout} ms (${where})`, {
        cause: err,
        context,
      });
    // modbus-serial's TCP port reports a foreign unit id only in its message text; this is the one place
    // we read it, at the adapter boundary.
    if (/expected address/.test(e.message ?? ''))
      return new DriverError('WRONG_UNIT', `answer from another unit id (${where})`, { cause: err, context });
    return new DriverError('BAD_FRAME', `malformed answer: ${e.message ?? String(err)} (${where})`, {
      cause: err,
      context,
    });
  }

  private async dropClient(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.framePort = undefined;
    if (!c) return;
    await new Promise<void>((resolve) => {
      // modbus-serial's TCP port calls back only on a 'close' event, which a dead socket never sends again.
      if (!c.isOpen) return resolve();
      const timer = setTimeout(resolve, 1000);
      try {
        c.close(() => {
          clearTimeout(timer);
          resolve();
        });
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  async close(): Promise<void> {
    await this.queue.onIdle();
    await this.dropClient();
  }
}

const registry = new Map<string, ModbusBus>();

/** The shared bus for a transport (created on first use); release it with `releaseBus`. */
export function acquireBus(transport: ModbusTransport): ModbusBus {
  const key = busKey(transport);
  let bus = registry.get(key);
  if (bus && transport.kind === 'rtu' && bus.transport.kind === 'rtu') {
    const a = bus.transport;
    if (
      (a.baud ?? 9600) !== (transport.baud ?? 9600) ||
      (a.parity ?? 'none') !== (transport.parity ?? 'none')
    )
      throw new DriverError(
        'PORT_OPEN_FAILED',
        `meters on ${transport.port} disagree on serial settings (${a.baud ?? 9600} ${a.parity ?? 'none'} vs ` +
          `${transport.baud ?? 9600} ${transport.parity ?? 'none'}): one RS-485 bus has one baud rate and parity`,
        { context: { bus: key } },
      );
  }
  if (!bus) {
    bus = new ModbusBus(transport);
    registry.set(key, bus);
  }
  bus.refs++;
  return bus;
}

export async function releaseBus(bus: ModbusBus): Promise<void> {
  bus.refs--;
  if (bus.refs > 0) return;
  if (registry.get(bus.key) === bus) registry.delete(bus.key);
  await bus.close();
}

/** Keys of the buses currently open (for tests and `status`). */
export function openBuses(): string[] {
  return [...registry.keys()];
}
