/**
 * Rebuilds lake rows from the raw archive, re-verifying every signature on the way.
 *
 *   npm run lake:rebuild -- --bucket B --from 2026-12-01 [--to 2026-12-07] [--delivery-stream S] [--dry-run]
 *
 * Run with --help for the whole story. The library half (`rebuildLake`) is what the tests drive.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { IoTClient } from '@aws-sdk/client-iot';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { archiveLines, archivePrefix, daysBetween } from './lambda/archive.js';
import { createIotCertificateSource, type CertificateSource } from './lambda/certificates.js';
import { createFirehoseWriter, lakeRecords, type FirehoseWriter } from './lambda/lake.js';
import { verifyRecord } from './lambda/verify.js';

export const HELP = `meterlink lake rebuild — rows for the Parquet lake, rebuilt from the raw archive

Usage:
  npm run lake:rebuild -- --bucket BUCKET --from YYYY-MM-DD [--to YYYY-MM-DD]
                          [--delivery-stream NAME] [--dry-run]

What it does:
  Every object under s3://BUCKET/raw/dt=DAY/ for each UTC DAY from --from to --to (the archive's date is
  when Firehose received the batch) is read; each line is one batch exactly as IoT Core delivered it (the
  COSE_Sign1 bytes + thing, principal, receive time). Each batch is verified again exactly as the ingest
  Lambda does (certificate from AWS IoT, kid = principal, ACTIVE, device = thing, ES256 signature). Verified
  batches become the lake's JSON rows and go to the lake's Firehose stream (--delivery-stream, the stack's
  <Project>-lake), which writes them as Parquet into samples/dt=<sample date>/. A batch archived twice (a
  retried Lambda invocation) is sent once.

  Rows already in the lake are not removed: a rebuild next to existing rows repeats them, and the saved
  queries count each (device, meter, seq) once. To replace a day, delete samples/dt=DAY/ first.

Options:
  --bucket NAME           the lake bucket (stack output LakeBucket)
  --from YYYY-MM-DD       first archive day (UTC)
  --to YYYY-MM-DD         last archive day (UTC), default = --from
  --delivery-stream NAME  the lake's Firehose stream (required unless --dry-run)
  --dry-run               read and verify only; print what would be sent
  --help                  this text

AWS credentials and region come from the usual places (AWS_PROFILE, AWS_REGION, ...); AWS_ENDPOINT_URL
points every client elsewhere (a test's moto_server). Exit status 1 when any batch failed verification
(listed on stderr), 2 when the archive, IoT or Firehose could not be read or written.

Example:
  npm run lake:rebuild -- --bucket meterlink-lake-1a2b3c --from 2026-12-01 --to 2026-12-07 --dry-run
`;

export interface RebuildOptions {
  readonly bucket: string;
  readonly from: string;
  readonly to: string;
  readonly dryRun: boolean;
}

export interface RebuildDeps {
  readonly s3: Pick<S3Client, 'send'>;
  readonly certs: CertificateSource;
  /** The lake stream's writer; unused in a dry run. */
  readonly rows?: FirehoseWriter;
  readonly progress?: (line: string) => void;
}

export interface RebuildSummary {
  days: number;
  objects: number;
  batches: number;
  duplicates: number;
  verified: number;
  rejected: { key: string; reason: string; detail: string }[];
  rows: number;
  records: number;
}

export async function rebuildLake(opts: RebuildOptions, deps: RebuildDeps): Promise<RebuildSummary> {
  const say = deps.progress ?? (() => {});
  if (!opts.dryRun && !deps.rows) throw new Error('a delivery stream is needed unless --dry-run');
  const sum: RebuildSummary = {
    days: 0,
    objects: 0,
    batches: 0,
    duplicates: 0,
    verified: 0,
    rejected: [],
    rows: 0,
    records: 0,
  };
  const seen = new Set<string>();
  for (const day of daysBetween(opts.from, opts.to)) {
    sum.days++;
    const before = { batches: sum.batches, rows: sum.rows, objects: sum.objects };
    let token: string | undefined;
    do {
      const page = await deps.s3.send(
        new ListObjectsV2Command({
          Bucket: opts.bucket,
          Prefix: archivePrefix(day),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const obj of page.Contents ?? []) {
        const key = obj.Key as string;
        const got = await deps.s3.send(new GetObjectCommand({ Bucket: opts.bucket, Key: key }));
        const bytes = await got.Body?.transformToByteArray();
        sum.objects++;
        for (const line of archiveLines(bytes ?? new Uint8Array())) {
          sum.batches++;
          const digest = createHash('sha256').update(line).digest('hex');
          if (seen.has(digest)) {
            sum.duplicates++;
            continue;
          }
          seen.add(digest);
          const outcome = await verifyRecord(line, deps.certs);
          if (outcome.kind === 'retry')
            throw new Error(`certificate lookup failed (${outcome.detail}); nothing after ${key} was sent`);
          if (outcome.kind === 'rejected') {
            sum.rejected.push({ key, reason: outcome.reason, detail: outcome.detail });
            continue;
          }
          sum.verified++;
          const records = lakeRecords(outcome);
          sum.rows += outcome.batch.samples.length;
          sum.records += records.length;
          if (!opts.dryRun) await deps.rows?.put(records);
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    say(
      `${day}: ${sum.objects - before.objects} objects, ${sum.batches - before.batches} batches, ` +
        `${sum.rows - before.rows} rows${opts.dryRun ? ' (dry run: nothing sent)' : ' sent'}`,
    );
  }
  return sum;
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        bucket: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        'delivery-stream': { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const missing = [
    !args.bucket && '--bucket',
    !args.from && '--from',
    !args['dry-run'] && !args['delivery-stream'] && '--delivery-stream (or --dry-run)',
  ].filter(Boolean);
  if (missing.length > 0) {
    process.stderr.write(`missing ${missing.join(', ')}\n\n${HELP}`);
    return 2;
  }
  const s3 = new S3Client({ forcePathStyle: true });
  const iot = new IoTClient({});
  const firehose = new FirehoseClient({});
  try {
    const rows = args['delivery-stream']
      ? createFirehoseWriter({ client: firehose, stream: args['delivery-stream'] })
      : undefined;
    const sum = await rebuildLake(
      {
        bucket: args.bucket as string,
        from: args.from as string,
        to: args.to ?? (args.from as string),
        dryRun: args['dry-run'] ?? false,
      },
      {
        s3,
        certs: createIotCertificateSource({ iot }),
        ...(rows ? { rows } : {}),
        progress: (l) => process.stdout.write(`${l}\n`),
      },
    );
    for (const r of sum.rejected) process.stderr.write(`rejected ${r.reason} in ${r.key}: ${r.detail}\n`);
    process.stdout.write(
      `${sum.days} days, ${sum.objects} objects, ${sum.batches} batches (${sum.duplicates} duplicates), ` +
        `${sum.verified} verified, ${sum.rejected.length} rejected, ${sum.rows} rows in ${sum.records} ` +
        `Firehose records${args['dry-run'] ? ' — dry run, nothing sent' : ' sent'}\n`,
    );
    return sum.rejected.length > 0 ? 1 : 0;
  } catch (err) {
    process.stderr.write(`lake rebuild failed: ${(err as Error).message}\n`);
    return 2;
  } finally {
    [s3, iot, firehose].forEach((c) => c.destroy());
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = await main(process.argv.slice(2));
