/**
 * In-memory `StoreBackend`: a seq-sorted array. Appends only ever add seqs above every stored one, so the
 * array stays sorted by pushing; deletes mark holes that are compacted away when they pile up.
 */
import type { LedgerState } from './seq-ledger.js';
import type { StoreBackend, StoredEntry, StoredMeta } from './store-backend.js';

export class MemoryBackend implements StoreBackend {
  readonly location: string;
  private entries: (StoredEntry | null)[] = [];
  private head = 0;
  private holes = 0;
  private readonly index = new Map<number, number>();
  private meta: StoredMeta | undefined;

  constructor(name = 'memory') {
    this.location = `memory:${name}`;
  }

  /** Position of the first slot with seq > gt (binary search over the sorted, possibly holed array). */
  private lowerBound(gt: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      // A hole keeps its neighbours' order; probe right of it for a live seq.
      let probe = mid;
      while (probe < hi && this.entries[probe] === null) probe++;
      const e = this.entries[probe];
      if (!e) hi = mid;
      else if (e.seq <= gt) lo = probe + 1;
      else hi = mid;
    }
    return lo;
  }

  range(gt: number, lte: number, limit: number): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    for (let i = this.lowerBound(gt); i < this.entries.length && out.length < limit; i++) {
      const e = this.entries[i];
      if (!e) continue;
      if (e.seq > lte) break;
      out.push(e);
    }
    return Promise.resolve(out);
  }

  readMeta(): Promise<StoredMeta | undefined> {
    return Promise.resolve(this.meta);
  }

  write(puts: readonly StoredEntry[], dels: readonly number[], meta: StoredMeta): Promise<void> {
    for (const seq of dels) {
      const i = this.index.get(seq);
      if (i === undefined) continue;
      this.entries[i] = null;
      this.index.delete(seq);
      this.holes++;
    }
    for (const e of puts) {
      this.index.set(e.seq, this.entries.length);
      this.entries.push(e);
    }
    this.meta = meta;
    while (this.head < this.entries.length && this.entries[this.head] === null) {
      this.head++;
      this.holes--;
    }
    if (this.head > 4096 && this.head * 2 > this.entries.length) this.compact();
    else if (this.holes > 4096 && this.holes * 2 > this.entries.length) this.compact();
    return Promise.resolve();
  }

  private compact(): void {
    this.entries = this.entries.filter((e): e is StoredEntry => e !== null);
    this.head = 0;
    this.holes = 0;
    this.index.clear();
    this.entries.forEach((e, i) => this.index.set(e!.seq, i));
  }

  reopen(): Promise<void> {
    return Promise.resolve();
  }

  reserve(upTo: number): Promise<number> {
    return Promise.resolve(upTo);
  }

  reserved(): number {
    // Nothing outlives this store, so there is nothing to reserve against.
    return Number.MAX_SAFE_INTEGER;
  }

  readLedger(): Promise<LedgerState | null> {
    return Promise.resolve(null);
  }

  writeLedger(): Promise<void> {
    return Promise.resolve();
  }

  freeBytes(): Promise<number | null> {
    return Promise.resolve(null);
  }

  reclaim(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
