/**
 * Every IAM role the templates give a Lambda function, a Firehose delivery stream or a topic rule allows what
 * the code and the service configuration need, and nothing beyond.
 *
 * The templates are evaluated for each HotStore (test/infra/cfn-model.ts: intrinsic functions resolved with
 * each resource type's documented Ref/GetAtt forms — a log group's Arn ends in ':*', a bucket's Arn is
 * arn:aws:s3:::name, ...). What each role must allow comes from:
 * - the Lambda code: the AWS SDK commands reachable from the function's entry (build.ts), each mapped to its
 *   IAM action and to the resource the function's environment names, plus the KMS key that resource is
 *   encrypted with when the caller needs it;
 * - the Lambda service: its log group's streams, the event source mapping's stream and on-failure queue,
 *   VPC network interfaces;
 * - Firehose's documented needs for its source, destination, processor, format conversion and logging;
 * - each topic rule action's documented needs.
 * Each requirement is checked with an IAM-style matcher (wildcards in actions and resources, Deny wins); each
 * allowed action/resource pair must serve some requirement, or its statement carries a Sid and an
 * `# unused-by-code: <reason>` comment.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { FUNCTIONS } from '../../infra-cfn/build.js';
import { ACCOUNT, PARTITION, REGION, World, templatesDir, type Json, type Resource } from './cfn-model.js';

// Evaluated properties are read by path: their shape is CloudFormation's resource specification, not a TS type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Props = any;

const lambdaDir = join(import.meta.dirname, '..', '..', 'infra-cfn', 'lambda');
const HOT_STORES = ['dynamodb', 'timestream-liveanalytics', 'timestream-influxdb', 'none'];

// --- IAM evaluation ---------------------------------------------------------------------------------------

interface Statement {
  readonly sid?: string;
  readonly effect: 'Allow' | 'Deny';
  readonly actions: string[];
  readonly resources: string[];
}

const glob = (pattern: string, value: string, caseless = false): boolean =>
  new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
      .join('')}$`,
    caseless ? 'i' : '',
  ).test(value);

/** A resource the code reaches: an exact ARN, or any object under a bucket/prefix (the key is data). */
interface Target {
  readonly arn: string;
  /** For object ARNs: the key is chosen at run time; any key under `arn` (a prefix) will do. */
  readonly anyKeyUnder?: boolean;
}

function resourceMatches(pattern: string, target: Target): boolean {
  if (!target.anyKeyUnder) return glob(pattern, target.arn);
  // Some key under the prefix is allowed: the pattern matches prefix + something, or a prefix of the pattern's
  // literal part lies under ours (the policy narrows the key further, which the code's keys must then follow).
  const lit = pattern.split('*')[0] ?? '';
  return glob(pattern, `${target.arn}x`) || (lit.startsWith(target.arn) && pattern.endsWith('*'));
}

function allowed(stmts: Statement[], action: string, target: Target): boolean {
  const hit = (s: Statement) =>
    s.actions.some((a) => glob(a, action, true)) && s.resources.some((r) => resourceMatches(r, target));
  return (
    !stmts.some((s) => s.effect === 'Deny' && hit(s)) && stmts.some((s) => s.effect === 'Allow' && hit(s))
  );
}

// --- what the code calls ----------------------------------------------------------------------------------

/** IAM service prefix of each AWS SDK v3 client package. */
const SDK_PREFIX: Record<string, string> = {
  '@aws-sdk/client-iot': 'iot',
  '@aws-sdk/client-dynamodb': 'dynamodb',
  '@aws-sdk/lib-dynamodb': 'dynamodb',
  '@aws-sdk/client-timestream-write': 'timestream',
  '@aws-sdk/client-secrets-manager': 'secretsmanager',
  '@aws-sdk/client-firehose': 'firehose',
  '@aws-sdk/client-s3': 's3',
  '@aws-sdk/client-kinesis': 'kinesis',
  '@aws-sdk/client-sqs': 'sqs',
  '@aws-sdk/client-cloudwatch': 'cloudwatch',
  '@aws-sdk/client-kms': 'kms',
};

/** Commands whose IAM action is not their name (Service Authorization Reference), or that imply another. */
const ACTION_OF: Record<string, string[]> = {
  's3:ListObjectsV2': ['s3:ListBucket'],
  's3:HeadObject': ['s3:GetObject'],
  's3:HeadBucket': ['s3:ListBucket'],
  'iot:ListThingPrincipalsV2': ['iot:ListThingPrincipals'],
  'iot:ListPrincipalThingsV2': ['iot:ListPrincipalThings'],
  // lib-dynamodb's document commands
  'dynamodb:Put': ['dynamodb:PutItem'],
  'dynamodb:Get': ['dynamodb:GetItem'],
  'dynamodb:Update': ['dynamodb:UpdateItem'],
  'dynamodb:Delete': ['dynamodb:DeleteItem'],
  'dynamodb:BatchWrite': ['dynamodb:BatchWriteItem'],
  'dynamodb:BatchGet': ['dynamodb:BatchGetItem'],
};

/**
 * The resource each action acts on: a resource type named in the function's environment (by name, Ref or
 * ARN), or a fixed ARN for calls whose resource is only known per request (a device's certificate or thing),
 * or '*' for actions without resource-level permissions. `kms` lists what the caller needs on the resource's
 * KMS key (a DynamoDB table under a customer key needs kms:Decrypt of its caller, as CDK's grants give).
 */
type ActionTarget =
  | { type: string; object?: true; kms?: string[]; implies?: string[] }
  | { arn: string }
  | { none: string /* why no resource */ };
const iotArn = (rest: string) => `arn:${PARTITION}:iot:${REGION}:${ACCOUNT}:${rest}`;
const ANY_CERT = iotArn(`cert/${'ab'.repeat(32)}`);
const ANY_THING = iotArn('thing/apt-12-meterbox');
const TARGETS: Record<string, ActionTarget> = {
  'iot:DescribeCertificate': { arn: ANY_CERT },
  'iot:ListThingPrincipals': { arn: ANY_THING },
  'iot:DescribeThing': { arn: ANY_THING },
  'dynamodb:BatchWriteItem': { type: 'AWS::DynamoDB::Table', kms: ['kms:Decrypt'] },
  'dynamodb:PutItem': { type: 'AWS::DynamoDB::Table', kms: ['kms:Decrypt'] },
  'dynamodb:GetItem': { type: 'AWS::DynamoDB::Table', kms: ['kms:Decrypt'] },
  'dynamodb:UpdateItem': { type: 'AWS::DynamoDB::Table', kms: ['kms:Decrypt'] },
  'dynamodb:DeleteItem': { type: 'AWS::DynamoDB::Table', kms: ['kms:Decrypt'] },
  'dynamodb:BatchGetItem': { type: 'AWS::DynamoDB::Table', kms: ['kms:Decrypt'] },
  'dynamodb:Query': { type: 'AWS::DynamoDB::Table', kms: ['kms:Decrypt'] },
  // The Timestream write client discovers its endpoint (DescribeEndpoints) before it writes.
  'timestream:WriteRecords': { type: 'AWS::Timestream::Table', implies: ['timestream:DescribeEndpoints'] },
  'timestream:DescribeEndpoints': { none: 'timestream:DescribeEndpoints has no resource type' },
  'secretsmanager:GetSecretValue': { type: 'AWS::SecretsManager::Secret', kms: ['kms:Decrypt'] },
  // Firehose encrypts with its own grant: a producer needs no KMS permission.
  'firehose:PutRecord': { type: 'AWS::KinesisFirehose::DeliveryStream' },
  'firehose:PutRecordBatch': { type: 'AWS::KinesisFirehose::DeliveryStream' },
  's3:PutObject': { type: 'AWS::S3::Bucket', object: true, kms: ['kms:GenerateDataKey'] },
  's3:GetObject': { type: 'AWS::S3::Bucket', object: true, kms: ['kms:Decrypt'] },
  's3:ListBucket': { type: 'AWS::S3::Bucket' },
  'kinesis:PutRecord': { type: 'AWS::Kinesis::Stream', kms: ['kms:GenerateDataKey'] },
  'kinesis:PutRecords': { type: 'AWS::Kinesis::Stream', kms: ['kms:GenerateDataKey'] },
  'sqs:SendMessage': { type: 'AWS::SQS::Queue', kms: ['kms:GenerateDataKey', 'kms:Decrypt'] },
  'cloudwatch:PutMetricData': { none: 'cloudwatch:PutMetricData has no resource type' },
};

/** The KMS key ARN a resource is encrypted with, if a customer key. */
function kmsKeyOf(r: Resource): string | undefined {
  const p = r.props() as Props;
  const k: unknown =
    r.type === 'AWS::S3::Bucket'
      ? p.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault
          ?.KMSMasterKeyID
      : r.type === 'AWS::SQS::Queue'
        ? p.KmsMasterKeyId
        : r.type === 'AWS::SecretsManager::Secret'
          ? p.KmsKeyId
          : r.type === 'AWS::Kinesis::Stream'
            ? p.StreamEncryption?.KeyId
            : r.type === 'AWS::DynamoDB::Table'
              ? p.SSESpecification?.KMSMasterKeyId
              : undefined;
  return typeof k === 'string' && k !== '' ? k : undefined;
}

/** The source files reachable from a Lambda entry through relative imports. */
function reachable(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const spec = (m[1] as string).replace(/\.js$/, '.ts');
      visit(resolve(dirname(file), spec.endsWith('.ts') ? spec : `${spec}.ts`));
    }
  };
  visit(join(lambdaDir, entry));
  return [...seen];
}

interface CodeCall {
  readonly action: string;
  readonly file: string;
}

/** SDK commands (and paginators) constructed in these files, as IAM actions. */
export function sdkCalls(files: string[]): { calls: CodeCall[]; unknown: string[] } {
  const calls: CodeCall[] = [];
  const unknown: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const imp of text.matchAll(/import\s*(type\s*)?\{([^}]*)\}\s*from\s*'(@aws-sdk\/[^']+)'/g)) {
      const pkg = imp[3] as string;
      // `import type { ... }`, and helper packages (util-dynamodb's marshall, types, credential providers): no calls
      if (imp[1] || !/^@aws-sdk\/(client|lib)-/.test(pkg)) continue;
      const names = (imp[2] as string)
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '' && !s.startsWith('type '))
        .map((s) => s.split(/\s+as\s+/) as [string, string?]);
      for (const [name, local = name] of names) {
        // Clients, errors and plain helpers make no call by themselves; commands and paginators do. Anything
        // else (an aggregated client such as `S3`, lib-storage's `Upload`) is a call this test cannot map.
        if (/Client$|Exception$|^\$/.test(name)) continue;
        if (!/Command$|^paginate/.test(name)) {
          unknown.push(`${name} from ${pkg} (${file}): use its …Command classes, or map it in iam.test.ts`);
          continue;
        }
        const used = new RegExp(`\\b(new\\s+${local}\\s*\\(|${local}\\s*\\()`).test(text);
        if (!used) continue;
        const prefix = SDK_PREFIX[pkg];
        if (!prefix) {
          unknown.push(
            `${pkg} (${file}): add its IAM service prefix to SDK_PREFIX in test/infra/iam.test.ts`,
          );
          continue;
        }
        const op = name.replace(/Command$/, '').replace(/^paginate/, '');
        for (const action of ACTION_OF[`${prefix}:${op}`] ?? [`${prefix}:${op}`])
          calls.push({ action, file });
      }
    }
  }
  return { calls, unknown };
}

// --- requirements -----------------------------------------------------------------------------------------

interface Requirement {
  readonly role: Resource;
  readonly action: string;
  readonly target: Target;
  readonly why: string;
}

const asString = (v: Json | undefined) => (typeof v === 'string' ? v : '');

function findByArn(w: World, arnValue: string): Resource | undefined {
  return w.resources().find((r) => {
    try {
      return r.arn() === arnValue;
    } catch {
      return false;
    }
  });
}

function identities(r: Resource): string[] {
  const ids = [r.name()];
  for (const f of [() => r.ref(), () => r.arn()])
    try {
      ids.push(String(f()));
    } catch {
      /* not every type has an Arn attribute */
    }
  return ids;
}

function roleOf(w: World, roleArn: string, who: string): Resource {
  const role = w.resources('AWS::IAM::Role').find((r) => r.att('Arn') === roleArn);
  if (!role) throw new Error(`${who}: role ${roleArn} is not a role in the templates`);
  return role;
}

const logStreamArn = (group: string, stream: string) =>
  `arn:${PARTITION}:logs:${REGION}:${ACCOUNT}:log-group:${group}:log-stream:${stream}`;

interface Collected {
  readonly reqs: Requirement[];
  readonly problems: string[];
  /** function → action → resource types it could not find named in its environment, per variant */
  readonly unresolved: Map<string, string>;
}

function kmsReqs(role: Resource, r: Resource, actions: string[] | undefined, why: string): Requirement[] {
  const key = kmsKeyOf(r);
  if (!key || !actions) return [];
  return actions.map((action) => ({
    role,
    action,
    target: { arn: key },
    why: `${why}: ${r.id} is encrypted with ${key}`,
  }));
}

function lambdaRequirements(w: World, out: Collected): void {
  for (const fn of w.resources('AWS::Lambda::Function')) {
    const p = fn.props() as Props;
    const who = `${fn.stack.file}:${fn.id}`;
    const role = roleOf(w, asString(p.Role), who);
    const code = /(?:^|\/)dist\/([\w-]+)$/.exec(asString(p.Code))?.[1];
    const entry = code ? (FUNCTIONS as Record<string, string>)[code] : undefined;
    if (!entry) {
      out.problems.push(`${who}: Code ${JSON.stringify(p.Code)} is not one of build.ts's FUNCTIONS`);
      continue;
    }
    // Logs and EMF metrics: the function writes to its log group's streams (Lambda creates one per instance).
    const group = asString(p.LoggingConfig?.LogGroup) || `/aws/lambda/${fn.name()}`;
    for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents'])
      out.reqs.push({
        role,
        action,
        target: { arn: logStreamArn(group, '2025/01/15/[$LATEST]0123456789abcdef') },
        why: `${who} writes its logs and EMF metrics to ${group}`,
      });
    if (p.VpcConfig)
      for (const action of [
        'ec2:CreateNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DeleteNetworkInterface',
        'ec2:AssignPrivateIpAddresses',
        'ec2:UnassignPrivateIpAddresses',
      ])
        out.reqs.push({ role, action, target: { arn: '*' }, why: `${who} runs in a VPC (Lambda's ENIs)` });

    // Event source mappings and their on-failure destinations (Lambda polls and sends with the function's role).
    for (const esm of w.resources('AWS::Lambda::EventSourceMapping')) {
      const e = esm.props() as Props;
      if (e.FunctionName !== fn.ref() && e.FunctionName !== fn.att('Arn')) continue;
      const src = findByArn(w, asString(e.EventSourceArn));
      if (src?.type === 'AWS::Kinesis::Stream') {
        for (const action of [
          'kinesis:DescribeStream',
          'kinesis:DescribeStreamSummary',
          'kinesis:GetRecords',
          'kinesis:GetShardIterator',
          'kinesis:ListShards',
        ])
          out.reqs.push({
            role,
            action,
            target: { arn: String(src.att('Arn')) },
            why: `${who} reads ${src.id}`,
          });
        out.reqs.push(...kmsReqs(role, src, ['kms:Decrypt'], `${who} reads ${src.id}`));
      } else
        out.problems.push(
          `${esm.stack.file}:${esm.id}: event source ${String(e.EventSourceArn)} not modelled`,
        );
      const dest = e.DestinationConfig?.OnFailure?.Destination;
      if (dest) {
        const q = findByArn(w, asString(dest));
        if (q?.type !== 'AWS::SQS::Queue')
          out.problems.push(`${esm.stack.file}:${esm.id}: destination ${dest} not modelled`);
        else {
          out.reqs.push({
            role,
            action: 'sqs:SendMessage',
            target: { arn: String(q.att('Arn')) },
            why: `${who} on-failure destination`,
          });
          out.reqs.push(
            ...kmsReqs(
              role,
              q,
              TARGETS['sqs:SendMessage'] && ['kms:GenerateDataKey', 'kms:Decrypt'],
              `${who} on-failure destination`,
            ),
          );
        }
      }
    }

    // The code's own calls, each against the resource its environment names.
    const env = Object.values((p.Environment?.Variables ?? {}) as Record<string, Json>)
      .map(String)
      .filter(Boolean);
    const { calls, unknown } = sdkCalls(reachable(entry));
    out.problems.push(...unknown.map((u) => `${who}: ${u}`));
    for (const call of calls) {
      const spec = TARGETS[call.action];
      const why = `${who} calls ${call.action} (${call.file.slice(lambdaDir.length + 1)})`;
      if (!spec) {
        out.problems.push(
          `${why}: which resource does it act on? Add it to TARGETS in test/infra/iam.test.ts`,
        );
        continue;
      }
      if ('arn' in spec) out.reqs.push({ role, action: call.action, target: { arn: spec.arn }, why });
      else if ('none' in spec) out.reqs.push({ role, action: call.action, target: { arn: '*' }, why });
      else {
        const named = w.resources(spec.type).filter((r) => identities(r).some((id) => env.includes(id)));
        const key = `${who} ${call.action}`;
        if (named.length === 0) {
          if (!out.unresolved.has(key))
            out.unresolved.set(
              key,
              `${why}, but no ${spec.type} is named in its environment in any HotStore variant`,
            );
          continue;
        }
        out.unresolved.set(key, '');
        for (const r of named) {
          const base = r.arn();
          out.reqs.push({
            role,
            action: call.action,
            target: spec.object ? { arn: `${base}/`, anyKeyUnder: true } : { arn: base },
            why: `${why} on ${r.id}`,
          });
          out.reqs.push(...kmsReqs(role, r, spec.kms, why));
          for (const action of spec.implies ?? [])
            out.reqs.push({ role, action, target: { arn: '*' }, why: `${why}, which calls ${action} first` });
        }
      }
    }
  }
}

/** Static part of an S3 prefix with Firehose/IoT substitutions (`!{...}`, `${...}`). */
const staticPrefix = (prefix: string) => prefix.split(/!\{|\$\{/)[0] ?? '';

function bucketByArnOrName(w: World, v: string): Resource | undefined {
  return w.resources('AWS::S3::Bucket').find((b) => b.att('Arn') === v || b.name() === v);
}

function s3Destination(w: World, out: Collected, who: string, d: Props, extraKey?: string): void {
  const role = roleOf(w, asString(d.RoleARN), who);
  const bucket = bucketByArnOrName(w, asString(d.BucketARN));
  if (!bucket) {
    out.problems.push(`${who}: bucket ${String(d.BucketARN)} not found`);
    return;
  }
  const barn = String(bucket.att('Arn'));
  const why = `${who} delivers to ${bucket.id}`;
  for (const action of ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'])
    out.reqs.push({ role, action, target: { arn: barn }, why });
  const prefixes = [asString(d.Prefix), asString(d.ErrorOutputPrefix)].filter((x, i) => i === 0 || x !== '');
  for (const pre of prefixes)
    for (const action of ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'])
      out.reqs.push({
        role,
        action,
        target: { arn: `${barn}/${staticPrefix(pre)}`, anyKeyUnder: true },
        why: `${why} (${pre})`,
      });
  const key =
    asString(d.EncryptionConfiguration?.KMSEncryptionConfig?.AWSKMSKeyARN) || kmsKeyOf(bucket) || extraKey;
  if (key)
    for (const action of ['kms:GenerateDataKey', 'kms:Decrypt'])
      out.reqs.push({ role, action, target: { arn: key }, why: `${why}, SSE-KMS with ${key}` });
  const logs = d.CloudWatchLoggingOptions;
  if (logs?.Enabled === true || logs?.Enabled === 'true')
    out.reqs.push({
      role,
      action: 'logs:PutLogEvents',
      target: { arn: logStreamArn(asString(logs.LogGroupName), asString(logs.LogStreamName)) },
      why: `${who} logs delivery errors`,
    });
  for (const proc of (d.ProcessingConfiguration?.Processors ?? []) as Props[]) {
    if (proc.Type !== 'Lambda') continue;
    const fnArn = asString(
      ((proc.Parameters ?? []) as { ParameterName: string; ParameterValue: string }[]).find(
        (x) => x.ParameterName === 'LambdaArn',
      )?.ParameterValue,
    );
    for (const action of ['lambda:InvokeFunction', 'lambda:GetFunctionConfiguration'])
      out.reqs.push({ role, action, target: { arn: fnArn }, why: `${who} transforms with ${fnArn}` });
  }
  const schema = d.DataFormatConversionConfiguration?.SchemaConfiguration;
  if (d.DataFormatConversionConfiguration?.Enabled !== false && schema) {
    const srole = roleOf(w, asString(schema.RoleARN), who);
    const glue = (rest: string) => `arn:${PARTITION}:glue:${REGION}:${ACCOUNT}:${rest}`;
    for (const action of ['glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions'])
      for (const arnValue of [
        glue('catalog'),
        glue(`database/${asString(schema.DatabaseName)}`),
        glue(`table/${asString(schema.DatabaseName)}/${asString(schema.TableName)}`),
      ])
        out.reqs.push({
          role: srole,
          action,
          target: { arn: arnValue },
          why: `${who} converts records with the Glue schema`,
        });
  }
  if (d.S3BackupMode === 'Enabled' && d.S3BackupConfiguration)
    s3Destination(w, out, `${who} (backup)`, d.S3BackupConfiguration);
}

function firehoseRequirements(w: World, out: Collected): void {
  for (const ds of w.resources('AWS::KinesisFirehose::DeliveryStream')) {
    const p = ds.props() as Props;
    const who = `${ds.stack.file}:${ds.id}`;
    const src = p.KinesisStreamSourceConfiguration;
    if (src) {
      const role = roleOf(w, asString(src.RoleARN), who);
      const stream = findByArn(w, asString(src.KinesisStreamARN));
      if (!stream) out.problems.push(`${who}: source stream ${String(src.KinesisStreamARN)} not found`);
      else {
        for (const action of [
          'kinesis:DescribeStream',
          'kinesis:GetShardIterator',
          'kinesis:GetRecords',
          'kinesis:ListShards',
        ])
          out.reqs.push({
            role,
            action,
            target: { arn: String(stream.att('Arn')) },
            why: `${who} reads ${stream.id}`,
          });
        out.reqs.push(...kmsReqs(role, stream, ['kms:Decrypt'], `${who} reads ${stream.id}`));
      }
    }
    const dest = p.ExtendedS3DestinationConfiguration ?? p.S3DestinationConfiguration;
    if (dest) s3Destination(w, out, who, dest);
    else out.problems.push(`${who}: only S3 destinations are modelled in test/infra/iam.test.ts`);
  }
}

function ruleRequirements(w: World, out: Collected): void {
  for (const rule of w.resources('AWS::IoT::TopicRule')) {
    const p = rule.props().TopicRulePayload as Props;
    const who = `${rule.stack.file}:${rule.id}`;
    for (const action of [...((p.Actions ?? []) as Props[]), p.ErrorAction].filter(Boolean)) {
      for (const [kind, a] of Object.entries(action as Record<string, Props>)) {
        const role = roleOf(w, asString(a.RoleArn), who);
        const why = `${who} ${kind} action`;
        if (kind === 'Kinesis') {
          const s = w.resources('AWS::Kinesis::Stream').find((r) => r.name() === a.StreamName);
          if (!s) out.problems.push(`${why}: stream ${String(a.StreamName)} not found`);
          else {
            out.reqs.push({ role, action: 'kinesis:PutRecord', target: { arn: String(s.att('Arn')) }, why });
            out.reqs.push(...kmsReqs(role, s, ['kms:GenerateDataKey'], why));
          }
        } else if (kind === 'S3') {
          const b = bucketByArnOrName(w, asString(a.BucketName));
          if (!b) out.problems.push(`${why}: bucket ${String(a.BucketName)} not found`);
          else {
            out.reqs.push({
              role,
              action: 's3:PutObject',
              target: { arn: `${String(b.att('Arn'))}/${staticPrefix(asString(a.Key))}`, anyKeyUnder: true },
              why,
            });
            out.reqs.push(...kmsReqs(role, b, ['kms:GenerateDataKey'], why));
          }
        } else if (kind === 'CloudwatchMetric') {
          out.reqs.push({ role, action: 'cloudwatch:PutMetricData', target: { arn: '*' }, why });
        } else if (kind === 'CloudwatchLogs') {
          const g = asString(a.LogGroupName);
          out.reqs.push({
            role,
            action: 'logs:DescribeLogStreams',
            // IAM names a log group for its own actions as 'log-group:name:*' (CloudWatch Logs access control).
            target: { arn: `arn:${PARTITION}:logs:${REGION}:${ACCOUNT}:log-group:${g}:*` },
            why,
          });
          for (const act of ['logs:CreateLogStream', 'logs:PutLogEvents'])
            out.reqs.push({ role, action: act, target: { arn: logStreamArn(g, 'a1b2c3') }, why });
        } else out.problems.push(`${why}: rule action ${kind} not modelled in test/infra/iam.test.ts`);
      }
    }
  }
}

// --- the role's own statements ----------------------------------------------------------------------------

function statementsOf(w: World, role: Resource): Statement[] {
  const p = role.props() as Props;
  const docs: Json[] = ((p.Policies ?? []) as { PolicyDocument: Json }[]).map((x) => x.PolicyDocument);
  for (const pol of [...w.resources('AWS::IAM::Policy'), ...w.resources('AWS::IAM::ManagedPolicy')]) {
    const pp = pol.props() as Props;
    if (((pp.Roles ?? []) as Json[]).includes(role.ref())) docs.push(pp.PolicyDocument);
  }
  if ((p.ManagedPolicyArns ?? []).length > 0)
    throw new Error(
      `${role.stack.file}:${role.id}: managed policies cannot be checked; write the statements out`,
    );
  const list = (v: Json | undefined) =>
    v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
  return docs.flatMap((d) =>
    ((d as { Statement: Record<string, Json>[] }).Statement ?? []).map((s) => ({
      sid: s.Sid === undefined ? undefined : String(s.Sid),
      effect: s.Effect === 'Deny' ? ('Deny' as const) : ('Allow' as const),
      actions: list(s.Action),
      resources: list(s.Resource),
    })),
  );
}

/** Sids whose statement is documented as not used by code: `# unused-by-code: <reason>` right above it. */
function documentedSids(): Set<string> {
  const sids = new Set<string>();
  for (const f of readdirSync(templatesDir).filter((x) => x.endsWith('.yaml')))
    for (const m of readFileSync(join(templatesDir, f), 'utf8').matchAll(
      /#\s*unused-by-code:\s*\S[^\n]*\n(?:\s*#[^\n]*\n)*\s*-?\s*Sid:\s*(\w+)/g,
    ))
      sids.add(`${f}:${m[1]}`);
  return sids;
}

// --- the checks -------------------------------------------------------------------------------------------

const worlds = HOT_STORES.map((h) => World.deploy(h, { HotStore: h }));
const unresolved = new Map<string, string>();
const perWorld = worlds.map((w) => {
  const out: Collected = { reqs: [], problems: [], unresolved };
  lambdaRequirements(w, out);
  firehoseRequirements(w, out);
  ruleRequirements(w, out);
  return { w, out };
});

t.test('every requirement the model cannot place is reported', async (t) => {
  for (const { w, out } of perWorld) t.same(out.problems, [], `HotStore=${w.label}: everything modelled`);
  t.same(
    [...unresolved.values()].filter(Boolean),
    [],
    'every SDK call targets a resource its function names',
  );
});

t.test('every AWS call, log and metric write is allowed by its own role', async (t) => {
  for (const { w, out } of perWorld) {
    const missing = out.reqs
      .filter((r) => !allowed(statementsOf(w, r.role), r.action, r.target))
      .map(
        (r) =>
          `${r.role.stack.file}:${r.role.id} lacks ${r.action} on ${r.target.arn}${r.target.anyKeyUnder ? '…' : ''} — ${r.why}`,
      );
    t.same([...new Set(missing)], [], `HotStore=${w.label}: ${out.reqs.length} requirements allowed`);
    t.ok(out.reqs.length > 40, `HotStore=${w.label}: ${out.reqs.length} requirements`);
  }
});

t.test('no role allows an action or resource that nothing uses', async (t) => {
  const documented = documentedSids();
  const granted = new Map<string, string>(); // key → description
  const used = new Set<string>();
  const checkedRoles = new Set<string>();
  for (const { w, out } of perWorld) {
    const roles = new Set(out.reqs.map((r) => r.role));
    for (const role of roles) {
      checkedRoles.add(`${role.stack.file}:${role.id}`);
      const mine = out.reqs.filter((r) => r.role === role);
      for (const s of statementsOf(w, role)) {
        if (s.effect !== 'Allow') continue;
        if (s.sid && documented.has(`${role.stack.file}:${s.sid}`)) continue;
        for (const a of s.actions)
          for (const res of s.resources) {
            const key = `${role.stack.file}:${role.id} ${a} ${res}`;
            granted.set(
              key,
              `${role.stack.file}:${role.id}${s.sid ? ` (${s.sid})` : ''} allows ${a} on ${res}`,
            );
            if (mine.some((r) => glob(a, r.action, true) && resourceMatches(res, r.target))) used.add(key);
          }
      }
    }
  }
  const unused = [...granted].filter(([k]) => !used.has(k)).map(([, d]) => d);
  t.same(unused, [], 'every allowed action and resource serves a requirement (or says why in the template)');
  // Roles no requirement reaches are not checked here: name them, so that a new one is not missed.
  const all = worlds.flatMap((w) => w.resources('AWS::IAM::Role').map((r) => `${r.stack.file}:${r.id}`));
  t.same(
    [...new Set(all)].filter((r) => !checkedRoles.has(r)).sort(),
    ['iot.yaml:ProvisioningRole'],
    'roles outside this check (README: what the IAM test does not reach)',
  );
});

t.test('the matcher and the model', async (t) => {
  const stmts: Statement[] = [
    {
      effect: 'Allow',
      actions: ['logs:PutLogEvents'],
      resources: ['arn:aws:logs:r:a:log-group:/g:*:log-stream:*'],
    },
  ];
  const stream = { arn: 'arn:aws:logs:r:a:log-group:/g:log-stream:s' };
  t.notOk(allowed(stmts, 'logs:PutLogEvents', stream), "'${LogGroup.Arn}:log-stream:*' matches no stream");
  t.ok(
    allowed(
      [{ ...stmts[0]!, resources: ['arn:aws:logs:r:a:log-group:/g:log-stream:*'] }],
      'logs:putlogevents',
      stream,
    ),
  );
  t.ok(
    allowed([{ effect: 'Allow', actions: ['logs:Put*'], resources: ['*'] }], 'logs:PutLogEvents', stream),
    'wildcards',
  );
  t.notOk(
    allowed(
      [
        { effect: 'Allow', actions: ['logs:*'], resources: ['*'] },
        { effect: 'Deny', actions: ['logs:PutLogEvents'], resources: ['*'] },
      ],
      'logs:PutLogEvents',
      stream,
    ),
    'Deny wins',
  );
  t.ok(
    resourceMatches('arn:aws:s3:::b/raw/*', { arn: 'arn:aws:s3:::b/', anyKeyUnder: true }),
    'a prefix under the bucket',
  );
  t.notOk(
    resourceMatches('arn:aws:s3:::c/*', { arn: 'arn:aws:s3:::b/', anyKeyUnder: true }),
    'another bucket',
  );

  const w = worlds[0]!;
  const lg = w.resources('AWS::Logs::LogGroup').find((r) => r.id === 'LogGroup')!;
  t.equal(
    lg.att('Arn'),
    `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/meterlink-ingest:*`,
    'log group Arn ends in :*',
  );
  t.equal(lg.ref(), '/aws/lambda/meterlink-ingest', 'Ref of a log group is its name');
  const bucket = w.resources('AWS::S3::Bucket').find((r) => r.stack.file === 'lake.yaml')!;
  t.match(String(bucket.att('Arn')), /^arn:aws:s3:::[a-z0-9.-]+$/, 'bucket Arn has no region or account');

  const dir = mkdtempSync(join(tmpdir(), 'meterlink-iam-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const probe = join(dir, 'probe.ts');
  writeFileSync(
    probe,
    [
      "import { PutRecordBatchCommand as Put, FirehoseClient } from '@aws-sdk/client-firehose';",
      "import type { PutObjectCommand } from '@aws-sdk/client-s3';",
      "import { S3, ListObjectsV2Command, NoSuchKey } from '@aws-sdk/client-s3';",
      "import { DescribeStreamCommand } from '@aws-sdk/client-kinesis';",
      'await new FirehoseClient({}).send(new Put({}));',
      'await s3.send(new ListObjectsV2Command({}));',
    ].join('\n'),
  );
  const found = sdkCalls([probe]);
  t.same(
    found.calls.map((c) => c.action),
    ['firehose:PutRecordBatch', 's3:ListBucket'],
    'commands by their IAM action, aliases followed; imported but unused or type-only: no call',
  );
  t.match(found.unknown, [/^S3 from @aws-sdk\/client-s3/], 'an aggregated client is reported, not guessed');

  const { calls } = sdkCalls(reachable(FUNCTIONS.ingest));
  t.ok(
    calls.some((c) => c.action === 'iot:DescribeCertificate'),
    'the ingest code’s certificate lookup is found',
  );
  t.ok(
    calls.some((c) => c.action === 'timestream:WriteRecords'),
    'every sink is in the bundle',
  );
});
