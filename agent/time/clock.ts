/**
 * Time for a box without a real-time clock.
 *
 * Until NTP has synchronised (systemd-timesyncd touches /run/systemd/timesync/synchronized), the wall clock
 * may be anything — often the last shutdown time, or 1970. Samples taken then are flagged `clockUnsynced`
 * and carry the monotonic time of capture. Once the clock is synchronised, `correct()` rewrites their
 * timestamps from the monotonic clock (`ts = capture_mono + (wall − mono now)`) and flags them
 * `clockCorrected`, before they are shipped. Samples from an earlier boot cannot be corrected (the
 * monotonic clock restarted); they ship flagged unsynced once the hold time has passed.
 *
 * A DSMR meter's own clock can stand in while NTP is not synchronised (`useMeterClock`): samples are then
 * stamped from it and flagged `meterClock`.
 *
 * A clock step (the wall clock jumping relative to the monotonic clock by more than `stepThresholdMs`) is
 * reported as an event. Nothing is reordered or dropped: the buffer orders by sequence number, not time.
 */
import { readFileSync, statSync } from 'node:fs';
import { QualityFlag, type SampleInput } from '../../cloud-contract/sample.js';
import { DEFAULT_SYNC_FILE, fileSource, type TimeSource } from './sources.js';

export interface ClockDeps {
  /** Wall clock, ms since epoch. */
  wallNow?: () => number;
  /** CLOCK_MONOTONIC in ms (system-wide since boot). */
  monoNow?: () => number;
  /** Whether the system clock is synchronised right now. */
  isSynced?: () => boolean;
  /** Kernel boot id. */
  bootId?: string;
}

export interface ClockOptions extends ClockDeps {
  /** What decides "synchronised" (`time.source`); wins over `isSynced` and `syncFile`. */
  source?: TimeSource;
  /** File whose existence means "synchronised" (systemd-timesyncd), when no source is given. */
  syncFile?: string;
  /** Wall-vs-monotonic jump that counts as a clock step (default 2 s). */
  stepThresholdMs?: number;
  /** How long unsynchronised samples are held back from shipping while the clock is unsynced (default 15 min). */
  holdMs?: number;
}

export interface ClockStep {
  /** Wall time just before and just after, and the jump (positive: forward). */
  readonly beforeMs: number;
  readonly afterMs: number;
  readonly stepMs: number;
  readonly synced: boolean;
}

/** What `correct` reads and rewrites of a sample. */
export interface ClockedSample {
  readonly ts: number;
  readonly flags: number;
  readonly clock?: SampleInput['clock'];
}

export interface Stamp {
  readonly ts: number;
  readonly flags: number;
  readonly clock?: SampleInput['clock'];
}

export interface ClockKeeper {
  /** Time and clock flags for a sample taken now. `meterTimeMs`: the meter's own clock, if it reports one. */
  stamp(meterTimeMs?: number): Stamp;
  /** Re-checks synchronisation and steps; returns a step if one happened since the last check. */
  check(): ClockStep | undefined;
  readonly synced: boolean;
  /**
   * Prepares samples for shipping, in order: corrects those that can be corrected, and stops at the first
   * one that must still wait for the clock (`held` true). Never reorders; returns new objects for the samples
   * it changes. Works on any sample shape with `ts`, `flags` and `clock` (a `Sample`, the buffer's
   * `StoredSample`); everything else in it is kept.
   */
  correct<T extends ClockedSample>(samples: readonly T[]): { ready: T[]; held: boolean };
  /** For status and health: synced, which source decided and why, last step. */
  state(): {
    synced: boolean;
    lastStep: ClockStep | undefined;
    unsyncedSince: number | undefined;
    /** How long (ms, monotonic) the clock has been unsynchronised, 0 when synchronised. */
    unsyncedForMs: number;
    source: string;
    detail: string;
  };
}

export function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown-boot';
  }
}

export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

export function syncFileProbe(path: string): () => boolean {
  return () => {
    try {
      statSync(path);
      return true;
    } catch {
      return false;
    }
  };
}

export function createClockKeeper(opts: ClockOptions = {}): ClockKeeper {
  const wallNow = opts.wallNow ?? Date.now;
  const monoNow = opts.monoNow ?? monotonicMs;
  const source: TimeSource =
    opts.source ??
    (opts.isSynced
      ? {
          name: 'file',
          why: 'injected',
          read: () => {
            const synced = (opts.isSynced as () => boolean)();
            return { synced, detail: synced ? 'synchronised' : 'NOT synchronised' };
          },
        }
      : fileSource(opts.syncFile ?? DEFAULT_SYNC_FILE));
  let detail = '';
  const isSynced = () => {
    const r = source.read();
    detail = r.detail;
    return r.synced;
  };
  const boot = opts.bootId ?? readBootId();
  const stepThresholdMs = opts.stepThresholdMs ?? 2_000;
  const holdMs = opts.holdMs ?? 15 * 60_000;

  let synced = isSynced();
  let lastOffset = wallNow() - monoNow();
  let lastStep: ClockStep | undefined;
  /** Monotonic time since which we have been unsynced (for the hold limit). */
  let unsyncedSinceMono: number | undefined = synced ? undefined : monoNow();
  /** Meter clock minus monotonic, from the latest meter timestamp (fallback time source). */
  let meterOffset: number | undefined;

  const check = (): ClockStep | undefined => {
    const wall = wallNow();
    const offset = wall - monoNow();
    const nowSynced = isSynced();
    let step: ClockStep | undefined;
    if (Math.abs(offset - lastOffset) > stepThresholdMs) {
      step = {
        beforeMs: wall - (offset - lastOffset),
        afterMs: wall,
        stepMs: offset - lastOffset,
        synced: nowSynced,
      };
      lastStep = step;
    }
    lastOffset = offset;
    if (nowSynced && !synced) unsyncedSinceMono = undefined;
    if (!nowSynced && synced) unsyncedSinceMono = monoNow();
    synced = nowSynced;
    return step;
  };

  return {
    stamp(meterTimeMs) {
      const mono = monoNow();
      const wall = wallNow();
      if (synced) return { ts: wall, flags: 0 };
      const clock = { monoMs: mono, boot };
      if (meterTimeMs !== undefined && Number.isFinite(meterTimeMs)) meterOffset = meterTimeMs - mono;
      if (meterOffset !== undefined) {
        return { ts: mono + meterOffset, flags: QualityFlag.clockUnsynced | QualityFlag.meterClock, clock };
      }
      return { ts: wall, flags: QualityFlag.clockUnsynced, clock };
    },
    check,
    get synced() {
      return synced;
    },
    correct<T extends ClockedSample>(samples: readonly T[]) {
      const ready: T[] = [];
      const offsetNow = wallNow() - monoNow();
      const holdExpired = unsyncedSinceMono !== undefined && monoNow() - unsyncedSinceMono >= holdMs;
      for (const s of samples) {
        if (!(s.flags & QualityFlag.clockUnsynced) || !s.clock) {
          ready.push(s);
          continue;
        }
        if (synced && s.clock.boot === boot) {
          const { clock, ...rest } = s;
          ready.push({
            ...rest,
            ts: clock.monoMs + offsetNow,
            flags:
              (s.flags & ~(QualityFlag.clockUnsynced | QualityFlag.meterClock)) | QualityFlag.clockCorrected,
          } as unknown as T);
          continue;
        }
        if (synced || holdExpired) {
          // Another boot (cannot be corrected), or NTP is not coming: ship as flagged, uncorrected.
          const { clock: _clock, ...rest } = s;
          ready.push(rest as unknown as T);
          continue;
        }
        return { ready, held: true };
      }
      return { ready, held: false };
    },
    state: () => ({
      synced,
      lastStep,
      unsyncedForMs: unsyncedSinceMono === undefined ? 0 : monoNow() - unsyncedSinceMono,
      source: source.name,
      detail,
      unsyncedSince:
        unsyncedSinceMono === undefined ? undefined : wallNow() - (monoNow() - unsyncedSinceMono),
    }),
  };
}
