/**
 * LevelDB `StoreBackend` (classic-level). Keys: `s` + seq as 8 bytes big-endian (so byte order is seq
 * order); one meta record under `m`. Every write is one `batch` with `sync: true` (fsync of the log).
 * LevelDB errors are mapped to `BufferError` codes here, at the adapter boundary.
 */
import { readdir, readFile, stat, statfs } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { BufferError, isBufferError } from './errors.js';
import { KEY_LENGTH, sampleKey, seqOfKey } from './sample-codec.js';
import { LedgerWriter, readLedger, type LedgerState } from './seq-ledger.js';
import { readReserve, writeReserve } from './seq-reserve.js';
import type { StoreBackend, StoredEntry, StoredMeta } from './store-backend.js';

const META_KEY = Buffer.from('m');
const META_VERSION = 1;
/**
 * LevelDB's memory, set explicitly rather than left to defaults: the block cache (default 8 MiB)
 * barely helps a queue that is read once, oldest first. Every table file in LevelDB's table cache is mmapped
 * (classic-level's LevelDB maps up to 1000 files, a limit it does not expose), so the pages read stay in the
 * agent's RSS as file-backed memory until the table leaves the cache. Three settings bound that part:
 * `maxOpenFiles` 74 is the least LevelDB accepts (64 tables + 10 other files; lower values are raised to it);
 * `maxFileSize` 1 MiB is the least it accepts for compaction outputs (default 2 MiB; smaller values are
 * raised to 1 MiB); and the memtable (`writeBufferSize`), whose size is that of the level-0 tables it is
 * flushed to: 512 KiB instead of LevelDB's 4 MiB. The memtable (and the one being flushed) is malloc memory,
 * and malloc keeps the pages a flushed memtable freed for the next one: the memtable's size is memory the agent
 * holds for good once it has filled once. Polling 3 meters writes ~600 B/s to it (samples, acks, the meta
 * record), so a 2 MiB memtable filled for ~57 minutes after a start: that was the steady agent's "slope" over
 * an hour (malloc's main arena 8.2 -> 9.7 MiB).
 * Measured: the steady agent's disk writes do not change with it (bench:footprint for ~50 minutes,
 * /proc/PID/io write_bytes: 56.0 MB with 2 MiB, 57.5 with 512 KiB, 56.5 with 256 KiB; each append's fsync
 * dominates). A backlog building up offline writes more (bench:buffer, 120,000 appends in groups: 168 B per
 * sample with 2 MiB, 273 with 512 KiB, 354 with 256 KiB; 161 with 4 MiB, 215 with 1 MiB): every write also
 * updates the meta key, so each level-0 table spans the whole key range and compactions merge rather than
 * move tables. That is ~65 MB more for a week offline, against ~1.6 GB a day of fsynced appends.
 */
export const LEVEL_MEMORY = {
  cacheSize: 2 << 20,
  maxOpenFiles: 74,
  maxFileSize: 1 << 20,
  writeBufferSize: 512 << 10,
} as const;

type Db = ClassicLevel<Buffer, Buffer>;

interface LevelErrorLike {
  code?: string;
  message?: string;
  cause?: LevelErrorLike;
}

/** The LevelDB status text; LevelDB reports I/O errors only as text (`IO error: ...: No space left ...`). */
function statusText(err: unknown): string {
  const e = err as LevelErrorLike;
  return `${e?.message ?? String(err)} ${e?.cause?.message ?? ''}`;
}

function levelCode(err: unknown): string | undefined {
  const e = err as LevelErrorLike;
  return e?.cause?.code ?? e?.code;
}

/** Maps a LevelDB error to our code. ENOSPC has no code of its own in LevelDB, only its strerror text. */
export function mapLevelError(err: unknown, location: string, doing: string): BufferError {
  if (isBufferError(err)) return err;
  const code = levelCode(err);
  const text = statusText(err);
  const ctx = { path: location };
  if (code === 'LEVEL_LOCKED')
    return new BufferError(
      'BUFFER_LOCKED',
      `the buffer at ${location} is in use by another process (LevelDB lock held); stop the running ` +
        `meterlink agent (systemctl stop meterlink) or use a different path`,
      ctx,
      { cause: err },
    );
  if (/No space left on device|ENOSPC/i.test(text) || (err as NodeJS.ErrnoException)?.code === 'ENOSPC')
    return new BufferError(
      'BUFFER_DISK_FULL',
      `the disk holding the buffer at ${location} is full (${doing}); free space or lower buffer.maxSize`,
      ctx,
      { cause: err },
    );
  if (code === 'LEVEL_CORRUPTION' || /corrupt/i.test(text))
    return new BufferError(
      'BUFFER_CORRUPT',
      `the buffer at ${location} is corrupt (${doing}): ${text.trim()}`,
      ctx,
      {
        cause: err,
      },
    );
  return new BufferError('BUFFER_IO', `${doing} the buffer at ${location} failed: ${text.trim()}`, ctx, {
    cause: err,
  });
}

const META_FIELDS = ['nextSeq', 'dropped', 'count', 'bytes'] as const;

function encodeMeta(m: StoredMeta): Buffer {
  const b = Buffer.alloc(1 + 8 * META_FIELDS.length);
  b[0] = META_VERSION;
  META_FIELDS.forEach((f, i) => b.writeDoubleBE(m[f], 1 + 8 * i));
  return b;
}

function decodeMeta(b: Buffer): StoredMeta | undefined {
  if (b.length !== 1 + 8 * META_FIELDS.length || b[0] !== META_VERSION) return undefined;
  const [nextSeq, dropped, count, bytes] = META_FIELDS.map((_, i) => b.readDoubleBE(1 + 8 * i));
  const m = { nextSeq: nextSeq!, dropped: dropped!, count: count!, bytes: bytes! };
  return Object.values(m).every((v) => Number.isSafeInteger(v) && v >= 0) && m.nextSeq >= 1 ? m : undefined;
}

/**
 * LevelDB (without paranoid checks, which classic-level does not expose) skips damaged log records while
 * recovering and only says so in its info log (`LOG`): "(ignoring error) …: dropping N bytes; Corruption: …".
 */
async function recoveryLossNote(location: string): Promise<string | null> {
  try {
    const log = await readFile(join(location, 'LOG'), 'utf8');
    return (
      log
        .split('\n')
        .find((l) => /dropping \d+ bytes/.test(l))
        ?.trim() ?? null
    );
  } catch {
    return null;
  }
}

/**
 * Stored bytes read after which the backend drops LevelDB's table cache by reopening the store.
 * Every table LevelDB reads stays mmapped while it is in its table cache (up to 64 tables of 1 MiB, see
 * `LEVEL_MEMORY`), and every page read stays resident: the buffer's full scan on open and a week's drain read
 * each table once, so without this the agent carried 45-52 MiB of mapped tables (measured with
 * /proc/PID/smaps: 53-57 `.ldb` mappings at the drain's peak). Reopening costs a few milliseconds and one small
 * level-0 table (the log replayed), about once per 8 MiB read: ~25 times for a week's backlog.
 */
export const RELEASE_TABLES_AFTER_BYTES = 8 << 20;

/** How long the release's reopen waits for a lock taken meanwhile by another process (see `openWhenFree`). */
export const RELEASE_LOCK_WAIT_MS = 120_000;
const LOCK_RETRY_MS = 50;

export interface LevelBackendOptions {
  /** See `RELEASE_TABLES_AFTER_BYTES` (the default). */
  releaseTablesAfterBytes?: number;
}

export class LevelBackend implements StoreBackend {
  private reservedUpTo = 0;
  private ledger: LedgerWriter | undefined;
  private closedBy: BufferError | undefined;
  private ledgerGen = 0;
  /** Set when LevelDB dropped damaged log records while opening (see `recoveryLossNote`). */
  recoveryLoss: string | null = null;
  private readSinceOpen = 0;
  private inflight = 0;
  private idle: (() => void) | undefined;
  /** Set while the store is closed and reopened: operations wait for it. */
  private pausing: Promise<void> | undefined;

  private constructor(
    readonly location: string,
    private db: Db,
    private readonly releaseAfter: number,
  ) {}

  static async open(
    location: string,
    createIfMissing: boolean,
    opts: LevelBackendOptions = {},
  ): Promise<LevelBackend> {
    const db = await LevelBackend.openDb(location, createIfMissing);
    const b = new LevelBackend(location, db, opts.releaseTablesAfterBytes ?? RELEASE_TABLES_AFTER_BYTES);
    b.reservedUpTo = await readReserve(location);
    b.recoveryLoss = await recoveryLossNote(location);
    return b;
  }

  /**
   * Opens the store, waiting up to `waitMs` while another process holds its lock. For the release's reopen:
   * between its close and open, a `meterlink buffer ...` command run by hand can take the lock; the agent
   * then waits for it (operations wait too: appends are kept in memory, none fails) instead of losing the
   * store until it restarts.
   */
  static async openWhenFree(location: string, waitMs: number): Promise<Db> {
    const until = Date.now() + waitMs;
    for (;;) {
      try {
        return await LevelBackend.openDb(location, false);
      } catch (err) {
        if (!isBufferError(err, 'BUFFER_LOCKED') || Date.now() >= until) throw err;
        await delay(LOCK_RETRY_MS);
      }
    }
  }

  private static async openDb(location: string, createIfMissing: boolean): Promise<Db> {
    // classic-level creates the directory even with createIfMissing false: check first.
    if (!createIfMissing && !(await stat(location).catch(() => null)))
      throw new BufferError(
        'BUFFER_NOT_FOUND',
        `there is no buffer at ${location}; check the path (buffer.path in the config)`,
        { path: location },
      );
    // Without CURRENT, LevelDB takes the directory for a new store: it writes a fresh manifest, replays only
    // the log, and deletes every table as obsolete. A store whose CURRENT is gone goes to repair instead,
    // which rebuilds the manifest from all the files.
    const files = await readdir(location).catch(() => [] as string[]);
    if (!files.includes('CURRENT') && files.some((f) => /\.(ldb|sst|log)$|^MANIFEST-/.test(f)))
      throw new BufferError(
        'BUFFER_CORRUPT',
        `the buffer at ${location} has lost its CURRENT file (LevelDB's pointer to its manifest)`,
        { path: location },
      );
    const db: Db = new ClassicLevel<Buffer, Buffer>(location, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      createIfMissing,
      ...LEVEL_MEMORY,
    });
    try {
      await db.open();
    } catch (err) {
      if (/does not exist/.test(statusText(err)))
        throw new BufferError(
          'BUFFER_NOT_FOUND',
          `there is no buffer at ${location}; check the path (buffer.path in the config)`,
          { path: location },
          { cause: err },
        );
      throw mapLevelError(err, location, 'opening');
    }
    return db;
  }

  /**
   * Runs one operation on the store: waits while it is being reopened, and counts operations in flight so
   * a reopen starts only when none is (the buffer reads while it writes).
   */
  private async use<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    while (this.pausing) await this.pausing;
    // A reopen that failed left the store closed: its reason (a full disk, say), not LevelDB's "not open".
    if (this.closedBy) throw this.closedBy;
    this.inflight++;
    try {
      return await fn(this.db);
    } finally {
      if (--this.inflight === 0) this.idle?.();
    }
  }

  /** Runs `then` (a close and reopen) once no operation is in flight; operations that come meanwhile wait. */
  private async pause(then: () => Promise<void>): Promise<void> {
    while (this.pausing) await this.pausing;
    const p = (async () => {
      if (this.inflight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
      this.idle = undefined;
      await then();
    })();
    this.pausing = p.then(
      () => undefined,
      () => undefined,
    );
    try {
      await p;
    } finally {
      this.pausing = undefined;
    }
  }

  async range(gt: number, lte: number, limit: number): Promise<StoredEntry[]> {
    if (lte <= gt) return [];
    const out: StoredEntry[] = [];
    let bytes = 0;
    try {
      const rows = await this.use((db) =>
        db.iterator({ gt: sampleKey(gt), lte: sampleKey(lte), limit, highWaterMarkBytes: 1 << 20 }).all(),
      );
      // Indexed, no destructuring: without TurboFan, `for (const [k, v] of rows)` makes iterator objects
      // per row, and the open's scan reads every row of the backlog.
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        const k = row[0];
        const v = row[1];
        const seq = seqOfKey(k);
        bytes += v.length;
        if (seq >= 0 && k.length === KEY_LENGTH) out.push({ seq, value: v });
      }
    } catch (err) {
      throw mapLevelError(err, this.location, 'reading');
    }
    this.readSinceOpen += bytes;
    if (this.readSinceOpen >= this.releaseAfter && !this.pausing) {
      this.readSinceOpen = 0;
      // Not awaited: this read is done; the next operation waits for the reopen. A failed reopen leaves the
      // store closed, so the next operation fails and the buffer's own recovery reopens it.
      this.reopenStore(RELEASE_LOCK_WAIT_MS).catch(() => undefined);
    }
    return out;
  }

  async readMeta(): Promise<StoredMeta | undefined> {
    try {
      const v = await this.use((db) => db.get(META_KEY));
      return v ? decodeMeta(v) : undefined;
    } catch (err) {
      throw mapLevelError(err, this.location, 'reading');
    }
  }

  async write(puts: readonly StoredEntry[], dels: readonly number[], meta: StoredMeta): Promise<void> {
    try {
      await this.use((db) => {
        const batch = db.batch();
        for (const seq of dels) batch.del(sampleKey(seq));
        for (const e of puts) batch.put(sampleKey(e.seq), e.value);
        batch.put(META_KEY, encodeMeta(meta));
        return batch.write({ sync: true });
      });
    } catch (err) {
      throw mapLevelError(err, this.location, 'writing');
    }
  }

  /** After a failed write: LevelDB refuses writes until reopened. A lock held elsewhere fails at once. */
  reopen(): Promise<void> {
    return this.reopenStore(0);
  }

  /** Closes and reopens the store between operations (see `pause`), waiting up to `lockWaitMs` for its lock. */
  private reopenStore(lockWaitMs: number): Promise<void> {
    return this.pause(async () => {
      await this.db.close().catch(() => undefined);
      try {
        this.db = await LevelBackend.openWhenFree(this.location, lockWaitMs);
        this.closedBy = undefined;
      } catch (err) {
        this.closedBy = mapLevelError(err, this.location, 'reopening');
        throw this.closedBy;
      }
    });
  }

  async reserve(upTo: number): Promise<number> {
    try {
      await writeReserve(this.location, upTo);
    } catch (err) {
      throw mapLevelError(err, this.location, 'writing the seq reservation of');
    }
    this.reservedUpTo = upTo;
    return upTo;
  }

  reserved(): number {
    return this.reservedUpTo;
  }

  async readLedger(): Promise<LedgerState | null> {
    const l = await readLedger(this.location);
    this.ledgerGen = Math.max(this.ledgerGen, l?.gen ?? 0);
    return l?.state ?? null;
  }

  async writeLedger(state: LedgerState): Promise<void> {
    try {
      this.ledger ??= await LedgerWriter.open(this.location, this.ledgerGen);
      await this.ledger.write(state);
    } catch (err) {
      throw mapLevelError(err, this.location, 'writing the seq ledger of');
    }
  }

  async freeBytes(): Promise<number | null> {
    try {
      const s = await statfs(this.location);
      return s.bavail * s.bsize;
    } catch {
      return null;
    }
  }

  async reclaim(from: number, to: number): Promise<void> {
    try {
      await this.use((db) => db.compactRange(sampleKey(from), sampleKey(to)));
    } catch (err) {
      throw mapLevelError(err, this.location, 'compacting');
    }
  }

  async close(): Promise<void> {
    while (this.pausing) await this.pausing;
    await this.ledger?.close().catch(() => undefined);
    this.ledger = undefined;
    await this.db.close();
  }
}
