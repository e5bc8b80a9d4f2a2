import t from 'tap';
import { createNotifier, type RuntimeLog } from '../../agent/runtime/sd-notify.js';
import { createWatchdog, systemClock } from '../../agent/runtime/watchdog.js';
import { fakeClock } from './fake-clock.js';
import { startNotifyReceiver } from './notify-receiver.js';

function captureLog(): RuntimeLog & { msgs: string[] } {
  const msgs: string[] = [];
  return { msgs, info: (_o, m) => void msgs.push(`info ${m}`), warn: (_o, m) => void msgs.push(`warn ${m}`) };
}

const count = (lines: string[], line: string) => lines.filter((l) => l === line).length;

t.test('WATCHDOG=1 flows only while there is progress, and stops when progress stops', async (t) => {
  const rx = await startNotifyReceiver(t);
  const log = captureLog();
  const notifier = createNotifier({ env: { ...process.env, NOTIFY_SOCKET: rx.notifySocket }, log });
  t.teardown(() => notifier.close());
  const clock = fakeClock();
  // WatchdogSec=20s → ping every 10 s; progress counts for 30 s.
  const wd = createWatchdog({ notifier, intervalMs: 10_000, progressWindowMs: 30_000, log, clock });

  notifier.ready();
  wd.start();
  t.equal(clock.timers(), 1);
  t.match(wd.state(), { enabled: true, running: true, feeding: true, lastKind: 'start', pings: 1 });

  // Polls succeed every 5 s for a minute: 6 more pings.
  for (let i = 0; i < 12; i++) {
    clock.advance(5_000);
    wd.progress();
  }
  notifier.status('phase 1 done');
  await rx.waitForLine('STATUS=phase 1 done');
  t.equal(count(rx.lines(), 'WATCHDOG=1'), 7);

  // Offline but buffering is progress too.
  clock.advance(5_000);
  wd.offlineButBuffering();
  clock.advance(20_000);
  t.match(wd.state(), { feeding: true, lastKind: 'offline-buffering', pings: 9 });

  // Progress stops: pings continue until the report is older than the window, then stop for good.
  clock.advance(10_000); // 30 s since the last report: still inside the window
  t.equal(wd.state().pings, 10);
  clock.advance(10_000); // 40 s: outside
  t.equal(wd.state().feeding, false);
  clock.advance(10 * 60_000); // ten silent minutes: systemd would have restarted us long ago
  t.equal(wd.state().pings, 10);
  notifier.status('stalled');
  await rx.waitForLine('STATUS=stalled');
  const upToStall = rx.lines();
  t.equal(count(upToStall, 'WATCHDOG=1'), 10, 'no ping after progress stopped');
  t.same(upToStall.slice(-2), ['WATCHDOG=1', 'STATUS=stalled'], 'the stall point: nothing but the marker');
  t.ok(log.msgs.some((m) => /^warn watchdog: no poll, publish or buffering progress/.test(m)));

  // Progress returns: one ping at once, then on schedule.
  wd.progress();
  t.match(wd.state(), { feeding: true, pings: 11 });
  t.ok(log.msgs.some((m) => /^info watchdog: progress again/.test(m)));
  clock.advance(10_000);
  wd.stop();
  t.equal(clock.timers(), 0);
  clock.advance(60_000);
  wd.progress(); // after stop: recorded, no ping
  notifier.stopping();
  await rx.waitForLine('STOPPING=1');
  const all = rx.lines();
  t.equal(count(all, 'WATCHDOG=1'), 12);
  t.equal(all[0], 'READY=1');
  t.equal(all.at(-1), 'STOPPING=1');
  t.match(wd.state(), { running: false, feeding: false, pings: 12 });
});

t.test('no watchdog configured (no WATCHDOG_USEC): every call is a no-op', async (t) => {
  let pings = 0;
  const clock = fakeClock();
  const wd = createWatchdog({
    notifier: { watchdog: () => void pings++ },
    intervalMs: undefined,
    progressWindowMs: 1000,
    log: captureLog(),
    clock,
  });
  wd.start();
  wd.progress();
  wd.offlineButBuffering();
  clock.advance(10_000);
  wd.stop();
  t.equal(pings, 0);
  t.equal(clock.timers(), 0);
  t.match(wd.state(), { enabled: false, running: false, lastProgressAt: undefined });
});

t.test('start twice keeps one timer; the system clock drives real timers, unref-ed', async (t) => {
  let pings = 0;
  const wd = createWatchdog({
    notifier: { watchdog: () => void pings++ },
    intervalMs: 5,
    progressWindowMs: 60_000,
    log: captureLog(),
  });
  wd.start();
  wd.start();
  const { waitFor } = await import('../harness/wait.js');
  await waitFor(() => pings >= 3, { what: 'three real-timer pings' });
  wd.stop();
  wd.stop();
  t.ok(systemClock.now() > 0);
  t.equal(wd.state().running, false);
});
