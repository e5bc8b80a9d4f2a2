/**
 * Feeds systemd's watchdog only while the agent makes progress.
 *
 * A blind timer would keep a wedged agent alive forever (the event loop still runs while every poll hangs
 * or the publisher is stuck). Instead the daemon reports progress: `progress()` when a poll succeeded or a
 * publish was acknowledged, `offlineButBuffering()` when it is legitimately offline and still appending to
 * the buffer. Every `intervalMs` (half of `WatchdogSec=`, see `watchdogIntervalMs`) the watchdog sends
 * `WATCHDOG=1` if the last report is at most `progressWindowMs` old; otherwise it stays silent and systemd
 * kills and restarts the agent `WatchdogSec=` later (`Restart=on-failure` covers a watchdog timeout).
 */
import type { Notifier, RuntimeLog } from './sd-notify.js';

/** Time and timers, injected so tests can drive them. */
export interface WatchdogClock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const systemClock: WatchdogClock = {
  now: () => Date.now(),
  setInterval(fn, ms) {
    const handle = setInterval(fn, ms);
    // Pinging must never be the only thing keeping the agent alive.
    handle.unref();
    return handle;
  },
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

export type ProgressKind = 'start' | 'progress' | 'offline-buffering';

export interface WatchdogState {
  /** False when systemd set no watchdog for this process: every call is then a no-op. */
  readonly enabled: boolean;
  readonly running: boolean;
  /** True while the last report is recent enough that pings are being sent. */
  readonly feeding: boolean;
  readonly lastProgressAt: number | undefined;
  readonly lastKind: ProgressKind | undefined;
  readonly pings: number;
}

export interface Watchdog {
  /** Starts pinging (one ping at once); the start counts as progress, so the first window is a grace period. */
  start(): void;
  /** A poll succeeded or a publish was acknowledged. */
  progress(): void;
  /** Offline (broker unreachable) but still appending to the buffer: legitimate, keep the agent alive. */
  offlineButBuffering(): void;
  /** Stops pinging (shutdown). */
  stop(): void;
  state(): WatchdogState;
}

export interface WatchdogOptions {
  notifier: Pick<Notifier, 'watchdog'>;
  /** Ping interval from `watchdogIntervalMs(env)`; undefined disables the watchdog. */
  intervalMs: number | undefined;
  /** How old the last progress report may be and still count (e.g. a few poll intervals). */
  progressWindowMs: number;
  log: RuntimeLog;
  clock?: WatchdogClock;
}

export function createWatchdog(opts: WatchdogOptions): Watchdog {
  const clock = opts.clock ?? systemClock;
  const { notifier, intervalMs, progressWindowMs, log } = opts;
  const enabled = intervalMs !== undefined && intervalMs > 0;
  let handle: unknown;
  let running = false;
  let feeding = false;
  let lastProgressAt: number | undefined;
  let lastKind: ProgressKind | undefined;
  let pings = 0;

  const tick = () => {
    const now = clock.now();
    const age = lastProgressAt === undefined ? Infinity : now - lastProgressAt;
    if (age <= progressWindowMs) {
      if (!feeding && pings > 0) log.info({ lastKind }, 'watchdog: progress again; feeding systemd again');
      feeding = true;
      pings++;
      notifier.watchdog();
    } else if (feeding) {
      feeding = false;
      log.warn(
        { sinceProgressMs: age, progressWindowMs, lastKind },
        'watchdog: no poll, publish or buffering progress; no longer feeding systemd, which will restart the agent',
      );
    }
  };

  const report = (kind: ProgressKind) => {
    if (!enabled) return;
    lastProgressAt = clock.now();
    lastKind = kind;
    // After a stall, ping at once rather than up to one interval later: systemd may be about to give up.
    if (running && !feeding) tick();
  };

  return {
    start() {
      if (!enabled || running) return;
      running = true;
      report('start');
      handle = clock.setInterval(tick, intervalMs);
    },
    progress: () => report('progress'),
    offlineButBuffering: () => report('offline-buffering'),
    stop() {
      if (!running) return;
      running = false;
      feeding = false;
      clock.clearInterval(handle);
    },
    state: () => ({ enabled, running, feeding, lastProgressAt, lastKind, pings }),
  };
}
