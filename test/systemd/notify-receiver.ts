/**
 * A real sd_notify receiver for tests: a python3 unix datagram socket with SO_PASSCRED, standing in for
 * systemd's notify socket. Every datagram is reported with the sender's PID from SCM_CREDENTIALS, which is
 * what systemd uses to attribute a message to a unit. (Own helper: test/harness has no such fixture.)
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnLogged } from '../harness/process.js';
import { tempDir, type Teardown } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

export interface Datagram {
  /** The sender's PID as the kernel stamped it (SCM_CREDENTIALS). */
  pid: number | null;
  data: string;
}

export interface NotifyReceiver {
  /** The value for NOTIFY_SOCKET ("@name" for an abstract socket). */
  readonly notifySocket: string;
  readonly datagrams: Datagram[];
  /** Every field received so far, one entry per line of every datagram, in order. */
  lines(): string[];
  /** Waits until `line` has been received (at least `count` times). */
  waitForLine(line: string, count?: number): Promise<void>;
}

const receiverPy = `
import json, os, socket, struct, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({'listening': True}), flush=True)
while True:
    data, anc, flags, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', payload[:12])[0]
    print(json.dumps({'pid': pid, 'data': data.decode('utf-8', 'replace')}), flush=True)
`;

export async function startNotifyReceiver(
  t: Teardown,
  opts: { abstract?: boolean } = {},
): Promise<NotifyReceiver> {
  const notifySocket = opts.abstract
    ? `@meterlink-test-${randomBytes(6).toString('hex')}`
    : join(await tempDir(t, 'ml-notify-'), 'notify');
  const proc = spawnLogged('python3', ['-c', receiverPy, notifySocket]);
  t.teardown(() => proc.kill());
  const datagrams: Datagram[] = [];
  let listening = false;
  let partial = '';
  proc.child.stdout?.on('data', (b: Buffer) => {
    partial += b.toString('utf8');
    const rows = partial.split('\n');
    partial = rows.pop() ?? '';
    for (const row of rows) {
      const msg = JSON.parse(row) as { listening?: boolean } & Datagram;
      if (msg.listening) listening = true;
      else datagrams.push({ pid: msg.pid, data: msg.data });
    }
  });
  await waitFor(() => listening || proc.child.exitCode !== null, { what: 'the notify receiver' });
  if (!listening) throw new Error(`notify receiver did not start: ${proc.output()}`);
  const lines = () => datagrams.flatMap((d) => d.data.split('\n').filter((l) => l !== ''));
  return {
    notifySocket,
    datagrams,
    lines,
    async waitForLine(line, count = 1) {
      await waitFor(() => lines().filter((l) => l === line).length >= count, {
        timeout: 15_000,
        what: `${count}× "${line}" on the notify socket (got ${JSON.stringify(lines())})`,
      });
    },
  };
}
