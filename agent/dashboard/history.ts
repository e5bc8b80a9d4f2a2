/**
 * The dashboard's local history: per-minute and per-hour aggregates of every meter (energy.ts buckets) in a
 * LevelDB of its own beside the buffer — not the buffer, which empties as the cloud acknowledges.
 *
 * Fixed size, by time: minutes are kept for 48 h (2,880 per meter, ~0.3 KB each), hours for 60 days
 * (1,440 per meter); older records are deleted as new ones are written, relative to the newest reading, so
 * the store holds at most (2,880 + 1,440) records per meter, ~1.5 MB per meter on disk. Days are not
 * stored: they are joined from the hours when asked for (exact, see energy.ts), in the box's time zone.
 *
 * Durability: closing a minute writes it, the open hour and the meter's counter memory in one batch, so a
 * crash loses at most the power statistics of the current minute, never energy (the first reading after a
 * restart continues from the stored counters). Readings flagged clock-unsynchronised are not recorded:
 * their time may be years off (the energy they saw is counted with the next synchronised reading).
 */
import { rename } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import { addReading, emptyBucket, joinBuckets, type Bucket, type CounterMemory } from './energy.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const MINUTES_KEPT_MS = 48 * HOUR_MS;
export const HOURS_KEPT_MS = 60 * 24 * HOUR_MS;

/** How LevelDB may use memory here: the data are small (2 MB per meter), so little of it. */
const LEVEL_MEMORY = { cacheSize: 256 << 10, maxOpenFiles: 16, writeBufferSize: 256 << 10 } as const;

interface MeterTrack {
  memory: CounterMemory | undefined;
  minute: Bucket | undefined;
  hour: Bucket | undefined;
  /** Newest reading time. */
  newest: number;
  /**
   * Where the ring's deletes have reached (in this process): the next delete starts there instead of at the
   * oldest possible key, so it does not walk the tombstones of every minute deleted before (LevelDB keeps
   * them until a compaction). Without it a week of readings took ~25 s to record on a busy machine.
   */
  prunedTo: { m: number; h: number };
}

interface StoredState {
  memory?: CounterMemory;
  minute?: Bucket;
  hour?: Bucket;
  newest: number;
}

export interface HistoryStore {
  readonly path: string;
  /** Adds one reading (numbers in contract units). Queued: call `flushed()` to wait for it. */
  record(meter: string, ts: number, values: Readonly<Record<string, number>>, serial?: string): void;
  /** Resolves when every reading so far is in memory or on disk (and write errors have been reported). */
  flushed(): Promise<void>;
  /** Minute buckets of one meter with `t` in [from, to), oldest first, the open minute included. */
  minutes(meter: string, from: number, to: number): Promise<Bucket[]>;
  /** Hour buckets, likewise. */
  hours(meter: string, from: number, to: number): Promise<Bucket[]>;
  /** Local-time days (the box's time zone): hours joined per day with `t` = local midnight, oldest first. */
  days(meter: string, from: number, to: number): Promise<Bucket[]>;
  /** Meters with any record. */
  meters(): Promise<string[]>;
  close(): Promise<void>;
}

export interface OpenHistoryOptions {
  /** Called when a write failed (disk full …): the dashboard keeps running from memory. */
  onError?: (err: Error) => void;
  /** Called when an unreadable store was moved aside and a fresh one started. */
  onSetAside?: (movedTo: string, err: Error) => void;
}

const pad = (t: number) => Math.max(0, Math.floor(t)).toString(36).padStart(10, '0');
const key = (kind: 'm' | 'h', meter: string, t: number) => `${kind}!${meter}!${pad(t)}`;
const stateKey = (meter: string) => `s!${meter}`;

export function localDayStart(t: number): number {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export async function openHistory(path: string, opts: OpenHistoryOptions = {}): Promise<HistoryStore> {
  const make = () => new ClassicLevel<string, string>(path, { valueEncoding: 'utf8', ...LEVEL_MEMORY });
  let db = make();
  try {
    await db.open();
  } catch (err) {
    // A history is a convenience, not a record: an unreadable one is set aside and a fresh one started.
    const cause = (err as { cause?: Error }).cause ?? (err as Error);
    if (/lock/i.test(String(cause?.message)) || (err as { code?: string }).code === 'LEVEL_LOCKED') throw err;
    const movedTo = `${path}.unreadable-${Date.now()}`;
    await rename(path, movedTo);
    opts.onSetAside?.(movedTo, cause);
    db = make();
    await db.open();
  }
  const tracks = new Map<string, MeterTrack>();
  let chain: Promise<void> = Promise.resolve();
  let closed = false;

  const loadTrack = async (meter: string): Promise<MeterTrack> => {
    let t = tracks.get(meter);
    if (t) return t;
    const raw = await db.get(stateKey(meter));
    const s = raw === undefined ? undefined : (JSON.parse(raw) as StoredState);
    t = {
      memory: s?.memory,
      minute: s?.minute,
      hour: s?.hour,
      newest: s?.newest ?? 0,
      prunedTo: { m: 0, h: 0 },
    };
    tracks.set(meter, t);
    return t;
  };

  const persist = async (
    meter: string,
    t: MeterTrack,
    closedMinute: Bucket | undefined,
    closedHour: Bucket | undefined,
  ) => {
    const ops: { type: 'put'; key: string; value: string }[] = [];
    if (closedMinute)
      ops.push({ type: 'put', key: key('m', meter, closedMinute.t), value: JSON.stringify(closedMinute) });
    if (closedHour)
      ops.push({ type: 'put', key: key('h', meter, closedHour.t), value: JSON.stringify(closedHour) });
    if (t.hour) ops.push({ type: 'put', key: key('h', meter, t.hour.t), value: JSON.stringify(t.hour) });
    const state: StoredState = { newest: t.newest };
    if (t.memory) state.memory = t.memory;
    if (t.minute) state.minute = t.minute;
    if (t.hour) state.hour = t.hour;
    ops.push({ type: 'put', key: stateKey(meter), value: JSON.stringify(state) });
    await db.batch(ops);
    // The ring: everything older than the kept window goes.
    for (const [kind, kept] of [
      ['m', MINUTES_KEPT_MS],
      ['h', HOURS_KEPT_MS],
    ] as const) {
      const to = t.newest - kept;
      if (to <= t.prunedTo[kind]) continue;
      await db.clear({ gte: key(kind, meter, t.prunedTo[kind]), lt: key(kind, meter, to) });
      t.prunedTo[kind] = to;
    }
  };

  const apply = async (
    meter: string,
    ts: number,
    values: Readonly<Record<string, number>>,
    serial?: string,
  ) => {
    const t = await loadTrack(meter);
    const m0 = Math.floor(ts / MINUTE_MS) * MINUTE_MS;
    const h0 = Math.floor(ts / HOUR_MS) * HOUR_MS;
    // A reading older than the open minute (the clock stepped back) is left out; the counters it saw are
    // counted with the next reading in order.
    if (t.minute && m0 < t.minute.t) return;
    let closedMinute: Bucket | undefined;
    let closedHour: Bucket | undefined;
    if (t.minute && m0 > t.minute.t) {
      closedMinute = t.minute;
      t.minute = undefined;
    }
    if (t.hour && h0 > t.hour.t) {
      closedHour = t.hour;
      t.hour = undefined;
    }
    t.minute ??= emptyBucket(m0);
    t.hour ??= emptyBucket(h0);
    t.memory = addReading([t.minute, t.hour], t.memory, values, serial);
    t.newest = Math.max(t.newest, ts);
    if (closedMinute || closedHour) await persist(meter, t, closedMinute, closedHour);
  };

  const enqueue = (fn: () => Promise<void>) => {
    chain = chain.then(fn).catch((err: unknown) => opts.onError?.(err as Error));
    return chain;
  };

  const range = async (kind: 'm' | 'h', meter: string, from: number, to: number): Promise<Bucket[]> => {
    await chain;
    const rows = await db.values({ gte: key(kind, meter, from), lt: key(kind, meter, to) }).all();
    const out = rows.map((v) => JSON.parse(v) as Bucket);
    const open = tracks.get(meter)?.[kind === 'm' ? 'minute' : 'hour'];
    if (open && open.t >= from && open.t < to) {
      const i = out.findIndex((b) => b.t === open.t);
      if (i >= 0) out[i] = open;
      else out.push(open);
    }
    return out.sort((a, b) => a.t - b.t);
  };

  return {
    path,
    record(meter, ts, values, serial) {
      if (closed) return;
      void enqueue(() => apply(meter, ts, values, serial));
    },
    flushed: () => chain,
    minutes: (meter, from, to) => range('m', meter, from, to),
    hours: (meter, from, to) => range('h', meter, from, to),
    async days(meter, from, to) {
      const hours = await range('h', meter, localDayStart(from) - HOUR_MS, to);
      const out: Bucket[] = [];
      for (const h of hours) {
        const day = localDayStart(h.t);
        if (day < localDayStart(from)) continue;
        const last = out[out.length - 1];
        if (last && last.t === day) out[out.length - 1] = { ...joinBuckets(last, h), t: day };
        else out.push({ ...h, t: day, e: structuredClone(h.e) });
      }
      return out;
    },
    async meters() {
      await chain;
      const ids = new Set<string>(tracks.keys());
      for await (const k of db.keys({ gte: 's!', lt: 's"' })) ids.add(k.slice(2));
      return [...ids].sort();
    },
    async close() {
      if (closed) return;
      closed = true;
      await chain;
      // The open minute and hour are saved with the counters, so a restart continues them.
      for (const [meter, t] of tracks)
        await persist(meter, t, undefined, undefined).catch((err: unknown) => opts.onError?.(err as Error));
      await db.close();
    },
  };
}
