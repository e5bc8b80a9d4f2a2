/**
 * Polls one meter on its interval, aligned to wall-clock boundaries (a 5 s meter reads at :00, :05, …) so
 * readings from different boxes line up and the schedule never drifts. Each meter has its own timer: a slow
 * or dead meter delays nobody else (meters on one bus still take turns in the driver's bus queue). A poll
 * still running when its next slot comes skips that slot (counted), instead of piling up.
 */
import type { MeterReader, MeterReading } from '../../drivers/reader.js';

export interface PollerDeps {
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

export interface PollerOptions extends PollerDeps {
  reader: MeterReader;
  intervalMs: number;
  onReading: (reading: MeterReading, startedAt: number) => Promise<void> | void;
  onError: (err: unknown, startedAt: number) => void;
}

export interface Poller {
  start(): void;
  /** Stops scheduling and waits for a poll in progress. */
  stop(): Promise<void>;
  readonly stats: { polls: number; failures: number; skipped: number };
}

const defaultTimer = (fn: () => void, ms: number) => {
  const h = setTimeout(fn, ms);
  return { cancel: () => clearTimeout(h) };
};

/** Next multiple of `interval` strictly after `now` (epoch-aligned). */
export function nextBoundary(now: number, interval: number): number {
  return (Math.floor(now / interval) + 1) * interval;
}

export function createPoller(opts: PollerOptions): Poller {
  const now = opts.now ?? Date.now;
  const setTimer = opts.setTimer ?? defaultTimer;
  const stats = { polls: 0, failures: 0, skipped: 0 };
  let running = false;
  let timer: { cancel(): void } | undefined;
  let inProgress: Promise<void> | undefined;
  let abort: AbortController | undefined;

  const schedule = () => {
    if (!running) return;
    const t = now();
    timer = setTimer(tick, nextBoundary(t, opts.intervalMs) - t);
  };
  const tick = () => {
    if (!running) return;
    if (inProgress) {
      stats.skipped++;
      schedule();
      return;
    }
    const startedAt = now();
    stats.polls++;
    abort = new AbortController();
    inProgress = (async () => {
      try {
        const reading = await opts.reader.read(abort.signal);
        await opts.onReading(reading, startedAt);
      } catch (err) {
        stats.failures++;
        opts.onError(err, startedAt);
      } finally {
        inProgress = undefined;
      }
    })();
    schedule();
  };
  return {
    stats,
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    async stop() {
      running = false;
      timer?.cancel();
      abort?.abort();
      await inProgress;
    },
  };
}
