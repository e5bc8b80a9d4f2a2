import t from 'tap';
import { SerialPort } from 'serialport';
import { startPtyPair } from './pty.js';
import { lstat } from 'node:fs/promises';

function open(path: string): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate: 9600 }, (err) => (err ? reject(err) : resolve(port)));
  });
}
function close(port: SerialPort): Promise<void> {
  return new Promise((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
}
function readExactly(port: SerialPort, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let len = 0;
    const onData = (b: Buffer) => {
      chunks.push(b);
      len += b.length;
      if (len >= n) {
        port.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    port.on('data', onData);
  });
}

t.test('bytes written at one end arrive at the other through serialport', async (t) => {
  const pty = await startPtyPair(t);
  const [a, b] = await Promise.all([open(pty.a), open(pty.b)]);
  t.teardown(() => Promise.all([close(a), close(b)]));

  // Every byte value, including 0x00, 0x11/0x13 (XON/XOFF) and CR/LF: the line must be raw, 8-bit clean.
  const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const got = readExactly(b, payload.length);
  a.write(payload);
  t.same(await got, payload, 'A → B, all 256 byte values unchanged');

  const back = readExactly(a, 3);
  b.write(Buffer.from([0x01, 0x03, 0xff]));
  t.same(await back, Buffer.from([0x01, 0x03, 0xff]), 'B → A');
});

t.test('unplug removes both ends, replug brings them back on the same paths', async (t) => {
  const pty = await startPtyPair(t);
  await pty.unplug();
  await t.rejects(lstat(pty.a), 'end A gone after unplug');
  await t.rejects(lstat(pty.b), 'end B gone after unplug');
  await pty.replug();
  const [a, b] = await Promise.all([open(pty.a), open(pty.b)]);
  t.teardown(() => Promise.all([close(a), close(b)]));
  const got = readExactly(b, 4);
  a.write('ping');
  t.equal((await got).toString(), 'ping', 'data flows after replug');
});
