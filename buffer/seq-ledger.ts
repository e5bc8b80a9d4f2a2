/**
 * The seq ledger: a small file in the store's directory, written beside LevelDB and not by it, that says
 * which seqs the store holds and where seqs go on. LevelDB's repair and its log recovery lose records without
 * saying which (a damaged table block, the newest log records, the meta record among them); comparing what
 * the store holds after opening with the ledger names every lost seq exactly, and `nextSeq` lets numbering go
 * on from the highest seq ever accepted instead of jumping to a reservation bound.
 *
 * Two fixed 4 KiB slots, written alternately in place (one `pwrite` and one `fdatasync`, no rename, no
 * metadata): a write torn by a power cut spoils only the slot being written, and the other one, one
 * generation older, still reads. Each slot: magic, generation, nextSeq, flags, range count, ranges, CRC-32.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { SeqRange } from './reading-buffer.js';
import { coarsen } from './seq-ranges.js';

export const LEDGER_FILE = 'SEQ-LEDGER';
const SLOT = 4096;
const MAGIC = 0x4d4c4c31; // "MLL1"
const HEADER = 4 + 8 + 8 + 4 + 4;
/** Ranges that fit one slot with its header and CRC. */
export const LEDGER_MAX_RANGES = Math.floor((SLOT - HEADER - 4) / 16);
const FLAG_COARSE = 1;

export interface LedgerState {
  /** The seq the next accepted sample gets: every seq below it was handed out. */
  readonly nextSeq: number;
  /** Seqs the store holds (a superset when `exact` is false). */
  readonly stored: readonly SeqRange[];
  /** False when the ranges did not fit a slot and gaps were filled (see `coarsen`). */
  readonly exact: boolean;
}

function encodeSlot(gen: number, s: LedgerState): Buffer {
  const { ranges, coarsened } = coarsen(s.stored, LEDGER_MAX_RANGES);
  const b = Buffer.alloc(SLOT);
  b.writeUInt32BE(MAGIC, 0);
  b.writeDoubleBE(gen, 4);
  b.writeDoubleBE(s.nextSeq, 12);
  b.writeUInt32BE(coarsened || !s.exact ? FLAG_COARSE : 0, 20);
  b.writeUInt32BE(ranges.length, 24);
  let o = HEADER;
  for (const r of ranges) {
    b.writeDoubleBE(r.first, o);
    b.writeDoubleBE(r.last, o + 8);
    o += 16;
  }
  b.writeUInt32BE(crc32(b.subarray(0, o)), o);
  return b;
}

function decodeSlot(b: Buffer): { gen: number; state: LedgerState } | null {
  if (b.length < SLOT || b.readUInt32BE(0) !== MAGIC) return null;
  const n = b.readUInt32BE(24);
  if (n > LEDGER_MAX_RANGES) return null;
  const end = HEADER + 16 * n;
  if (crc32(b.subarray(0, end)) !== b.readUInt32BE(end)) return null;
  const gen = b.readDoubleBE(4);
  const nextSeq = b.readDoubleBE(12);
  const stored: SeqRange[] = [];
  for (let o = HEADER; o < end; o += 16)
    stored.push({ first: b.readDoubleBE(o), last: b.readDoubleBE(o + 8) });
  const sane =
    Number.isSafeInteger(gen) &&
    Number.isSafeInteger(nextSeq) &&
    nextSeq >= 1 &&
    stored.every(
      (r, i) =>
        Number.isSafeInteger(r.first) &&
        Number.isSafeInteger(r.last) &&
        r.first >= 1 &&
        r.first <= r.last &&
        r.last < nextSeq &&
        (i === 0 || r.first > stored[i - 1]!.last + 1),
    );
  return sane ? { gen, state: { nextSeq, stored, exact: (b.readUInt32BE(20) & FLAG_COARSE) === 0 } } : null;
}

/** The newest readable slot of the ledger in `dir`, or null (none, or both slots unreadable). */
export async function readLedger(dir: string): Promise<{ gen: number; state: LedgerState } | null> {
  let b: Buffer;
  try {
    b = await readFile(join(dir, LEDGER_FILE));
  } catch {
    return null;
  }
  const a = decodeSlot(b.subarray(0, SLOT));
  const c = decodeSlot(b.subarray(SLOT, 2 * SLOT));
  if (a && c) return a.gen >= c.gen ? a : c;
  return a ?? c;
}

/** The writer: keeps the file open; each write goes to the slot the newest generation is not in. */
export class LedgerWriter {
  private constructor(
    private readonly fh: FileHandle,
    private gen: number,
  ) {}

  /**
   * Opens (creating it with both slots allocated: a later write then needs no new block, even on a full
   * disk) the ledger in `dir`; `gen` is the newest generation read.
   */
  static async open(dir: string, gen: number): Promise<LedgerWriter> {
    const file = join(dir, LEDGER_FILE);
    let fh: FileHandle;
    try {
      fh = await open(file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fh = await open(file, 'w+');
    }
    try {
      if ((await fh.stat()).size < 2 * SLOT) {
        const whole = Buffer.alloc(2 * SLOT);
        const old = Buffer.alloc(2 * SLOT);
        const { bytesRead } = await fh.read(old, 0, 2 * SLOT, 0);
        old.copy(whole, 0, 0, bytesRead);
        await fh.write(whole, 0, 2 * SLOT, 0);
        await fh.sync();
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    return new LedgerWriter(fh, gen);
  }

  async write(state: LedgerState): Promise<void> {
    const gen = this.gen + 1;
    const slot = encodeSlot(gen, state);
    await this.fh.write(slot, 0, SLOT, (gen % 2) * SLOT);
    await this.fh.datasync();
    this.gen = gen;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
