/** A manual clock with interval timers for the watchdog tests: time moves only when `advance` says so. */
import type { WatchdogClock } from '../../agent/runtime/watchdog.js';

export interface FakeClock extends WatchdogClock {
  /** Moves time forward, running every interval that falls due, in time order. */
  advance(ms: number): void;
  /** Number of live intervals. */
  timers(): number;
}

export function fakeClock(start = 1_000_000): FakeClock {
  let now = start;
  let nextId = 1;
  const intervals = new Map<number, { fn: () => void; ms: number; due: number }>();
  return {
    now: () => now,
    setInterval(fn, ms) {
      const id = nextId++;
      intervals.set(id, { fn, ms, due: now + ms });
      return id;
    },
    clearInterval(handle) {
      intervals.delete(handle as number);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let first: { fn: () => void; ms: number; due: number } | undefined;
        for (const iv of intervals.values()) if (iv.due <= end && (!first || iv.due < first.due)) first = iv;
        if (!first) break;
        now = first.due;
        first.due += first.ms;
        first.fn();
      }
      now = end;
    },
    timers: () => intervals.size,
  };
}
