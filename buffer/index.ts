/** The buffer's public API (see README.md). */
export type {
  BufferEvent,
  BufferEventListener,
  BufferOptions,
  BufferStats,
  ReadingBuffer,
  LossReport,
  ReadOptions,
  RetentionPolicy,
  RetentionReason,
  SeqRange,
  StoredSample,
} from './reading-buffer.js';
export { BufferError, isBufferError, type BufferErrorCode, type BufferErrorContext } from './errors.js';
export { openLevelBuffer, type LevelBufferOptions } from './level-reading-buffer.js';
export { openLevelBufferWhenPossible, type WhenPossibleOptions } from './deferred-level-buffer.js';
export { createMemoryBuffer, type MemoryBufferOptions } from './memory-reading-buffer.js';
export { decodeSample, decodeStoredValues, encodeSample } from './sample-codec.js';
