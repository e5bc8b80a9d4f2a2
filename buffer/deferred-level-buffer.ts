/**
 * `openLevelBufferWhenPossible`: the agent's buffer, which also starts when the disk is too full to open
 * LevelDB at all. Opening needs a little room (a new log file, the manifest); a box whose disk was filled by
 * something else must still come up, poll, report, and go on by itself once space returns — a start that
 * exits makes systemd give up after `StartLimitBurst`, and the box stays down after the disk frees.
 *
 * Until the store opens, the buffer is degraded: appends are refused with `BUFFER_DISK_FULL` and counted
 * (`refused` events, reason `disk-full`: they never got a seq), there is nothing to read, and the open is
 * retried every `retryOpenMs`. Then everything is the opened `QueueReadingBuffer`'s.
 */
import type { Sample, SampleInput } from '../cloud-contract/sample.js';
import { BufferError, isBufferError } from './errors.js';
import { openLevelBuffer, type LevelBufferOptions } from './level-reading-buffer.js';
import type { QueueReadingBuffer } from './queue-reading-buffer.js';
import type {
  BufferEvent,
  BufferEventListener,
  BufferStats,
  ReadingBuffer,
  ReadOptions,
  SeqRange,
  StoredSample,
} from './reading-buffer.js';
import { readLedger } from './seq-ledger.js';

export interface WhenPossibleOptions extends LevelBufferOptions {
  /** How often (ms) opening is tried again while the disk is full. Default 5 000. */
  readonly retryOpenMs?: number;
}

class DeferredLevelBuffer implements ReadingBuffer {
  private inner: QueueReadingBuffer | null = null;
  private readonly listeners = new Set<BufferEventListener>();
  private timer: NodeJS.Timeout | null = null;
  private trying: Promise<void> | null = null;
  private closed = false;
  private refused = 0;

  constructor(
    private readonly opts: WhenPossibleOptions,
    private lastError: BufferError,
    private readonly nextSeq: number,
  ) {}

  start(): void {
    this.emit({
      type: 'disk-full',
      path: this.opts.path,
      effectiveMaxSize: 0,
      error: this.lastError,
      at: (this.opts.now ?? Date.now)(),
    });
    this.timer = setInterval(() => {
      this.trying ??= this.tryOpen().finally(() => (this.trying = null));
    }, this.opts.retryOpenMs ?? 5_000);
    this.timer.unref();
  }

  private async tryOpen(): Promise<void> {
    if (this.inner || this.closed) return;
    try {
      const b = await openLevelBuffer({ ...this.opts, onEvent: (e) => this.emit(e) });
      if (this.closed) {
        await b.close();
        return;
      }
      this.inner = b;
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
    } catch (err) {
      // Still full (or another transient failure): the next tick tries again; the agent keeps running.
      if (isBufferError(err)) this.lastError = err;
    }
  }

  private emit(e: BufferEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // A listener's bug must not break the buffer.
    }
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // Same.
      }
    }
  }

  append(samples: readonly SampleInput[]): Promise<SeqRange | null> {
    if (this.inner) return this.inner.append(samples);
    if (this.closed) return Promise.reject(this.closedError());
    if (!Array.isArray(samples) || samples.length === 0) return Promise.resolve(null);
    this.refused += samples.length;
    const ts = samples.map((s) => s.ts);
    this.emit({
      type: 'refused',
      reason: 'disk-full',
      count: samples.length,
      fromTs: Math.min(...ts),
      toTs: Math.max(...ts),
      at: (this.opts.now ?? Date.now)(),
    });
    return Promise.reject(
      new BufferError(
        'BUFFER_DISK_FULL',
        `the buffer at ${this.opts.path} cannot open, its disk is full; ${samples.length} sample(s) ` +
          `refused; free space (opening is retried every ${(this.opts.retryOpenMs ?? 5_000) / 1000} s)`,
        { path: this.opts.path },
        { cause: this.lastError },
      ),
    );
  }

  readOldest(opts: ReadOptions): Promise<Sample[]> {
    if (this.inner) return this.inner.readOldest(opts);
    return this.closed ? Promise.reject(this.closedError()) : Promise.resolve([]);
  }

  readStored(opts: ReadOptions): Promise<StoredSample[]> {
    if (this.inner) return this.inner.readStored(opts);
    return this.closed ? Promise.reject(this.closedError()) : Promise.resolve([]);
  }

  ack(fromSeq: number, toSeq: number): Promise<void> {
    if (this.inner) return this.inner.ack(fromSeq, toSeq);
    // Nothing is stored yet, so nothing can have been sent.
    return this.closed ? Promise.reject(this.closedError()) : Promise.resolve();
  }

  stats(): BufferStats {
    if (this.inner) return this.inner.stats();
    return {
      count: 0,
      bytes: 0,
      oldestSeq: null,
      newestSeq: null,
      oldestTs: null,
      newestTs: null,
      nextSeq: this.nextSeq,
      droppedCount: 0,
      refusedCount: this.refused,
      effectiveMaxSize: 0,
      policy: this.opts.policy ?? 'drop-oldest',
    };
  }

  on(listener: BufferEventListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.trying;
    await this.inner?.close();
  }

  private closedError(): BufferError {
    return new BufferError('BUFFER_CLOSED', `the buffer at ${this.opts.path} is closed`, {
      path: this.opts.path,
    });
  }
}

/**
 * Opens the LevelDB buffer; on a disk too full to open it, returns a degraded buffer that opens it as soon as
 * there is room (see the file comment) instead of failing. Every other error fails as `openLevelBuffer` does.
 */
export async function openLevelBufferWhenPossible(opts: WhenPossibleOptions): Promise<ReadingBuffer> {
  try {
    return await openLevelBuffer(opts);
  } catch (err) {
    if (!isBufferError(err, 'BUFFER_DISK_FULL')) throw err;
    const b = new DeferredLevelBuffer(opts, err, (await readLedger(opts.path))?.state.nextSeq ?? 1);
    b.start();
    return b;
  }
}
