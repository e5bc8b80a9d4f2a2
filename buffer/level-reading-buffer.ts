/**
 * `openLevelBuffer`: the on-disk `ReadingBuffer` (LevelDB via classic-level), with recovery on open.
 *
 * Opening: a held lock is a clear `BUFFER_LOCKED` error (never a hang, never "repaired"). Any other failure
 * to open or to read the store through (checksums, undecodable tables) runs LevelDB's repair; if the store
 * still does not open, it is renamed to `<path>.corrupt-<timestamp>` (kept for forensics, never deleted) and
 * a fresh store starts, continuing the seqs from the reservation kept beside the old one.
 */
import { rename } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import { BufferError, isBufferError } from './errors.js';
import { LevelBackend, mapLevelError } from './level-backend.js';
import { QueueReadingBuffer } from './queue-reading-buffer.js';
import type { BufferEvent, BufferOptions } from './reading-buffer.js';
import { readLedger, type LedgerState } from './seq-ledger.js';
import { readReserve } from './seq-reserve.js';

export interface LevelBufferOptions extends BufferOptions {
  /** Directory of the LevelDB store (created if missing, unless `createIfMissing` is false). */
  readonly path: string;
  /** Default true. False: a missing store is `BUFFER_NOT_FOUND` (for inspection tools). */
  readonly createIfMissing?: boolean;
  /**
   * `auto` (default): repair, else set aside and start fresh, with an event. `never`: fail with
   * `BUFFER_CORRUPT` and leave the files alone (for inspection tools).
   */
  readonly recovery?: 'auto' | 'never';
  /**
   * Stored bytes read after which LevelDB's mmapped tables are released by reopening the store (default
   * `RELEASE_TABLES_AFTER_BYTES`, 8 MiB).
   */
  readonly releaseTablesAfterBytes?: number;
}

/** Errors that recovery must not touch: someone else has the store, there is none, or the disk is full. */
const notRecoverable = (err: unknown): boolean =>
  isBufferError(err, 'BUFFER_LOCKED') ||
  isBufferError(err, 'BUFFER_DISK_FULL') ||
  isBufferError(err, 'BUFFER_NOT_FOUND') ||
  isBufferError(err, 'BUFFER_INVALID_ARGUMENT');

/** Opens and loads; `afterRepair` accepts what is there (the loss is reported by the caller's event). */
async function attempt(
  opts: LevelBufferOptions,
  createIfMissing: boolean,
  minNextSeq: number,
  afterRepair: boolean,
  expected?: LedgerState | null,
) {
  const backend = await LevelBackend.open(opts.path, createIfMissing, {
    releaseTablesAfterBytes: opts.releaseTablesAfterBytes,
  });
  try {
    if (backend.recoveryLoss && !afterRepair)
      throw new BufferError(
        'BUFFER_CORRUPT',
        `LevelDB dropped damaged records of ${opts.path} while opening: ${backend.recoveryLoss}`,
        { path: opts.path },
      );
    return await QueueReadingBuffer.open(backend, opts, { minNextSeq, verify: !afterRepair, expected });
  } catch (err) {
    await backend.close().catch(() => undefined);
    throw err;
  }
}

function corruptName(path: string, now: number): string {
  // 2025-01-31T12-00-00-000Z: sortable, no colons (fine in every file system and shell).
  return `${path.replace(/\/+$/, '')}.corrupt-${new Date(now).toISOString().replace(/[:.]/g, '-')}`;
}

/**
 * Where seqs continue after repair or set-aside: the ledger's next seq (the highest ever accepted + 1, so
 * the cloud sees exactly the lost ranges as a gap); without a ledger the reservation; if that is unreadable
 * too, the wall clock in ms (seqs grow far slower than 1000/s, so this is above anything used before; 2^53
 * leaves ample room).
 */
async function seqFloor(dir: string, now: () => number): Promise<number> {
  return (await readLedger(dir))?.state.nextSeq ?? ((await readReserve(dir)) || now());
}

export async function openLevelBuffer(opts: LevelBufferOptions): Promise<QueueReadingBuffer> {
  if (typeof opts?.path !== 'string' || opts.path === '')
    throw new BufferError(
      'BUFFER_INVALID_ARGUMENT',
      'openLevelBuffer needs a path (buffer.path in the config)',
    );
  const now = opts.now ?? Date.now;
  const emit = (e: BufferEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      // A listener's bug must not stop the buffer from opening.
    }
  };
  let first: BufferError;
  try {
    return await attempt(opts, opts.createIfMissing ?? true, 1, false);
  } catch (err) {
    if (notRecoverable(err) || !isBufferError(err)) throw err;
    first = err;
  }
  if (opts.recovery === 'never')
    throw new BufferError(
      'BUFFER_CORRUPT',
      `the buffer at ${opts.path} does not open (${first.message}); the agent repairs it on start, or move ` +
        `it aside`,
      { path: opts.path },
      { cause: first },
    );

  try {
    await ClassicLevel.repair(opts.path);
    // Repair can lose the newest meta record: continue above every seq that may have been used.
    const b = await attempt(opts, false, await seqFloor(opts.path, now), true);
    emit({
      type: 'repaired',
      path: opts.path,
      lostCount: b.lostOnOpen,
      lost: b.lostRangesOnOpen,
      exact: b.lostExact,
      nextSeq: b.stats().nextSeq,
      error: first,
      at: now(),
    });
    return b;
  } catch (err) {
    if (isBufferError(err, 'BUFFER_LOCKED') || isBufferError(err, 'BUFFER_DISK_FULL')) throw err;
  }

  const movedTo = corruptName(opts.path, now());
  try {
    await rename(opts.path, movedTo);
  } catch (err) {
    throw mapLevelError(err, opts.path, `setting aside the corrupt store as ${movedTo}:`);
  }
  // The fresh store holds nothing: everything the old one's ledger names is lost.
  const expected = (await readLedger(movedTo))?.state ?? null;
  const b = await attempt(opts, true, await seqFloor(movedTo, now), true, expected);
  emit({
    type: 'corruption-set-aside',
    path: opts.path,
    movedTo,
    lostCount: b.lostOnOpen,
    lost: b.lostRangesOnOpen,
    exact: expected !== null && b.lostExact,
    nextSeq: b.stats().nextSeq,
    error: first,
    at: now(),
  });
  return b;
}
