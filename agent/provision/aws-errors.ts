/** Maps AWS SDK failures to our codes, with the hint an installer needs. */
import { ProvisionError } from './errors.js';

export function mapAwsError(err: unknown, doing: string, endpoint?: string): ProvisionError {
  if (err instanceof ProvisionError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: unknown };
  const name = e?.name ?? '';
  const msg = e?.message ?? String(err);
  const where = endpoint ? ` at ${endpoint}` : '';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(msg))
    return new ProvisionError(
      'NO_CREDENTIALS',
      `no AWS credentials found while trying to ${doing}: run this as the installer with credentials ` +
        '(AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "aws configure" / "aws sso login")',
      { doing },
      { cause: err },
    );
  if (/Region is missing/i.test(msg))
    return new ProvisionError(
      'AWS_ERROR',
      `no AWS region set: pass --region (e.g. --region eu-west-1) or set AWS_REGION`,
      { doing },
      { cause: err },
    );
  const code = e?.code ?? (err as { cause?: { code?: string } })?.cause?.code ?? '';
  if (
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET/.test(`${code} ${msg}`) ||
    name === 'TimeoutError'
  )
    return new ProvisionError(
      'ENDPOINT_UNREACHABLE',
      `cannot reach the AWS IoT API${where} to ${doing} (${code || msg}): check the network, --region ` +
        'and --endpoint-url',
      { doing, endpoint },
      { cause: err },
    );
  if (name === 'AccessDeniedException' || name === 'UnauthorizedException')
    return new ProvisionError(
      'AWS_ERROR',
      `AWS refused to ${doing} (${name}: ${msg}): the installer's IAM identity needs the iot:* actions ` +
        'listed in README "Provisioning a box"',
      { doing },
      { cause: err },
    );
  return new ProvisionError(
    'AWS_ERROR',
    `AWS IoT failed to ${doing}: ${name ? `${name}: ` : ''}${msg}`,
    { doing },
    {
      cause: err,
    },
  );
}

export function isNotFound(err: unknown): boolean {
  return (err as { name?: string })?.name === 'ResourceNotFoundException';
}
