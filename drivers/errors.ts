/**
 * Driver errors: a stable code, the cause, and context (port, unit id, register range, raw bytes). Library
 * errors (modbus-serial, serialport) are mapped to these codes at the adapter boundary; never match on
 * message text.
 */
export type DriverErrorCode =
  /** No answer within the request timeout. */
  | 'TIMEOUT'
  /** A frame arrived with a bad CRC (Modbus RTU CRC-16 or DSMR CRC16). */
  | 'CRC'
  /** The slave answered with a Modbus exception (`context.exceptionCode`: 1–4, 0x0A, 0x0B, …). */
  | 'MODBUS_EXCEPTION'
  /** An answer came from a different unit id than asked (two meters with one id, or a misaddressed one). */
  | 'WRONG_UNIT'
  /** The serial device or TCP connection disappeared (adapter unplugged, gateway gone). */
  | 'PORT_GONE'
  /** The port could not be opened (missing, permission, busy). */
  | 'PORT_OPEN_FAILED'
  /** A frame or telegram was malformed or truncated. */
  | 'BAD_FRAME'
  /** No complete DSMR telegram within the watchdog time. */
  | 'STALLED'
  /** The meter is in backoff after repeated failures; this poll was skipped. */
  | 'BACKOFF'
  /** A meter profile or inline register map is invalid. */
  | 'PROFILE_INVALID'
  /** The reader was closed. */
  | 'CLOSED'
  /** An encrypted frame (DSMR Smarty AES-GCM) failed authentication: wrong key, or a corrupted frame. */
  | 'DECRYPT';

export class DriverError extends Error {
  readonly code: DriverErrorCode;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    code: DriverErrorCode,
    message: string,
    opts: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DriverError';
    this.code = code;
    this.context = Object.freeze({ ...(opts.context ?? {}) });
  }
}

export function isDriverError(err: unknown, code?: DriverErrorCode): err is DriverError {
  return err instanceof DriverError && (code === undefined || err.code === code);
}
