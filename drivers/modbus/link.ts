/**
 * A byte link under the RTU framing: a serial port (RS-485 adapter) or a TCP socket to an RTU-over-TCP
 * gateway. Tiny on purpose (serialport's bindings-interface style): open, write, close, and events.
 */
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { SerialPort } from 'serialport';

export interface ByteLink extends EventEmitter {
  readonly isOpen: boolean;
  open(): Promise<void>;
  write(bytes: Buffer): void;
  close(): Promise<void>;
  // events: 'data' (Buffer), 'close', 'error' (Error)
}

export interface SerialSettings {
  readonly path: string;
  readonly baud: number;
  readonly parity: 'none' | 'even' | 'odd';
  readonly dataBits: 7 | 8;
  readonly stopBits: 1 | 2;
}

export function serialLink(s: SerialSettings): ByteLink {
  const link = new EventEmitter() as EventEmitter & { isOpen: boolean } & ByteLink;
  let port: SerialPort | undefined;
  Object.defineProperty(link, 'isOpen', { get: () => port?.isOpen === true });
  link.open = () =>
    new Promise<void>((resolve, reject) => {
      const p = new SerialPort({
        path: s.path,
        baudRate: s.baud,
        parity: s.parity,
        dataBits: s.dataBits,
        stopBits: s.stopBits,
        autoOpen: false,
      });
      p.open((err) => {
        if (err) return reject(err);
        port = p;
        p.on('data', (d: Buffer) => link.emit('data', d));
        p.on('error', (e: Error) => link.emit('error', e));
        p.on('close', () => link.emit('close'));
        resolve();
      });
    });
  link.write = (bytes) => void port?.write(bytes);
  link.close = () =>
    new Promise<void>((resolve) => {
      const p = port;
      port = undefined;
      if (!p?.isOpen) return resolve();
      p.close(() => resolve());
    });
  return link;
}

export function tcpLink(host: string, port: number, connectTimeout = 5000): ByteLink {
  const link = new EventEmitter() as EventEmitter & ByteLink;
  let sock: Socket | undefined;
  Object.defineProperty(link, 'isOpen', { get: () => sock !== undefined && !sock.destroyed });
  link.open = () =>
    new Promise<void>((resolve, reject) => {
      const s = new Socket();
      const timer = setTimeout(
        () => s.destroy(new Error(`connect to ${host}:${port} timed out`)),
        connectTimeout,
      );
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.connect(port, host, () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.setNoDelay(true);
        sock = s;
        s.on('data', (d: Buffer) => link.emit('data', d));
        s.on('error', (e) => link.emit('error', e));
        s.on('close', () => {
          sock = undefined;
          link.emit('close');
        });
        resolve();
      });
    });
  link.write = (bytes) => void sock?.write(bytes);
  link.close = async () => {
    const s = sock;
    sock = undefined;
    s?.destroy();
  };
  return link;
}
