/**
 * The serial port as the streaming readers (DSMR, SML, IEC 62056-21) need it: bytes in, a close notice, close;
 * bytes out and a speed change for request/response protocols. The default opens a real
 * port with `serialport`; tests and other transports (a P1-over-TCP bridge) inject their own.
 */
import { SerialPort } from 'serialport';
import { DriverError } from '../errors.js';

export interface P1LineSettings {
  readonly baudRate: number;
  readonly dataBits: 7 | 8;
  readonly parity: 'none' | 'even';
  readonly stopBits: 1;
}

export interface P1Port {
  onData(listener: (chunk: Buffer) => void): void;
  /** Called once when the port goes away by itself (unplugged); not after `close()`. */
  onLost(listener: (err: Error | undefined) => void): void;
  close(): Promise<void>;
  /** Sends bytes (request/response protocols: the IEC 62056-21 sign-on); resolves once handed to the OS. */
  write?(bytes: Buffer): Promise<void>;
  /** Changes the line speed on the open port (the IEC 62056-21 baud switch). */
  setBaud?(baudRate: number): Promise<void>;
}

export type OpenP1Port = (path: string, settings: P1LineSettings) => Promise<P1Port>;

/** Opens `path` with serialport; failures become `PORT_OPEN_FAILED` with the port in the context. */
export const openSerialP1Port: OpenP1Port = async (path, settings) => {
  const port = new SerialPort({ path, ...settings, autoOpen: false });
  await new Promise<void>((resolve, reject) =>
    port.open((err) =>
      err
        ? reject(
            new DriverError('PORT_OPEN_FAILED', `cannot open P1 port ${path}: ${err.message}`, {
              cause: err,
              context: { port: path },
            }),
          )
        : resolve(),
    ),
  );
  // Drop what the kernel buffered while nobody was reading: stale telegrams would look current.
  await new Promise<void>((resolve) => port.flush(() => resolve()));
  let closing = false;
  let lost: ((err: Error | undefined) => void) | undefined;
  port.on('error', () => {
    // Errors after open surface as 'close' with a disconnect error; nothing to do here but not crash.
  });
  port.on('close', (err: Error | null) => {
    if (!closing) lost?.(err ?? undefined);
  });
  return {
    onData: (listener) => void port.on('data', listener),
    onLost: (listener) => void (lost = listener),
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
    write: (bytes) =>
      new Promise<void>((resolve, reject) => port.write(bytes, (err) => (err ? reject(err) : resolve()))),
    setBaud: (baudRate) =>
      new Promise<void>((resolve, reject) =>
        port.update({ baudRate }, (err) => (err ? reject(err) : resolve())),
      ),
  };
};
