/**
 * Coded errors of provisioning. Every one says what is wrong, where (file, thing, endpoint) and what to do;
 * the command layer turns them into `CliError`s with the message as is.
 */

export type ProvisionErrorCode =
  | 'BAD_THING_NAME'
  | 'KEY_MISSING'
  | 'KEY_EXISTS'
  | 'KEY_UNSAFE_PERMISSIONS'
  | 'KEY_INVALID'
  | 'CSR_THING_MISMATCH'
  | 'CSR_KEY_MISMATCH'
  | 'CERT_KEY_MISMATCH'
  | 'NO_CREDENTIALS'
  | 'POLICY_MISSING'
  | 'ENDPOINT_UNREACHABLE'
  | 'AWS_ERROR'
  | 'FLEET_REJECTED'
  | 'FLEET_FAILED'
  | 'CONNECT_FAILED'
  | 'CONFIG_INVALID'
  | 'NOT_PROVISIONED';

export class ProvisionError extends Error {
  readonly code: ProvisionErrorCode;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    code: ProvisionErrorCode,
    message: string,
    context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ProvisionError';
    this.code = code;
    this.context = context;
  }
}

export function isProvisionError(err: unknown, code?: ProvisionErrorCode): err is ProvisionError {
  return err instanceof ProvisionError && (code === undefined || err.code === code);
}
