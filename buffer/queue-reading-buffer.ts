/**
 * The `ReadingBuffer` logic shared by every storage: seq assignment, group commit, budget and age
 * retention, drop/refuse events, stats. The storage (`StoreBackend`) only keeps bytes in order.
 *
 * All writes — appends, acks, retention drops, the meta record — go through one queue and leave as one
 * atomic, synced backend write per group: the counters in memory change only after that write succeeded.
 */
import type { Sample, SampleInput } from '../cloud-contract/sample.js';
import { BufferError, isBufferError } from './errors.js';
import type {
  BufferEvent,
  BufferEventListener,
  BufferOptions,
  BufferStats,
  ReadingBuffer,
  ReadOptions,
  RetentionPolicy,
  RetentionReason,
  SeqRange,
  StoredSample,
} from './reading-buffer.js';
import { checkSample, decodeHead, decodeSample, encodeSample, KEY_LENGTH, peekTs } from './sample-codec.js';
import type { LedgerState } from './seq-ledger.js';
import { addRange, countOf, RangeBuilder, removeRange, subtract } from './seq-ranges.js';
import type { StoreBackend, StoredEntry, StoredMeta } from './store-backend.js';

/** Largest seq we hand out: 2^53 − 1, the last integer a JS number holds exactly. */
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
const SCAN_CHUNK = 1024;
/** Seqs reserved ahead of use (one small synced file write per this many samples). */
const RESERVE_STEP = 100_000;
/**
 * Dropping for size frees this share of the budget beyond what the append needs, so that a full buffer
 * drops (and reports) whole ranges now and then instead of one sample per append.
 */
const DROP_SLACK = 0.01;
/** Free disk space is measured again before an append at most this often (ms), and after every ENOSPC. */
const DISK_CHECK_MS = 1_000;
/** While a failed write leaves the store unwritable, reopening it is tried this often (ms). */
const RECOVER_RETRY_MS = 1_000;

interface Pending<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}
interface AppendBody {
  kind: 'append';
  inputs: readonly SampleInput[];
  encoded: Buffer[];
  bytes: number;
}
interface AckBody {
  kind: 'ack';
  from: number;
  to: number;
}
type OpBody = AppendBody | AckBody | { kind: 'retention' };
type Op =
  (AppendBody & Pending<SeqRange>) | (AckBody & Pending<void>) | ({ kind: 'retention' } & Pending<void>);

interface Drop {
  fromSeq: number;
  toSeq: number;
  count: number;
  bytes: number;
  fromTs: number;
  toTs: number;
}

const entrySize = (value: Buffer): number => KEY_LENGTH + value.length;

function checkNumber(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v < min)
    throw new BufferError('BUFFER_INVALID_ARGUMENT', `${name} must be a number ≥ ${min}, got ${String(v)}`, {
      [name]: v,
    });
  return v;
}

/** Validated, defaulted options. */
interface Settings {
  maxSize: number;
  maxAge: number;
  policy: RetentionPolicy;
  commitDelayMs: number;
  now: () => number;
  retentionIntervalMs: number;
  diskHeadroom: number;
}

/** See `BufferOptions.diskHeadroom`. */
export const DEFAULT_DISK_HEADROOM = 4 << 20;

export function settingsOf(opts: BufferOptions): Settings {
  const policy = opts.policy ?? 'drop-oldest';
  if (policy !== 'drop-oldest' && policy !== 'refuse')
    throw new BufferError(
      'BUFFER_INVALID_ARGUMENT',
      `policy must be 'drop-oldest' or 'refuse', got ${policy}`,
    );
  return {
    maxSize: checkNumber('maxSize', opts.maxSize, 1),
    maxAge: opts.maxAge === undefined ? Infinity : checkNumber('maxAge', opts.maxAge, 1),
    policy,
    commitDelayMs: checkNumber('commitDelayMs', opts.commitDelayMs ?? 2, 0),
    now: opts.now ?? Date.now,
    retentionIntervalMs: checkNumber('retentionIntervalMs', opts.retentionIntervalMs ?? 60_000, 0),
    diskHeadroom: checkNumber('diskHeadroom', opts.diskHeadroom ?? DEFAULT_DISK_HEADROOM, 0),
  };
}

/** `ReadingBuffer` over any `StoreBackend`. Create with `QueueReadingBuffer.open`. */
export class QueueReadingBuffer implements ReadingBuffer {
  private readonly s: Settings;
  private readonly listeners = new Set<BufferEventListener>();
  private meta: StoredMeta = { nextSeq: 1, dropped: 0, count: 0, bytes: 0 };
  private lost = 0;
  private lostSeqs: SeqRange[] = [];
  private lostKnown = true;
  /** The seqs the store holds, as the ledger records them. */
  private stored: SeqRange[] = [];
  /** The seq the next accepted sample gets; reads see only seqs below it (accepted ones). */
  private nextSeq = 1;
  private count = 0;
  private bytes = 0;
  private oldest: { seq: number; ts: number } | null = null;
  private newest: { seq: number; ts: number } | null = null;
  private refused = 0;
  private effectiveMaxSize: number;
  /** Free bytes of the file system when last measured (null: not on a disk), and when. */
  private diskFree: number | null = null;
  private diskMeasuredAt = -Infinity;
  private diskMeasuredBytes = 0;
  /** Stored bytes when the free space fell below the headroom (null: it has not). */
  private shortSince: number | null = null;
  private recoverTimer: NodeJS.Timeout | null = null;
  private pending: Op[] = [];
  private timer: NodeJS.Timeout | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  /** A write failed and the store could not be reopened yet: retried before the next group. */
  private broken: BufferError | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly backend: StoreBackend,
    opts: BufferOptions,
  ) {
    this.s = settingsOf(opts);
    this.effectiveMaxSize = this.s.maxSize;
    if (opts.onEvent) this.listeners.add(opts.onEvent);
  }

  /**
   * Loads the state from the backend (one full scan: exact counters, and every stored value is checked to
   * decode; the ones that do not are removed with a `dropped` event, reason `corrupt`).
   * `minNextSeq` raises the next seq (after repair or a fresh start, from the reservation).
   * `verify`: the scan must find what the meta record counts, else `BUFFER_CORRUPT` (LevelDB skips damaged
   * table blocks without an error); false after a repair, where the loss is accepted and counted in
   * `lostOnOpen`.
   */
  static async open(
    backend: StoreBackend,
    opts: BufferOptions,
    {
      minNextSeq = 1,
      verify = true,
      expected,
    }: { minNextSeq?: number; verify?: boolean; expected?: LedgerState | null } = {},
  ): Promise<QueueReadingBuffer> {
    const b = new QueueReadingBuffer(backend, opts);
    await b.load(minNextSeq, verify, expected);
    if (b.s.maxAge !== Infinity && b.s.retentionIntervalMs > 0) {
      b.retentionTimer = setInterval(() => {
        b.enqueue<void>({ kind: 'retention' }).catch(() => undefined);
      }, b.s.retentionIntervalMs);
      b.retentionTimer.unref();
    }
    return b;
  }

  /** Samples the store held before and no longer has, found when opening (after a repair). */
  get lostOnOpen(): number {
    return this.lost;
  }

  /** The seq ranges of `lostOnOpen`, ascending. */
  get lostRangesOnOpen(): readonly SeqRange[] {
    return this.lostSeqs;
  }

  /**
   * Whether `lostOnOpen` and its ranges are exact: false when the store's ledger was missing or coarse
   * (then the count is a lower bound, from the meta record).
   */
  get lostExact(): boolean {
    return this.lostKnown;
  }

  /**
   * Loads the state. `expected` is what the store is known to have held (the ledger of a store set aside);
   * by default the store's own ledger. Seqs it names that the scan does not find are lost (`lostOnOpen`).
   */
  private async load(minNextSeq: number, verify: boolean, expected?: LedgerState | null): Promise<void> {
    const stored = await this.backend.readMeta();
    const ledger = expected !== undefined ? expected : await this.backend.readLedger();
    const found = new RangeBuilder();
    this.meta = stored ?? { nextSeq: 1, dropped: 0, count: 0, bytes: 0 };
    let count = 0;
    let bytes = 0;
    let oldest: { seq: number; ts: number } | null = null;
    let newestSeq = 0;
    let newestTs = 0;
    const corrupt: StoredEntry[] = [];
    // The next chunk is read (LevelDB's thread) while this one is checked (this thread): a week's backlog
    // is ~600 chunks. A read abandoned by a throw below is not left as an unhandled rejection.
    let next = this.backend.range(0, MAX_SEQ, SCAN_CHUNK);
    for (;;) {
      const chunk = await next;
      const more = chunk.length >= SCAN_CHUNK;
      if (more) {
        next = this.backend.range(chunk[chunk.length - 1]!.seq, MAX_SEQ, SCAN_CHUNK);
        next.catch(() => undefined);
      }
      for (const e of chunk) {
        found.push(e.seq);
        try {
          const ts = checkSample(e.seq, e.value);
          count++;
          bytes += entrySize(e.value);
          if (!oldest) oldest = { seq: e.seq, ts };
          newestSeq = e.seq;
          newestTs = ts;
        } catch (err) {
          if (!isBufferError(err, 'BUFFER_DECODE')) throw err;
          corrupt.push(e);
        }
      }
      if (!more) break;
    }
    const corruptBytes = corrupt.reduce((n, e) => n + entrySize(e.value), 0);
    const newest = count > 0 ? { seq: newestSeq, ts: newestTs } : null;
    const foundCount = count + corrupt.length;
    const mismatch =
      stored !== undefined && (stored.count !== foundCount || stored.bytes !== bytes + corruptBytes);
    if (mismatch && verify)
      throw new BufferError(
        'BUFFER_CORRUPT',
        `the buffer at ${this.backend.location} holds ${foundCount} samples but recorded ${stored.count}: ` +
          `LevelDB lost data in a damaged table`,
        { path: this.backend.location, found: foundCount, recorded: stored.count },
      );
    const foundRanges = found.done();
    const lostSeqs = ledger ? subtract(ledger.stored, foundRanges) : [];
    if (lostSeqs.length > 0 && verify)
      throw new BufferError(
        'BUFFER_CORRUPT',
        `the buffer at ${this.backend.location} lost ${countOf(lostSeqs)} samples its ledger records ` +
          `(seq ${lostSeqs[0]!.first}…${lostSeqs[lostSeqs.length - 1]!.last})`,
        { path: this.backend.location, lost: countOf(lostSeqs) },
      );
    this.lostSeqs = lostSeqs;
    this.lost = ledger ? countOf(lostSeqs) : mismatch ? Math.max(0, stored.count - foundCount) : 0;
    // Without a ledger, a store that held anything may have lost samples nobody can name.
    this.lostKnown = ledger ? ledger.exact : stored === undefined || !mismatch;
    let kept: SeqRange[] = foundRanges;
    for (const e of corrupt) kept = removeRange(kept, e.seq, e.seq);
    this.stored = kept;
    const lastSeen = Math.max(newest?.seq ?? 0, corrupt[corrupt.length - 1]?.seq ?? 0);
    this.nextSeq = Math.max(this.meta.nextSeq, lastSeen + 1, minNextSeq, ledger?.nextSeq ?? 1);
    // What is stored now is the new truth: the loss is reported once (by the caller), not at every open.
    await this.writeLedger();
    this.count = count;
    this.bytes = bytes;
    this.oldest = oldest;
    this.newest = newest;
    if (mismatch || corrupt.length > 0 || this.nextSeq !== this.meta.nextSeq) {
      const meta = { nextSeq: this.nextSeq, dropped: this.meta.dropped + corrupt.length, count, bytes };
      await this.backend.write(
        [],
        corrupt.map((e) => e.seq),
        meta,
      );
      this.meta = meta;
    }
    if (corrupt.length > 0) {
      this.emit({
        type: 'dropped',
        reason: 'corrupt',
        fromSeq: corrupt[0]!.seq,
        toSeq: corrupt[corrupt.length - 1]!.seq,
        count: corrupt.length,
        bytes: corruptBytes,
        // The ts of a value that does not decode is unknown.
        fromTs: NaN,
        toTs: NaN,
        at: this.s.now(),
      });
    }
  }

  get location(): string {
    return this.backend.location;
  }

  append(samples: readonly SampleInput[]): Promise<SeqRange | null> {
    if (this.closed) return Promise.reject(this.closedError());
    if (!Array.isArray(samples))
      return Promise.reject(new BufferError('BUFFER_INVALID_ARGUMENT', 'append takes an array of samples'));
    if (samples.length === 0) return Promise.resolve(null);
    let encoded: Buffer[];
    try {
      encoded = samples.map((s) => encodeSample(s));
    } catch (err) {
      return Promise.reject(err);
    }
    const bytes = encoded.reduce((n, v) => n + entrySize(v), 0);
    return this.enqueue<SeqRange>({
      kind: 'append',
      inputs: samples as readonly SampleInput[],
      encoded,
      bytes,
    });
  }

  ack(fromSeq: number, toSeq: number): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (!Number.isSafeInteger(fromSeq) || !Number.isSafeInteger(toSeq) || fromSeq > toSeq)
      return Promise.reject(
        new BufferError(
          'BUFFER_INVALID_ARGUMENT',
          `ack needs integers fromSeq ≤ toSeq, got ${fromSeq}..${toSeq}`,
          {
            fromSeq,
            toSeq,
          },
        ),
      );
    return this.enqueue<void>({ kind: 'ack', from: fromSeq, to: toSeq });
  }

  readOldest(opts: ReadOptions): Promise<Sample[]> {
    return this.read(opts, decodeSample);
  }

  readStored(opts: ReadOptions): Promise<StoredSample[]> {
    return this.read(opts, decodeHead);
  }

  private async read<T>(opts: ReadOptions, decode: (seq: number, value: Buffer) => T): Promise<T[]> {
    if (this.closed) throw this.closedError();
    // The store may be closed for recovery: say why, rather than LevelDB's "not open".
    if (this.broken) throw this.broken;
    const maxCount = Math.floor(checkNumber('maxCount', opts?.maxCount, 1));
    const maxBytes = opts.maxBytes === undefined ? Infinity : checkNumber('maxBytes', opts.maxBytes, 0);
    const afterSeq = opts.afterSeq === undefined ? 0 : checkNumber('afterSeq', opts.afterSeq, 0);
    // Start at the oldest known sample: seeking from 0 would walk LevelDB's tombstones of acked samples.
    let gt = Math.max(afterSeq, (this.oldest?.seq ?? this.nextSeq) - 1);
    // Seqs being written are not accepted yet (their append has not resolved): never hand them out.
    const lte = this.nextSeq - 1;
    const out: T[] = [];
    let bytes = 0;
    while (out.length < maxCount) {
      const want = Math.min(maxCount - out.length, SCAN_CHUNK);
      let chunk: StoredEntry[];
      try {
        chunk = await this.backend.range(gt, lte, want);
      } catch (err) {
        // The store was closed by a reopen that failed for lack of space (releasing its tables): recover
        // on the timer as after a failed write, so reads resume without waiting for an append.
        if (isBufferError(err, 'BUFFER_DISK_FULL') && !this.broken && !this.closed) {
          this.broken = err;
          this.retryRecovery();
        }
        throw err;
      }
      for (const e of chunk) {
        const size = entrySize(e.value);
        if (out.length > 0 && bytes + size > maxBytes) return out;
        out.push(decode(e.seq, e.value));
        bytes += size;
      }
      if (chunk.length < want) break;
      gt = chunk[chunk.length - 1]!.seq;
    }
    return out;
  }

  stats(): BufferStats {
    return {
      count: this.count,
      bytes: this.bytes,
      oldestSeq: this.oldest?.seq ?? null,
      newestSeq: this.newest?.seq ?? null,
      oldestTs: this.oldest?.ts ?? null,
      newestTs: this.newest?.ts ?? null,
      nextSeq: this.nextSeq,
      droppedCount: this.meta.dropped,
      refusedCount: this.refused,
      effectiveMaxSize: this.effectiveMaxSize,
      policy: this.s.policy,
    };
  }

  on(listener: BufferEventListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    if (this.recoverTimer) clearInterval(this.recoverTimer);
    this.closing = (async () => {
      // Pending work still goes out: an append that was called before close() is not silently lost.
      while (this.pending.length > 0 || this.running) {
        if (this.timer) {
          clearTimeout(this.timer);
          this.timer = null;
        }
        if (!this.running) this.running = this.flush();
        await this.running;
      }
      await this.backend.close();
    })();
    return this.closing;
  }

  private closedError(): BufferError {
    return new BufferError('BUFFER_CLOSED', `the buffer at ${this.backend.location} is closed`, {
      path: this.backend.location,
    });
  }

  private emit(event: BufferEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A listener's bug must not break the buffer's bookkeeping.
      }
    }
  }

  private enqueue<T>(body: OpBody): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ ...body, resolve, reject } as Op);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer || this.running || this.closing) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.flush();
    }, this.s.commitDelayMs);
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const ops = this.pending;
        this.pending = [];
        await this.commit(ops);
      }
    } finally {
      this.running = null;
    }
  }

  /** One group: plan every op against the stored state, write once, then update memory and settle. */
  private async commit(ops: Op[]): Promise<void> {
    const now = this.s.now();
    if (this.broken && !(await this.recover())) {
      await this.failed(ops, [], this.broken, now, { appendsRefused: true });
      return;
    }
    if (ops.some((op) => op.kind === 'append')) await this.measureDisk();
    const dels = new Set<number>();
    const puts: StoredEntry[] = [];
    const putTs: number[] = [];
    const drops = new Map<RetentionReason, Drop>();
    const refusals: { op: Op & { kind: 'append' }; reason: RetentionReason; error: BufferError }[] = [];
    const accepted: { op: Op & { kind: 'append' }; range: SeqRange }[] = [];
    let count = this.count;
    let bytes = this.bytes;
    let dropped = this.meta.dropped;
    let nextSeq = this.nextSeq;
    // Oldest-first cursor over stored entries, then this group's own puts.
    let frontGt = (this.oldest?.seq ?? this.nextSeq) - 1;
    let frontBuf: StoredEntry[] = [];
    let putFront = 0;
    const nextFront = async (): Promise<{ e: StoredEntry; ts: number; put: boolean } | null> => {
      for (;;) {
        if (frontBuf.length === 0 && frontGt < this.nextSeq - 1) {
          frontBuf = await this.backend.range(frontGt, this.nextSeq - 1, SCAN_CHUNK);
          if (frontBuf.length === 0) frontGt = this.nextSeq - 1;
        }
        const e = frontBuf.shift();
        if (e) {
          frontGt = e.seq;
          if (!dels.has(e.seq)) return { e, ts: peekTs(e.value), put: false };
          continue;
        }
        const p = puts[putFront];
        if (!p) return null;
        return { e: p, ts: putTs[putFront]!, put: true };
      }
    };
    const dropFront = async (reason: RetentionReason, until: (ts: number) => boolean): Promise<void> => {
      for (;;) {
        const f = await nextFront();
        if (!f || until(f.ts)) {
          // Not dropped after all: put it back for the next caller.
          if (f && !f.put) frontBuf.unshift(f.e);
          return;
        }
        if (f.put) putFront++;
        else dels.add(f.e.seq);
        const size = entrySize(f.e.value);
        count--;
        bytes -= size;
        dropped++;
        const d = drops.get(reason);
        if (d) {
          d.toSeq = f.e.seq;
          d.count++;
          d.bytes += size;
          d.fromTs = Math.min(d.fromTs, f.ts);
          d.toTs = Math.max(d.toTs, f.ts);
        } else
          drops.set(reason, {
            fromSeq: f.e.seq,
            toSeq: f.e.seq,
            count: 1,
            bytes: size,
            fromTs: f.ts,
            toTs: f.ts,
          });
      }
    };

    for (const op of ops) {
      if (op.kind === 'ack') {
        // Only what is stored now is deleted: seqs given to this group's appends are not acked by it.
        let gt = Math.max(op.from - 1, (this.oldest?.seq ?? this.nextSeq) - 1);
        const lte = Math.min(op.to, this.nextSeq - 1);
        while (gt < lte) {
          let chunk: StoredEntry[];
          try {
            chunk = await this.backend.range(gt, lte, SCAN_CHUNK);
          } catch (err) {
            op.reject(err);
            break;
          }
          for (const e of chunk) {
            if (dels.has(e.seq)) continue;
            dels.add(e.seq);
            count--;
            bytes -= entrySize(e.value);
          }
          if (chunk.length < SCAN_CHUNK) break;
          gt = chunk[chunk.length - 1]!.seq;
        }
      } else if (op.kind === 'append') {
        const ts = op.inputs.map((s) => s.ts);
        if (
          op.bytes > this.effectiveMaxSize ||
          (this.s.policy === 'refuse' && bytes + op.bytes > this.effectiveMaxSize)
        ) {
          const diskFull = this.effectiveMaxSize < this.s.maxSize;
          const reason: RetentionReason = diskFull ? 'disk-full' : 'size';
          const why =
            op.bytes > this.effectiveMaxSize
              ? `${op.bytes} B in one append is more than the whole budget (${this.effectiveMaxSize} B)`
              : `the budget is reached (${bytes} of ${this.effectiveMaxSize} B stored, policy refuse)`;
          refusals.push({
            op,
            reason,
            error: new BufferError(
              diskFull ? 'BUFFER_DISK_FULL' : 'BUFFER_FULL',
              `buffer at ${this.backend.location} refused ${op.inputs.length} sample(s): ${why}; ` +
                `raise buffer.maxSize or free disk space`,
              { path: this.backend.location, bytes, maxSize: this.effectiveMaxSize },
            ),
          });
          continue;
        }
        if (bytes + op.bytes > this.effectiveMaxSize) {
          const target = this.effectiveMaxSize * (1 - DROP_SLACK) - op.bytes;
          const reason: RetentionReason = this.effectiveMaxSize < this.s.maxSize ? 'disk-full' : 'size';
          try {
            await dropFront(reason, () => bytes <= target);
          } catch (err) {
            op.reject(err);
            continue;
          }
        }
        const first = nextSeq;
        for (let i = 0; i < op.encoded.length; i++) {
          puts.push({ seq: nextSeq++, value: op.encoded[i]! });
          putTs.push(ts[i]!);
        }
        count += op.encoded.length;
        bytes += op.bytes;
        accepted.push({ op, range: { first, last: nextSeq - 1 } });
      }
    }
    if (this.s.maxAge !== Infinity) {
      const cutoff = now - this.s.maxAge;
      try {
        await dropFront('age', (ts) => ts >= cutoff);
      } catch {
        // Age retention is retried with the next group; a read error here must not fail the appends.
      }
    }

    const keptPuts = puts.slice(putFront);
    const meta: StoredMeta = { nextSeq, dropped, count, bytes };
    // The ledger shrinks before the store does and grows after it: whatever a crash interrupts, the store
    // holds at least what the ledger names, so every seq the ledger names and the store lacks is truly lost.
    let stored = this.stored;
    for (const op of ops)
      if (op.kind === 'ack') stored = removeRange(stored, op.from, Math.min(op.to, this.nextSeq - 1));
    for (const d of drops.values()) stored = removeRange(stored, d.fromSeq, d.toSeq);
    const firstKept = keptPuts[0];
    const lastKept = keptPuts[keptPuts.length - 1];
    const settleRefusals = () => {
      for (const r of refusals) {
        this.refused += r.op.inputs.length;
        r.op.reject(r.error);
        const ts = r.op.inputs.map((s) => s.ts);
        this.emit({
          type: 'refused',
          reason: r.reason,
          count: r.op.inputs.length,
          fromTs: Math.min(...ts),
          toTs: Math.max(...ts),
          at: now,
        });
      }
    };
    try {
      if (nextSeq > this.backend.reserved()) await this.backend.reserve(nextSeq + RESERVE_STEP);
      if (dels.size > 0) await this.writeLedger(stored, this.nextSeq);
      if (
        keptPuts.length > 0 ||
        dels.size > 0 ||
        nextSeq !== this.meta.nextSeq ||
        dropped !== this.meta.dropped
      )
        await this.backend.write(keptPuts, [...dels], meta);
    } catch (err) {
      // The seqs of a failed write are not burned: the reload in `recover` continues above whatever
      // LevelDB kept of it, so no seq is reused and the cloud sees no gap that nothing explains.
      settleRefusals();
      await this.failed(ops, accepted, err, now);
      return;
    }
    if (firstKept && lastKept) stored = addRange(stored, firstKept.seq, lastKept.seq);
    this.stored = stored;
    if (firstKept) await this.writeLedger(stored, nextSeq);
    const wasEmpty = this.count === 0;
    this.nextSeq = nextSeq;
    this.meta = meta;
    this.count = count;
    this.bytes = bytes;
    const last = keptPuts[keptPuts.length - 1];
    if (last) this.newest = { seq: last.seq, ts: putTs[putTs.length - 1]! };
    const firstPut = keptPuts[0];
    if (count === 0) {
      this.oldest = null;
      this.newest = null;
    } else if (wasEmpty && firstPut) {
      // Was empty: the first new sample is the oldest (no seek over the tombstones of acked ones).
      this.oldest = { seq: firstPut.seq, ts: putTs[putFront]! };
    } else if (!this.oldest || dels.has(this.oldest.seq)) {
      this.oldest = await this.findOldest(this.oldest?.seq ?? 0, keptPuts, putTs.slice(putFront));
    }
    for (const a of accepted) a.op.resolve(a.range);
    for (const op of ops) if (op.kind !== 'append') op.resolve(undefined as never);
    settleRefusals();
    for (const [reason, d] of drops) this.emit({ type: 'dropped', reason, ...d, at: now });
    const diskDrop = drops.get('disk-full');
    if (diskDrop) {
      // LevelDB frees the space of deleted records only when it compacts them: do it now, so the next
      // measurement sees the room made (else every group would drop again for the same missing space).
      await this.backend.reclaim(diskDrop.fromSeq, diskDrop.toSeq).catch(() => undefined);
      this.diskMeasuredAt = -Infinity;
    }
  }

  /**
   * The budget in force: `maxSize`, or what is stored plus the free disk space less the headroom LevelDB
   * needs to work (its log, flushes and compactions), whichever is smaller. Measured again at most every
   * `DISK_CHECK_MS`, so the budget follows the disk both ways: it falls while something else fills it and
   * rises again as soon as space comes back. While the disk is short of that headroom the store holds its
   * size (see below): the budget never cuts it deeper than that.
   */
  private async measureDisk(): Promise<void> {
    const t = Date.now();
    // Also sooner when what was appended since could have used a quarter of the room there was (a backlog
    // written fast, a small disk).
    const room = (this.diskFree ?? Infinity) - this.s.diskHeadroom;
    if (t - this.diskMeasuredAt >= DISK_CHECK_MS || this.bytes - this.diskMeasuredBytes > room / 4) {
      this.diskMeasuredAt = t;
      this.diskMeasuredBytes = this.bytes;
      this.diskFree = await this.backend.freeBytes();
    }
    if (this.diskFree === null) {
      this.effectiveMaxSize = this.s.maxSize;
      return;
    }
    let cap = this.bytes + this.diskFree - this.s.diskHeadroom;
    if (cap >= this.bytes) this.shortSince = null;
    else {
      // Short of room (something else is filling the disk, or LevelDB's compactions briefly are): the
      // store stops growing — new samples replace the oldest — but is not cut below its size when the
      // shortage began, which could not give the room back anyway and would only lose readings.
      this.shortSince ??= this.bytes;
      cap = Math.max(cap, this.shortSince);
    }
    this.effectiveMaxSize = Math.min(this.s.maxSize, cap);
  }

  /**
   * Records the stored seqs in the ledger (default: what is stored now). A failure is not the write's
   * failure: the samples are in the store; the ledger is written again with the next group.
   */
  private async writeLedger(
    stored: readonly SeqRange[] = this.stored,
    nextSeq = this.nextSeq,
  ): Promise<void> {
    try {
      // From here on the ledger is a full record, whatever was known of the past.
      await this.backend.writeLedger({ nextSeq, stored, exact: true });
    } catch {
      // Only a later damage could then be misreported; the next write corrects the ledger.
    }
  }

  private async findOldest(
    from: number,
    puts: StoredEntry[],
    putTs: number[],
  ): Promise<{ seq: number; ts: number } | null> {
    try {
      const [e] = await this.backend.range(Math.max(0, from - 1), MAX_SEQ, 1);
      if (e) return { seq: e.seq, ts: peekTs(e.value) };
    } catch {
      // Fall through: the puts of this group are certainly stored.
    }
    const p = puts[0];
    return p ? { seq: p.seq, ts: putTs[0]! } : null;
  }

  /** A group's write failed: nothing of it counts. On ENOSPC, lower the budget and make the store writable. */
  private async failed(
    ops: Op[],
    accepted: { op: Op & { kind: 'append' }; range: SeqRange }[],
    err: unknown,
    now: number,
    { appendsRefused = false } = {},
  ): Promise<void> {
    const error = isBufferError(err)
      ? err
      : new BufferError(
          'BUFFER_IO',
          `write to ${this.backend.location} failed: ${String(err)}`,
          {},
          { cause: err },
        );
    if (appendsRefused) {
      // Still broken from an earlier failure: no new disk-full event, but every refused append is reported.
      for (const op of ops) {
        if (op.kind !== 'append') continue;
        this.refused += op.inputs.length;
        const ts = op.inputs.map((s) => s.ts);
        this.emit({
          type: 'refused',
          reason: 'disk-full',
          count: op.inputs.length,
          fromTs: Math.min(...ts),
          toTs: Math.max(...ts),
          at: now,
        });
      }
      for (const op of ops) op.reject(error);
      return;
    }
    if (error.code === 'BUFFER_DISK_FULL') {
      this.diskMeasuredAt = -Infinity;
      this.emit({
        type: 'disk-full',
        path: this.backend.location,
        effectiveMaxSize: this.effectiveMaxSize,
        error,
        at: now,
      });
      for (const a of accepted) {
        this.refused += a.op.inputs.length;
        const ts = a.op.inputs.map((s) => s.ts);
        this.emit({
          type: 'refused',
          reason: 'disk-full',
          count: a.op.inputs.length,
          fromTs: Math.min(...ts),
          toTs: Math.max(...ts),
          at: now,
        });
      }
    }
    // Refused ops are already settled; rejecting a settled promise again is a no-op.
    for (const op of ops) op.reject(error);
    this.broken = error;
    if (!(await this.recover())) this.retryRecovery();
  }

  /** Nothing may be appended for a while (or only read): keep trying, so the reader resumes by itself. */
  private retryRecovery(): void {
    if (this.recoverTimer || this.closed) return;
    this.recoverTimer = setInterval(() => {
      if (this.broken && !this.running && this.pending.length === 0)
        this.enqueue<void>({ kind: 'retention' }).catch(() => undefined);
    }, RECOVER_RETRY_MS);
    this.recoverTimer.unref();
  }

  /**
   * Reopens the store after a failed write and recounts (the failed record may or may not have survived
   * in LevelDB's log). On failure (disk still full) the next group tries again: no crash loop, no spin.
   */
  private async recover(): Promise<boolean> {
    try {
      await this.backend.reopen();
      await this.load(this.nextSeq, false);
      const cause = this.broken;
      this.broken = null;
      if (this.lostSeqs.length > 0 && cause)
        this.emit({
          type: 'repaired',
          path: this.backend.location,
          lostCount: this.lost,
          lost: this.lostSeqs,
          exact: this.lostKnown,
          nextSeq: this.nextSeq,
          error: cause,
          at: this.s.now(),
        });
      if (this.recoverTimer) clearInterval(this.recoverTimer);
      this.recoverTimer = null;
      this.diskMeasuredAt = -Infinity;
      return true;
    } catch (err) {
      if (isBufferError(err)) this.broken = err;
      return false;
    }
  }
}
