/** `createMemoryBuffer`: the `ReadingBuffer` behaviour without a disk, for tests of the parts around it. */
import { MemoryBackend } from './memory-backend.js';
import { QueueReadingBuffer } from './queue-reading-buffer.js';
import type { BufferOptions } from './reading-buffer.js';

export interface MemoryBufferOptions extends BufferOptions {
  /** Shown in `location` (`memory:NAME`) and errors. Default `memory`. */
  readonly name?: string;
}

/**
 * An in-memory `ReadingBuffer` with the same semantics as `openLevelBuffer` (same seq, budget, retention
 * and event logic; values go through the same binary codec, so sizes match). Nothing survives the process.
 */
export function createMemoryBuffer(opts: MemoryBufferOptions): Promise<QueueReadingBuffer> {
  return QueueReadingBuffer.open(new MemoryBackend(opts.name), opts);
}
