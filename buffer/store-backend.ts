/**
 * The storage a `QueueReadingBuffer` runs on: an ordered map seq → encoded sample plus one meta record,
 * with atomic durable writes. LevelDB (`LevelBackend`) on the box, a sorted array (`MemoryBackend`) in
 * tests. Everything above it — seqs, group commit, budget, retention, events — is shared, so both
 * implementations behave the same by construction and the conformance suite checks the storage part.
 */

import type { LedgerState } from './seq-ledger.js';

export interface StoredEntry {
  readonly seq: number;
  /** The encoded sample (`encodeSample`). */
  readonly value: Buffer;
}

/** Persisted next to the samples, in the same atomic write. */
export interface StoredMeta {
  /** Next seq to assign: never goes down, so seqs are never reused after deletes. */
  readonly nextSeq: number;
  /** Samples dropped by retention, ever. */
  readonly dropped: number;
  /** Samples stored and their size: checked against a scan on open (LevelDB skips damaged blocks silently). */
  readonly count: number;
  readonly bytes: number;
}

export interface StoreBackend {
  /** Where the store lives, for messages and events (`memory:` for the in-memory one). */
  readonly location: string;
  /** Entries with `gt < seq ≤ lte`, in seq order, at most `limit`. */
  range(gt: number, lte: number, limit: number): Promise<StoredEntry[]>;
  readMeta(): Promise<StoredMeta | undefined>;
  /** One atomic write that is durable when it resolves. Throws `BufferError` (`BUFFER_DISK_FULL`, ...). */
  write(puts: readonly StoredEntry[], dels: readonly number[], meta: StoredMeta): Promise<void>;
  /**
   * Makes the store writable again after a failed write (LevelDB refuses all writes after an I/O error
   * until reopened).
   */
  reopen(): Promise<void>;
  /**
   * Seqs below `upTo` may be used once this resolves: a reservation that outlives the store itself (kept
   * beside it), so a store set aside after corruption does not make a fresh one reuse seqs. Returns the
   * reserved bound, which may be higher than asked.
   */
  reserve(upTo: number): Promise<number>;
  /** The current reservation (0 if none). */
  reserved(): number;
  /**
   * The seq ledger kept beside the store (see `seq-ledger.ts`), or null when there is none or it is
   * unreadable (and always for a store that nothing outlives).
   */
  readLedger(): Promise<LedgerState | null>;
  /** Durably records what the store holds. Throws `BufferError`. */
  writeLedger(state: LedgerState): Promise<void>;
  /** Bytes the file system holding the store still has for it (null: not on a disk). */
  freeBytes(): Promise<number | null>;
  /** Makes LevelDB give back the disk space of deleted seqs in `[from, to]` now rather than eventually. */
  reclaim(from: number, to: number): Promise<void>;
  close(): Promise<void>;
}
