/**
 * The CloudFormation templates evaluated the way CloudFormation would for one set of root parameters: every
 * intrinsic function resolved, conditions applied, nested stacks followed through their outputs, and every
 * `Ref` / `Fn::GetAtt` replaced by the value its resource type documents (CloudFormation template reference,
 * "Return values" of each type). A Ref or GetAtt of a type or attribute not listed here fails with a message
 * naming it, so that a new resource type is added with its documented form rather than guessed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type YAMLSeq } from 'yaml';

export const templatesDir = join(import.meta.dirname, '..', '..', 'infra-cfn', 'templates');

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type Template = {
  Parameters?: Record<string, { Type: string; Default?: Json }>;
  Conditions?: Record<string, Json>;
  Resources: Record<string, RawResource>;
  Outputs?: Record<string, { Value: Json }>;
};
interface RawResource {
  Type: string;
  Condition?: string;
  Properties?: Record<string, Json>;
}

const FNS = ['Sub', 'GetAtt', 'Join', 'Split', 'If', 'Equals', 'Not', 'And', 'Or', 'Select', 'GetAZs'];
const TAGS = [
  { tag: '!Ref', resolve: (v: string) => ({ Ref: v }) },
  { tag: '!Condition', resolve: (v: string) => ({ Condition: v }) },
  ...FNS.flatMap((n) => [
    {
      tag: `!${n}`,
      resolve: (v: string) => ({
        [`Fn::${n}`]: n === 'GetAtt' ? [v.slice(0, v.indexOf('.')), v.slice(v.indexOf('.') + 1)] : v,
      }),
    },
    { tag: `!${n}`, collection: 'seq' as const, resolve: (v: YAMLSeq) => ({ [`Fn::${n}`]: v.toJSON() }) },
  ]),
];

/** A template file as JSON (short-form tags turned into their long form). */
export function loadTemplate(file: string): Template {
  return parse(readFileSync(join(templatesDir, file), 'utf8'), { customTags: TAGS }) as Template;
}

export const NO_VALUE = Symbol('AWS::NoValue');
type Value = Json | typeof NO_VALUE | Value[] | { [k: string]: Value };

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';
export const PARTITION = 'aws';

/** A stateful resource as evaluated: its type, evaluated properties, and documented Ref/GetAtt values. */
export interface Resource {
  readonly stack: Stack;
  readonly id: string;
  readonly type: string;
  props(): Record<string, Json>;
  ref(): Json;
  att(name: string): Json;
  /** The physical name (explicit, or generated as CloudFormation does: stack-logicalId-SUFFIX). */
  name(): string;
  /** Its ARN: the Arn attribute, or Ref for types whose Ref is the ARN (secrets, topics). */
  arn(): string;
}

const REF_IS_ARN = new Set(['AWS::SecretsManager::Secret', 'AWS::SNS::Topic']);

const arn = (service: string, rest: string, region = REGION, account = ACCOUNT) =>
  `arn:${PARTITION}:${service}:${region}:${account}:${rest}`;

/** Where each type keeps its physical name. */
const NAME_PROP: Record<string, (p: Record<string, Json>) => Json | undefined> = {
  'AWS::Logs::LogGroup': (p) => p.LogGroupName,
  'AWS::Logs::LogStream': (p) => p.LogStreamName,
  'AWS::S3::Bucket': (p) => p.BucketName,
  'AWS::Kinesis::Stream': (p) => p.Name,
  'AWS::KinesisFirehose::DeliveryStream': (p) => p.DeliveryStreamName,
  'AWS::DynamoDB::Table': (p) => p.TableName,
  'AWS::SQS::Queue': (p) => p.QueueName,
  'AWS::Lambda::Function': (p) => p.FunctionName,
  'AWS::IAM::Role': (p) => p.RoleName,
  'AWS::IoT::Policy': (p) => p.PolicyName,
  'AWS::IoT::ThingType': (p) => p.ThingTypeName,
  'AWS::IoT::TopicRule': (p) => p.RuleName,
  'AWS::IoT::ProvisioningTemplate': (p) => p.TemplateName,
  'AWS::SecretsManager::Secret': (p) => p.Name,
  'AWS::Timestream::Database': (p) => p.DatabaseName,
  'AWS::Timestream::Table': (p) => p.TableName,
  'AWS::Timestream::InfluxDBInstance': (p) => p.Name,
  'AWS::SNS::Topic': (p) => p.TopicName,
  'AWS::Athena::WorkGroup': (p) => p.Name,
  'AWS::CloudTrail::Trail': (p) => p.TrailName,
  'AWS::Glue::Database': (p) => (p.DatabaseInput as { Name?: Json } | undefined)?.Name,
  'AWS::Glue::Table': (p) => (p.TableInput as { Name?: Json } | undefined)?.Name,
  'AWS::CloudWatch::Alarm': (p) => p.AlarmName,
};

/**
 * Documented return values (CloudFormation template reference, each type's "Return values"):
 * Ref first, then the Fn::GetAtt attributes. `r` is the resource, `n` its physical name.
 */
const RETURNS: Record<
  string,
  { ref: (n: string, r: Resource) => Json; atts?: Record<string, (n: string, r: Resource) => Json> }
> = {
  // Ref: the log group name. Arn: arn:aws:logs:region:account:log-group:name:* (note the trailing ':*').
  'AWS::Logs::LogGroup': { ref: (n) => n, atts: { Arn: (n) => arn('logs', `log-group:${n}:*`) } },
  'AWS::Logs::LogStream': { ref: (n) => n },
  // Ref: the bucket name. Arn: arn:aws:s3:::name (no region, no account).
  'AWS::S3::Bucket': {
    ref: (n) => n,
    atts: { Arn: (n) => `arn:${PARTITION}:s3:::${n}`, DomainName: (n) => `${n}.s3.amazonaws.com` },
  },
  // Ref: the stream name. Arn: arn:aws:kinesis:region:account:stream/name.
  'AWS::Kinesis::Stream': { ref: (n) => n, atts: { Arn: (n) => arn('kinesis', `stream/${n}`) } },
  // Ref: the key id. Arn: arn:aws:kms:region:account:key/key-id.
  'AWS::KMS::Key': {
    ref: (_n, r) => keyId(r),
    atts: { Arn: (_n, r) => arn('kms', `key/${keyId(r)}`), KeyId: (_n, r) => keyId(r) },
  },
  'AWS::KMS::Alias': { ref: (_n, r) => r.props().AliasName as Json },
  // Ref: the delivery stream name. Arn: arn:aws:firehose:region:account:deliverystream/name.
  'AWS::KinesisFirehose::DeliveryStream': {
    ref: (n) => n,
    atts: { Arn: (n) => arn('firehose', `deliverystream/${n}`) },
  },
  // Ref: the table name. Arn: arn:aws:dynamodb:region:account:table/name.
  'AWS::DynamoDB::Table': {
    ref: (n) => n,
    atts: {
      Arn: (n) => arn('dynamodb', `table/${n}`),
      StreamArn: (n) => arn('dynamodb', `table/${n}/stream/2025-01-01T00:00:00.000`),
    },
  },
  // Ref: the queue URL. Arn: arn:aws:sqs:region:account:name. QueueName, QueueUrl.
  'AWS::SQS::Queue': {
    ref: (n) => `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${n}`,
    atts: {
      Arn: (n) => arn('sqs', n),
      QueueName: (n) => n,
      QueueUrl: (n) => `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${n}`,
    },
  },
  // Ref: the function name. Arn: arn:aws:lambda:region:account:function:name.
  'AWS::Lambda::Function': { ref: (n) => n, atts: { Arn: (n) => arn('lambda', `function:${n}`) } },
  'AWS::Lambda::Permission': { ref: (_n, r) => `${r.stack.name}-${r.id}` },
  // Ref: the role name. Arn: arn:aws:iam::account:role/name.
  'AWS::IAM::Role': {
    ref: (n) => n,
    atts: { Arn: (n) => `arn:${PARTITION}:iam::${ACCOUNT}:role/${n}`, RoleId: () => 'AROAEXAMPLE' },
  },
  'AWS::IoT::Policy': { ref: (n) => n, atts: { Arn: (n) => arn('iot', `policy/${n}`) } },
  'AWS::IoT::ThingType': { ref: (n) => n, atts: { Arn: (n) => arn('iot', `thingtype/${n}`) } },
  'AWS::IoT::TopicRule': { ref: (n) => n, atts: { Arn: (n) => arn('iot', `rule/${n}`) } },
  'AWS::IoT::ProvisioningTemplate': {
    ref: (n) => n,
    atts: { TemplateArn: (n) => arn('iot', `provisioningtemplate/${n}`) },
  },
  'AWS::Glue::Database': { ref: (n) => n },
  'AWS::Glue::Table': { ref: (n) => n },
  // Ref: the secret's ARN (name plus a random 6-character suffix).
  'AWS::SecretsManager::Secret': {
    ref: (n) => arn('secretsmanager', `secret:${n}-AbCdEf`),
    atts: { Id: (n) => arn('secretsmanager', `secret:${n}-AbCdEf`) },
  },
  // Ref: the database name. Arn: arn:aws:timestream:region:account:database/name.
  'AWS::Timestream::Database': {
    ref: (n) => n,
    atts: { Arn: (n) => arn('timestream', `database/${n}`) },
  },
  // Ref: "database|table". Arn: arn:aws:timestream:region:account:database/db/table/name. Name.
  'AWS::Timestream::Table': {
    ref: (n, r) => `${String(r.props().DatabaseName)}|${n}`,
    atts: {
      Arn: (n, r) => arn('timestream', `database/${String(r.props().DatabaseName)}/table/${n}`),
      Name: (n) => n,
    },
  },
  'AWS::Timestream::InfluxDBInstance': {
    ref: (_n, r) => `influx-${r.id.toLowerCase()}`,
    atts: {
      Id: (_n, r) => `influx-${r.id.toLowerCase()}`,
      Endpoint: (_n, r) => `influx-${r.id.toLowerCase()}.${REGION}.timestream-influxdb.amazonaws.com`,
      Arn: (_n, r) => arn('timestream-influxdb', `db-instance/influx-${r.id.toLowerCase()}`),
    },
  },
  // Ref: the topic ARN.
  'AWS::SNS::Topic': {
    ref: (n) => arn('sns', n),
    atts: { TopicArn: (n) => arn('sns', n), TopicName: (n) => n },
  },
  'AWS::Athena::WorkGroup': { ref: (n) => n },
  'AWS::Athena::NamedQuery': { ref: (_n, r) => `query-${r.id}` },
  'AWS::CloudTrail::Trail': { ref: (n) => n, atts: { Arn: (n) => arn('cloudtrail', `trail/${n}`) } },
  'AWS::CloudWatch::Alarm': { ref: (n) => n, atts: { Arn: (n) => arn('cloudwatch', `alarm:${n}`) } },
  'AWS::QuickSight::DataSource': {
    ref: (_n, r) => r.id,
    atts: { Arn: (_n, r) => arn('quicksight', `datasource/${r.id}`) },
  },
  'AWS::EC2::VPC': { ref: (_n, r) => `vpc-${r.id.toLowerCase()}` },
  'AWS::EC2::Subnet': { ref: (_n, r) => `subnet-${r.id.toLowerCase()}` },
  'AWS::EC2::SecurityGroup': {
    ref: (_n, r) => `sg-${r.id.toLowerCase()}`,
    atts: { GroupId: (_n, r) => `sg-${r.id.toLowerCase()}` },
  },
  'AWS::EC2::InternetGateway': { ref: (_n, r) => `igw-${r.id.toLowerCase()}` },
  'AWS::EC2::RouteTable': { ref: (_n, r) => `rtb-${r.id.toLowerCase()}` },
  'AWS::EC2::NatGateway': { ref: (_n, r) => `nat-${r.id.toLowerCase()}` },
  'AWS::EC2::EIP': {
    ref: () => '192.0.2.1',
    atts: { AllocationId: (_n, r) => `eipalloc-${r.id.toLowerCase()}` },
  },
  'AWS::CloudFormation::Stack': {
    ref: (_n, r) => arn('cloudformation', `stack/${r.stack.name}-${r.id}/uuid`),
  },
};

function keyId(r: Resource): string {
  // A stable, UUID-shaped key id per key.
  const h = [...`${r.stack.name}/${r.id}`].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7);
  return `${h.toString(16).padStart(8, '0')}-1234-4abc-8def-0123456789ab`;
}

export class Stack {
  readonly resources = new Map<string, Resource>();
  private readonly conditions = new Map<string, boolean>();
  private readonly children = new Map<string, Stack>();
  constructor(
    readonly file: string,
    readonly name: string,
    readonly template: Template,
    readonly params: Record<string, Json>,
    readonly world: World,
  ) {
    for (const [id, raw] of Object.entries(template.Resources)) {
      if (raw.Condition !== undefined && !this.condition(raw.Condition)) continue;
      this.resources.set(id, this.makeResource(id, raw));
    }
  }

  condition(name: string): boolean {
    let v = this.conditions.get(name);
    if (v === undefined) {
      const expr = this.template.Conditions?.[name];
      if (expr === undefined) throw new Error(`${this.file}: no condition ${name}`);
      v = this.ev(expr) === true;
      this.conditions.set(name, v);
    }
    return v;
  }

  private makeResource(id: string, raw: RawResource): Resource {
    let props: Record<string, Json> | undefined;
    const r: Resource = {
      stack: this,
      id,
      type: raw.Type,
      props: () => (props ??= strip(this.ev((raw.Properties ?? {}) as Json)) as Record<string, Json>),
      name: () => {
        const explicit = NAME_PROP[raw.Type]?.(r.props());
        if (typeof explicit === 'string') return explicit;
        const gen = `${this.name}-${id}-1A2B3C4D5E6F`;
        return raw.Type === 'AWS::S3::Bucket' ? gen.toLowerCase() : gen;
      },
      ref: () => {
        const rv = RETURNS[raw.Type];
        if (!rv)
          throw new Error(`${this.file}: Ref ${id}: no documented Ref form for ${raw.Type} (cfn-model.ts)`);
        return rv.ref(r.name(), r);
      },
      arn: () => String(REF_IS_ARN.has(raw.Type) ? r.ref() : r.att('Arn')),
      att: (a) => {
        if (raw.Type === 'AWS::CloudFormation::Stack' && a.startsWith('Outputs.'))
          return this.child(id).output(a.slice('Outputs.'.length));
        const f = RETURNS[raw.Type]?.atts?.[a];
        if (!f)
          throw new Error(
            `${this.file}: GetAtt ${id}.${a}: no documented form for ${raw.Type}.${a} (cfn-model.ts)`,
          );
        return f(r.name(), r);
      },
    };
    return r;
  }

  child(id: string): Stack {
    let c = this.children.get(id);
    if (!c) {
      const r = this.resources.get(id);
      if (!r) throw new Error(`${this.file}: no nested stack ${id}`);
      const p = r.props();
      const file = String(p.TemplateURL).replace(/^\.\//, '');
      c = this.world.stack(file, `${this.name}-${id}-X1Y2Z3`, (p.Parameters ?? {}) as Record<string, Json>);
      this.children.set(id, c);
    }
    return c;
  }

  output(name: string): Json {
    const o = this.template.Outputs?.[name];
    if (!o) throw new Error(`${this.file}: no output ${name}`);
    return strip(this.ev(o.Value));
  }

  param(name: string): Json {
    const decl = this.template.Parameters?.[name];
    if (!decl) throw new Error(`${this.file}: no parameter ${name}`);
    const v = this.params[name] ?? decl.Default;
    if (v === undefined) throw new Error(`${this.file}: parameter ${name} has no value`);
    return decl.Type === 'CommaDelimitedList' && typeof v === 'string' ? v.split(',') : v;
  }

  ref(name: string): Value {
    switch (name) {
      case 'AWS::NoValue':
        return NO_VALUE;
      case 'AWS::Region':
        return REGION;
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::Partition':
        return PARTITION;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return this.name;
      case 'AWS::StackId':
        return arn('cloudformation', `stack/${this.name}/uuid`);
    }
    if (this.template.Parameters?.[name]) return this.param(name);
    const r = this.resources.get(name);
    if (!r) throw new Error(`${this.file}: Ref ${name}: no such parameter or (enabled) resource`);
    return r.ref();
  }

  sub(text: string, vars: Record<string, Value>): string {
    return text.replace(/\$\{([^}]*)\}/g, (_m, inner: string) => {
      if (inner.startsWith('!')) return `\${${inner.slice(1)}}`;
      if (inner in vars) return String(vars[inner] as Json);
      if (inner.includes('.') && !inner.startsWith('AWS::')) {
        const dot = inner.indexOf('.');
        const r = this.resources.get(inner.slice(0, dot));
        if (!r) throw new Error(`${this.file}: \${${inner}}: no such resource`);
        return String(r.att(inner.slice(dot + 1)));
      }
      const v = this.ref(inner);
      if (typeof v !== 'string' && typeof v !== 'number')
        throw new Error(`${this.file}: \${${inner}} is not a string`);
      return String(v);
    });
  }

  /** Evaluates an expression; AWS::NoValue comes back as NO_VALUE and is dropped from lists and maps. */
  ev(x: Json | Value): Value {
    if (Array.isArray(x)) return x.map((v) => this.ev(v)).filter((v) => v !== NO_VALUE);
    if (x === null || typeof x !== 'object') return x;
    const keys = Object.keys(x);
    const o = x as Record<string, Json>;
    if (keys.length === 1) {
      const k = keys[0] as string;
      const a = o[k] as Json;
      const arg = () => a as Json[];
      switch (k) {
        case 'Ref':
          return this.ref(String(a));
        case 'Condition':
          return this.condition(String(a));
        case 'Fn::GetAtt': {
          const [id, att] = Array.isArray(a) ? a.map(String) : String(a).split(/\.(.*)/);
          const r = this.resources.get(String(id));
          if (!r) throw new Error(`${this.file}: GetAtt ${id}: no such (enabled) resource`);
          return r.att(String(att));
        }
        case 'Fn::Sub':
          if (typeof a === 'string') return this.sub(a, {});
          return this.sub(String(arg()[0]), this.ev(arg()[1] ?? {}) as Record<string, Value>);
        case 'Fn::Join':
          return (this.ev(arg()[1] as Json) as Json[]).map(String).join(String(arg()[0]));
        case 'Fn::Split':
          return String(this.ev(arg()[1] as Json)).split(String(arg()[0]));
        case 'Fn::Select':
          return (this.ev(arg()[1] as Json) as Json[])[Number(this.ev(arg()[0] as Json))] as Json;
        case 'Fn::If':
          return this.condition(String(arg()[0])) ? this.ev(arg()[1] as Json) : this.ev(arg()[2] as Json);
        case 'Fn::Equals':
          return JSON.stringify(this.ev(arg()[0] as Json)) === JSON.stringify(this.ev(arg()[1] as Json));
        case 'Fn::Not':
          return this.ev(arg()[0] as Json) !== true;
        case 'Fn::And':
          return arg().every((c) => this.ev(c) === true);
        case 'Fn::Or':
          return arg().some((c) => this.ev(c) === true);
        case 'Fn::GetAZs':
          return [`${REGION}a`, `${REGION}b`, `${REGION}c`];
      }
      if (k.startsWith('Fn::')) throw new Error(`${this.file}: ${k} is not evaluated by cfn-model.ts`);
    }
    const out: Record<string, Value> = {};
    for (const [k, v] of Object.entries(o)) {
      const e = this.ev(v);
      if (e !== NO_VALUE) out[k] = e;
    }
    return out;
  }
}

function strip(v: Value): Json {
  return v as Json;
}

/** All stacks of one deployment: main.yaml with `params`, its nested stacks reached through it. */
export class World {
  readonly stacks: Stack[] = [];
  constructor(readonly label: string) {}
  stack(file: string, name: string, params: Record<string, Json>): Stack {
    const s = new Stack(file, name, loadTemplate(file), params, this);
    this.stacks.push(s);
    return s;
  }
  /** Builds the root stack and every nested stack. */
  static deploy(label: string, params: Record<string, Json>): World {
    const w = new World(label);
    const root = w.stack('main.yaml', 'meterlink', params);
    for (const r of root.resources.values()) if (r.type === 'AWS::CloudFormation::Stack') root.child(r.id);
    return w;
  }
  resources(type?: string): Resource[] {
    return this.stacks.flatMap((s) => [...s.resources.values()]).filter((r) => !type || r.type === type);
  }
}
