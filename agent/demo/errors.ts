/** Errors of `meterlink demo`'s parts: a stable code, what went wrong, and what to do about it. */

export type DemoErrorCode =
  /** A program the demo runs (mosquitto, socat) is not installed. */
  | 'PROGRAM_MISSING'
  /** A program started but exited or never became ready. */
  | 'START_FAILED'
  /** A part did not stop cleanly. */
  | 'STOP_FAILED'
  /** Something did not happen in time. */
  | 'TIMEOUT';

export class DemoError extends Error {
  readonly code: DemoErrorCode;
  readonly context: Readonly<Record<string, unknown>>;
  constructor(
    code: DemoErrorCode,
    message: string,
    opts: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DemoError';
    this.code = code;
    this.context = opts.context ?? {};
  }
}

export function isDemoError(err: unknown): err is DemoError {
  return err instanceof DemoError;
}
