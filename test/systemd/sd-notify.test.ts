import t from 'tap';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createNotifier,
  findOnPath,
  flattenStatus,
  maxStatusLength,
  watchdogIntervalMs,
  watchdogTimeoutMs,
  type HelperName,
  type RuntimeLog,
} from '../../agent/runtime/sd-notify.js';
import { repoRoot, tsNodeArgs } from '../harness/cli.js';
import { spawnLogged } from '../harness/process.js';
import { tempDir } from '../harness/tmp.js';
import { startNotifyReceiver } from './notify-receiver.js';

interface Logged {
  level: 'info' | 'warn';
  obj: object;
  msg: string;
}

function captureLog(): RuntimeLog & { entries: Logged[]; warnings(): Logged[] } {
  const entries: Logged[] = [];
  return {
    entries,
    info: (obj, msg) => void entries.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => void entries.push({ level: 'warn', obj, msg }),
    warnings: () => entries.filter((e) => e.level === 'warn'),
  };
}

const expected = [
  'READY=1',
  'STATUS=polling 3 meters, buffer 0',
  'WATCHDOG=1',
  'EXTEND_TIMEOUT_USEC=5000000',
];

t.test('without NOTIFY_SOCKET every call is a silent no-op', async (t) => {
  const log = captureLog();
  const n = createNotifier({ env: { PATH: process.env.PATH }, log });
  t.equal(n.mode, 'off');
  n.ready();
  n.status('x');
  n.watchdog();
  n.extendTimeout(1000);
  n.stopping();
  await n.close();
  t.same(log.entries, []);
});

for (const helper of ['socat', 'python3'] as HelperName[]) {
  t.test(`helper mode (${helper}): the exact messages arrive in order`, async (t) => {
    const rx = await startNotifyReceiver(t);
    const log = captureLog();
    const n = createNotifier({
      env: { ...process.env, NOTIFY_SOCKET: rx.notifySocket },
      log,
      helpers: [helper],
    });
    t.teardown(() => n.close());
    t.equal(n.mode, 'helper');
    t.match(log.entries[0], { level: 'info', msg: /NotifyAccess=all/ });
    n.ready();
    n.status('polling 3 meters,\nbuffer 0');
    n.watchdog();
    n.extendTimeout(5000);
    n.stopping();
    await rx.waitForLine('STOPPING=1');
    t.same(rx.lines(), [...expected, 'STOPPING=1']);
    await n.close();
    t.equal(n.mode, 'off', 'closed');
    n.ready(); // after close: dropped, no throw
    await n.close(); // twice is fine
    t.same(log.warnings(), [], 'a normal close is not a failure');
  });
}

t.test('helper mode reaches an abstract-namespace socket (@name)', async (t) => {
  const rx = await startNotifyReceiver(t, { abstract: true });
  const n = createNotifier({ env: { ...process.env, NOTIFY_SOCKET: rx.notifySocket }, log: captureLog() });
  t.teardown(() => n.close());
  n.ready();
  await rx.waitForLine('READY=1');
  t.same(rx.lines(), ['READY=1']);
});

t.test('no helper on PATH: logged once, then no-ops', async (t) => {
  const empty = await tempDir(t);
  const log = captureLog();
  const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/nowhere', PATH: empty }, log });
  t.equal(n.mode, 'off');
  n.ready();
  n.watchdog();
  await n.close();
  t.equal(log.warnings().length, 1);
  t.match(log.warnings()[0]?.msg, /no helper found.*notify-exec/);
});

t.test('a helper that dies (socket refused) is logged once and never crashes the agent', async (t) => {
  const dir = await tempDir(t);
  const log = captureLog();
  const n = createNotifier({
    env: { ...process.env, NOTIFY_SOCKET: join(dir, 'missing.sock') },
    log,
    helpers: ['socat'],
  });
  t.teardown(() => n.close());
  n.ready();
  const { waitFor } = await import('../harness/wait.js');
  await waitFor(() => n.mode === 'off', { what: 'the helper to fail' });
  for (let i = 0; i < 5; i++) n.watchdog();
  t.equal(log.warnings().length, 1);
  t.match(log.warnings()[0], { msg: /helper stopped/, obj: { stderr: /./ } });
});

t.test('close() kills a helper that does not exit on EOF', async (t) => {
  // `socat -u STDIN UNIX-SENDTO` exits on EOF; a helper stuck elsewhere must not hang shutdown. `sleep`
  // standing in for a wedged helper: a PATH with only a "socat" that ignores its stdin.
  const dir = await tempDir(t);
  const { writeFileSync, chmodSync } = await import('node:fs');
  writeFileSync(join(dir, 'socat'), '#!/bin/sh\nexec sleep 30\n');
  chmodSync(join(dir, 'socat'), 0o755);
  const log = captureLog();
  const n = createNotifier({
    env: { NOTIFY_SOCKET: '/run/x', PATH: `${dir}:/usr/bin:/bin` },
    log,
    helpers: ['socat'],
    closeTimeoutMs: 200,
  });
  n.ready();
  await n.close();
  t.equal(n.mode, 'off');
  t.same(log.warnings(), []);
});

t.test('fd mode writes one datagram per message to the inherited descriptor', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'sent');
  const fd = openSync(file, 'a');
  const log = captureLog();
  const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/x', METERLINK_NOTIFY_FD: String(fd) }, log });
  t.equal(n.mode, 'fd');
  n.ready();
  n.status('a'.repeat(500));
  n.stopping();
  await n.close();
  t.equal(n.mode, 'off');
  n.watchdog(); // after close: dropped
  await n.close();
  t.equal(readFileSync(file, 'utf8'), `READY=1STATUS=${'a'.repeat(maxStatusLength - 1)}…STOPPING=1`);
  t.same(log.entries, []);
});

t.test('fd mode: an unusable descriptor is logged once and switches sd_notify off', async (t) => {
  const dir = await tempDir(t);
  const fd = openSync(join(dir, 'f'), 'a');
  closeSync(fd);
  const log = captureLog();
  const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/x', METERLINK_NOTIFY_FD: String(fd) }, log });
  n.ready();
  n.watchdog();
  t.equal(n.mode, 'off');
  t.equal(log.warnings().length, 1);
  t.match(log.warnings()[0], { obj: { code: 'EBADF' }, msg: /unusable/ });
  await n.close();
});

t.test('notify-exec: messages leave from the main PID (what NotifyAccess=main accepts)', async (t) => {
  const rx = await startNotifyReceiver(t);
  const child = spawnLogged(
    join(repoRoot, 'systemd/notify-exec'),
    [process.execPath, ...tsNodeArgs(), join(repoRoot, 'test/systemd/fixtures/notify-child.ts')],
    { cwd: repoRoot, env: { ...process.env, NOTIFY_SOCKET: rx.notifySocket } },
  );
  t.teardown(() => child.kill());
  await child.exited();
  t.equal(child.child.exitCode, 0, child.output());
  const info = JSON.parse(
    child
      .output()
      .split('\n')
      .find((l) => l.startsWith('{')) ?? '{}',
  ) as {
    mode?: string;
    pid?: number;
  };
  t.equal(info.mode, 'fd');
  t.equal(info.pid, child.child.pid, 'notify-exec exec()s: the agent keeps the PID systemd started');
  await rx.waitForLine('STOPPING=1');
  t.same(rx.lines(), ['READY=1', 'STATUS=child running', 'WATCHDOG=1', 'STOPPING=1']);
  t.same(
    rx.datagrams.map((d) => d.pid),
    [info.pid, info.pid, info.pid, info.pid],
    'every datagram carries the main PID in SCM_CREDENTIALS',
  );
});

t.test('notify-exec soft-fails: unreachable socket or none at all, the program still runs', async (t) => {
  const dir = await tempDir(t);
  const script = 'console.log(JSON.stringify(process.env.METERLINK_NOTIFY_FD ?? null))';
  for (const notifySocket of [join(dir, 'missing'), undefined]) {
    const env: NodeJS.ProcessEnv = { ...process.env, METERLINK_NOTIFY_FD: '99' };
    if (notifySocket) env.NOTIFY_SOCKET = notifySocket;
    else delete env.NOTIFY_SOCKET;
    const child = spawnLogged(join(repoRoot, 'systemd/notify-exec'), [process.execPath, '-e', script], {
      env,
    });
    await child.exited();
    t.equal(child.child.exitCode, 0);
    t.match(child.output(), /^null$/m, 'no fd handed on (a stale METERLINK_NOTIFY_FD is removed)');
    if (notifySocket) t.match(child.output(), /cannot connect to NOTIFY_SOCKET/);
  }
  const bad = spawnLogged(join(repoRoot, 'systemd/notify-exec'), [join(dir, 'no-such-program')]);
  await bad.exited();
  t.not(bad.child.exitCode, 0);
  t.match(bad.output(), /cannot run/);
});

t.test('watchdogTimeoutMs / watchdogIntervalMs follow sd_watchdog_enabled(3)', async (t) => {
  t.equal(watchdogTimeoutMs({}), undefined, 'no watchdog');
  t.equal(watchdogTimeoutMs({ WATCHDOG_USEC: '60000000' }, 42), 60_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '60000000' }, 42), 30_000, 'ping at half the timeout');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '42' }, 42), 30_000);
  t.equal(
    watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '41' }, 42),
    undefined,
    'meant for another',
  );
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '' }, 42), 30_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }), undefined);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }), undefined);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '1500' }), 1, 'at least 1 ms');
  t.equal(watchdogTimeoutMs({ WATCHDOG_USEC: '1', WATCHDOG_PID: String(process.pid) }), 0.001);
});

t.test('flattenStatus and findOnPath', async (t) => {
  t.equal(flattenStatus('  a\r\nb\tc  '), 'a b c');
  t.equal(flattenStatus('x'.repeat(maxStatusLength)), 'x'.repeat(maxStatusLength));
  t.equal(findOnPath('sh', '/nonexistent::/bin'), '/bin/sh');
  t.equal(findOnPath('sh', undefined), undefined);
});
