/**
 * Errors of the buffer: a stable string code, a cause (the LevelDB/fs error underneath) and context (path,
 * sequence range). Callers branch on `code`, never on the message.
 */

export type BufferErrorCode =
  /** Another process (or another instance in this process) holds the store's LevelDB lock. */
  | 'BUFFER_LOCKED'
  /** The store does not exist and `createIfMissing` was false. */
  | 'BUFFER_NOT_FOUND'
  /** The store is corrupt and repair/set-aside was not allowed (`repair: 'never'`) or failed. */
  | 'BUFFER_CORRUPT'
  /** Policy `refuse` and the budget is reached, or one append is larger than the whole budget. */
  | 'BUFFER_FULL'
  /** The disk is full (ENOSPC); the append was not accepted. */
  | 'BUFFER_DISK_FULL'
  /** Any other I/O failure of the store; the operation was not done. */
  | 'BUFFER_IO'
  /** A sample that cannot be stored losslessly (bad value type, non-f32 mantissa for f32, ...). */
  | 'BUFFER_INVALID_SAMPLE'
  /** Bad arguments (negative maxCount, fromSeq > toSeq, bad options). */
  | 'BUFFER_INVALID_ARGUMENT'
  /** A stored value that does not decode (bit rot that LevelDB's checksums did not catch). */
  | 'BUFFER_DECODE'
  /** The buffer was closed. */
  | 'BUFFER_CLOSED';

export interface BufferErrorContext {
  readonly path?: string;
  readonly fromSeq?: number;
  readonly toSeq?: number;
  readonly [key: string]: unknown;
}

export class BufferError extends Error {
  override readonly name = 'BufferError';
  constructor(
    readonly code: BufferErrorCode,
    message: string,
    readonly context: BufferErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Type guard; with `code`, also checks the code. */
export function isBufferError(err: unknown, code?: BufferErrorCode): err is BufferError {
  return err instanceof BufferError && (code === undefined || err.code === code);
}
