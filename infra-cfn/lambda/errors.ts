/**
 * Coded errors of the cloud back end (STYLE habit 4): a stable code, a cause, and context. `retryable` says
 * whether the Kinesis record should be handed back to Lambda (reported as a batch item failure) or not.
 */
export type IngestErrorCode =
  | 'SINK_UNAVAILABLE' // the hot store did not answer or throttled: retry the records
  | 'SINK_REJECTED' // the hot store refused the data itself: retrying will not help
  | 'SINK_CONFIG' // missing/invalid configuration (env, secret): fix the deployment
  | 'CERT_LOOKUP_FAILED' // IoT DescribeCertificate or ListThingPrincipals failed for another reason than "not found"
  | 'LAKE_UNAVAILABLE' // Firehose or S3 did not take the lake's rows, archive lines or a rejected record: retry
  | 'LAKE_REJECTED'; // data no Firehose record can carry: retrying will not help

export class IngestError extends Error {
  readonly code: IngestErrorCode;
  readonly context: Readonly<Record<string, unknown>>;
  readonly retryable: boolean;
  constructor(
    code: IngestErrorCode,
    message: string,
    context: Record<string, unknown> = {},
    opts: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'IngestError';
    this.code = code;
    this.context = Object.freeze({ ...context });
    this.retryable = opts.retryable ?? code !== 'SINK_REJECTED';
  }
}

export function isIngestError(err: unknown, code?: IngestErrorCode): err is IngestError {
  return err instanceof IngestError && (code === undefined || err.code === code);
}
