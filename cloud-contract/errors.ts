/**
 * Coded errors of the contract. Encoders throw `ContractError` for inputs they cannot represent (a bad sample,
 * an invalid thing name); the hostile-input decoders never throw but return a `Rejection` carrying the same
 * kind of stable code (see `RejectReason` in decode.ts).
 */

export type ContractErrorCode =
  | 'BAD_THING_NAME'
  | 'BAD_RULE_NAME'
  | 'BAD_SAMPLE'
  | 'BAD_KEY'
  | 'BAD_CERTIFICATE'
  | 'TOO_LARGE'
  | 'BAD_MESSAGE';

export class ContractError extends Error {
  readonly code: ContractErrorCode;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    code: ContractErrorCode,
    message: string,
    context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ContractError';
    this.code = code;
    this.context = context;
  }
}

export function isContractError(err: unknown, code?: ContractErrorCode): err is ContractError {
  return err instanceof ContractError && (code === undefined || err.code === code);
}
