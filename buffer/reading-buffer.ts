/**
 * `ReadingBuffer`: the durable, sequence-numbered queue between the drivers and the publisher.
 *
 * The agent appends samples (the buffer assigns each a device-wide sequence number), the batcher reads the
 * oldest ones — several batches ahead of what the cloud has acknowledged — and acknowledges ranges once the
 * broker has PUBACKed them. Implementations: `openLevelBuffer` (LevelDB on disk, the real one) and
 * `createMemoryBuffer` (same behaviour in memory, for tests of the parts around it).
 */
import type { Sample, SampleInput } from '../cloud-contract/sample.js';
import type { BufferError } from './errors.js';

/** Over budget: drop the oldest samples (default), or refuse new ones. Either way an event says so. */
export type RetentionPolicy = 'drop-oldest' | 'refuse';

/** A range of sequence numbers, both ends inclusive. */
export interface SeqRange {
  readonly first: number;
  readonly last: number;
}

/** Options every implementation takes. */
export interface BufferOptions {
  /**
   * Budget in bytes for the stored samples (each sample counts its key + encoded value, the figure in
   * `stats().bytes`). LevelDB's own overhead on disk (log, not yet compacted tables) comes on top, typically
   * a few MiB. `Infinity` for no budget.
   */
  readonly maxSize: number;
  /** Samples whose `ts` is older than `now() - maxAge` are dropped (event reason `age`). Default: no limit. */
  readonly maxAge?: number;
  /** What to do when an append would exceed `maxSize`. Default `drop-oldest`. */
  readonly policy?: RetentionPolicy;
  /**
   * Group commit: an append waits at most this long (ms) for others to share its synced write (plus the
   * write itself). Appends arriving while a write is in progress always share the next one. Default 2.
   */
  readonly commitDelayMs?: number;
  /** Wall clock for age retention and event times (ms since the epoch). Default `Date.now`. */
  readonly now?: () => number;
  /** How often (ms) age retention runs when nothing is appended. Default 60 000; 0 disables the timer. */
  readonly retentionIntervalMs?: number;
  /**
   * Free disk space (bytes) left to LevelDB for its own work (log, memtable flushes, compactions): the
   * budget in force is at most what is stored plus the free space less this, measured again every second.
   * Default 4 MiB.
   */
  readonly diskHeadroom?: number;
  /**
   * Receives every event, including those raised while opening (corruption repaired or set aside), which
   * happen before `on()` could be called.
   */
  readonly onEvent?: (event: BufferEvent) => void;
}

/**
 * A stored sample with its values still in their stored bytes (`readStored`): the head is decoded, the values
 * go to a `ValueSink` with `decodeStoredValues` when needed, without an object per value.
 */
export interface StoredSample {
  readonly seq: number;
  readonly meter: string;
  readonly ts: number;
  readonly flags: number;
  /** As in `Sample`: only on samples taken while the clock was unsynchronised. */
  readonly clock?: { readonly monoMs: number; readonly boot: string };
  /** The stored value bytes (checked to decode). */
  readonly bytes: Uint8Array;
}

/** Options of `readOldest`. */
export interface ReadOptions {
  /** At most this many samples (≥ 1). */
  readonly maxCount: number;
  /**
   * Stop before the total encoded size (as in `stats().bytes`) would exceed this; the first sample is always
   * returned, however large, so a big sample cannot stall the queue.
   */
  readonly maxBytes?: number;
  /** Only samples with `seq > afterSeq`: lets the batcher read past batches still in flight. Default 0. */
  readonly afterSeq?: number;
}

export interface BufferStats {
  /** Samples stored (accepted, not yet acknowledged or dropped). */
  readonly count: number;
  /** Their size: key + encoded value, what `maxSize` is compared with. */
  readonly bytes: number;
  readonly oldestSeq: number | null;
  readonly newestSeq: number | null;
  /** `ts` of the oldest / newest stored sample. */
  readonly oldestTs: number | null;
  readonly newestTs: number | null;
  /** The seq the next accepted sample will get (at least; failed appends may leave gaps). */
  readonly nextSeq: number;
  /** Samples dropped by retention since the store was created (persisted). */
  readonly droppedCount: number;
  /** Samples refused (policy `refuse`, disk full) since this instance was opened. */
  readonly refusedCount: number;
  /** The budget in force: `maxSize`, or lower while the free disk space is the limit (see `diskHeadroom`). */
  readonly effectiveMaxSize: number;
  readonly policy: RetentionPolicy;
}

/** Why samples were dropped or refused (`corrupt`: a stored value no longer decodes, found when opening). */
export type RetentionReason = 'size' | 'age' | 'disk-full' | 'corrupt';

/** Events the agent publishes (never silent data loss). `at` is `now()` when it happened. */
export type BufferEvent =
  | {
      /** Stored samples were deleted by retention. `fromSeq..toSeq` may contain gaps (already acked). */
      readonly type: 'dropped';
      readonly reason: RetentionReason;
      readonly fromSeq: number;
      readonly toSeq: number;
      readonly count: number;
      readonly bytes: number;
      /** Smallest / largest `ts` among the dropped samples. */
      readonly fromTs: number;
      readonly toTs: number;
      readonly at: number;
    }
  | {
      /** An append was rejected (policy `refuse`, or the disk was full); its samples got no seq. */
      readonly type: 'refused';
      readonly reason: RetentionReason;
      readonly count: number;
      readonly fromTs: number;
      readonly toTs: number;
      readonly at: number;
    }
  | {
      /** A write failed with ENOSPC (or the store cannot be opened for it): nothing is written until there is room. */
      readonly type: 'disk-full';
      readonly path: string;
      readonly effectiveMaxSize: number;
      readonly error: BufferError;
      readonly at: number;
    }
  | ({
      /** The store did not open; LevelDB's repair brought it back, losing the samples in `lost`. */
      readonly type: 'repaired';
      readonly path: string;
      readonly error: BufferError;
      readonly at: number;
    } & LossReport)
  | ({
      /**
       * The store could not be repaired: moved to `movedTo` (never deleted), a fresh one started; every
       * sample it held is in `lost`.
       */
      readonly type: 'corruption-set-aside';
      readonly path: string;
      readonly movedTo: string;
      readonly error: BufferError;
      readonly at: number;
    } & LossReport);

/** What a damaged store lost, from its seq ledger (see `seq-ledger.ts`). */
export interface LossReport {
  /** Samples lost: the sum of `lost` when `exact`, else a lower bound. */
  readonly lostCount: number;
  /** The lost seqs as inclusive ranges, ascending: each was stored (not acked, not dropped) and is gone. */
  readonly lost: readonly SeqRange[];
  /** False when the ledger was missing or coarse: `lost` may then be incomplete. */
  readonly exact: boolean;
  /** Where seqs go on: above every seq ever accepted, so the gap is exactly `lost`. */
  readonly nextSeq: number;
}

export type BufferEventListener = (event: BufferEvent) => void;

export interface ReadingBuffer {
  /**
   * Stores the samples durably and gives them consecutive sequence numbers, in array order. Resolves (with
   * the range, or `null` for an empty array) only when they are on disk: from then on they survive SIGKILL
   * and power loss. Concurrent appends share synced writes (group commit) and get seqs in call order.
   * Sequence numbers strictly increase and are never reused (not after acks, drops, restarts or repair);
   * there may be gaps (a failed write burns its seqs). Rejects with `BUFFER_FULL` (policy refuse),
   * `BUFFER_DISK_FULL`, `BUFFER_INVALID_SAMPLE`, `BUFFER_IO` or `BUFFER_CLOSED`; a rejected append is not
   * accepted (after a disk-full error LevelDB may still recover it on reopen: at-least-once, never lost).
   */
  append(samples: readonly SampleInput[]): Promise<SeqRange | null>;

  /**
   * The oldest stored samples with `seq > afterSeq`, in sequence order. Only accepted samples are returned
   * (an append that has not resolved yet is not visible).
   */
  readOldest(opts: ReadOptions): Promise<Sample[]>;

  /**
   * What `readOldest` reads (same options, same samples, same errors), with each sample's values left in its
   * stored bytes (`StoredSample`, `decodeStoredValues`): for the publisher, which packs them into a batch's
   * columns and needs no `Value` objects.
   */
  readStored(opts: ReadOptions): Promise<StoredSample[]>;

  /**
   * Deletes the stored samples with `fromSeq <= seq <= toSeq` in one atomic write. Seqs that are already
   * gone (acked before, dropped by retention, never used) are ignored, so acking twice is harmless.
   */
  ack(fromSeq: number, toSeq: number): Promise<void>;

  /** Current figures; cheap (kept in memory). */
  stats(): BufferStats;

  /** Subscribes to events; returns the unsubscribe function. Listener exceptions are swallowed. */
  on(listener: BufferEventListener): () => void;

  /**
   * Lets pending appends/acks finish, then closes the store (and releases its lock). Further calls reject
   * with `BUFFER_CLOSED`. Idempotent.
   */
  close(): Promise<void>;
}
