/**
 * Builds the sink the template configured (ingest.yaml environment): HOT_STORE plus its settings. A missing
 * setting is a deployment error (SINK_CONFIG) that names the variable.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { IngestError } from '../errors.js';
import { createDynamoDbSink } from './dynamodb.js';
import { createInfluxSink, type InfluxCredentials } from './influx.js';
import { noneSink, type SampleSink } from './sink.js';
import { createTimestreamSink } from './timestream.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Client settings for tests (moto) and local runs; in Lambda the defaults come from the environment. */
export interface ClientConfig {
  readonly endpoint?: string;
  readonly region?: string;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
}

function need(env: Env, name: string): string {
  const v = env[name];
  if (v === undefined || v === '')
    throw new IngestError(
      'SINK_CONFIG',
      `environment variable ${name} is not set (see infra-cfn/templates/ingest.yaml)`,
      { name },
    );
  return v;
}

export function secretCredentials(
  client: Pick<SecretsManagerClient, 'send'>,
  secretId: string,
): (fresh: boolean) => Promise<InfluxCredentials> {
  let cached: Promise<InfluxCredentials> | undefined;
  const load = async (): Promise<InfluxCredentials> => {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    let doc: Partial<InfluxCredentials>;
    try {
      doc = JSON.parse(out.SecretString ?? '') as Partial<InfluxCredentials>;
    } catch (cause) {
      throw new IngestError(
        'SINK_CONFIG',
        `secret ${secretId} is not JSON {url, database, token}`,
        { secretId },
        { cause },
      );
    }
    if (typeof doc.url !== 'string' || typeof doc.database !== 'string')
      throw new IngestError('SINK_CONFIG', `secret ${secretId} lacks "url" or "database"`, { secretId });
    return doc as InfluxCredentials;
  };
  return (fresh) => {
    if (fresh || cached === undefined) {
      cached = load();
      cached.catch(() => (cached = undefined));
    }
    return cached;
  };
}

export function sinkFromEnv(env: Env, cfg: ClientConfig = {}): SampleSink {
  const store = env.HOT_STORE ?? 'none';
  switch (store) {
    case 'dynamodb':
      return createDynamoDbSink({
        client: new DynamoDBClient({ ...cfg }),
        table: need(env, 'HOT_TABLE'),
        retentionDays: Number(env.HOT_RETENTION_DAYS ?? '90'),
      });
    case 'timestream-liveanalytics':
      return createTimestreamSink({
        client: new TimestreamWriteClient({ ...cfg }),
        database: need(env, 'TIMESTREAM_DATABASE'),
        table: need(env, 'HOT_TABLE'),
      });
    case 'timestream-influxdb':
      return createInfluxSink({
        credentials: secretCredentials(new SecretsManagerClient({ ...cfg }), need(env, 'INFLUX_SECRET_ARN')),
      });
    case 'none':
      return noneSink;
    default:
      throw new IngestError(
        'SINK_CONFIG',
        `HOT_STORE=${store} is not one of dynamodb, timestream-liveanalytics, timestream-influxdb, none`,
        {
          store,
        },
      );
  }
}
