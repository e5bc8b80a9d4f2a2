import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
/** Test data for the infra tests: samples in the shape the agent produces, and moto read-back helpers. */
import { f32Value, intValue, type Sample } from '../../cloud-contract/sample.js';

/** `count` samples alternating between two meters, 1 s apart, seq from `firstSeq`. */
export function makeSamples(count: number, firstSeq = 1, t0 = Date.UTC(2025, 0, 15, 12)): Sample[] {
  return Array.from({ length: count }, (_, i) => {
    const meter = i % 2 === 0 ? 'main' : 'pv';
    const values: Sample['values'] = {
      power_w: f32Value(1000 + i * 1.5),
      energy_import_kwh: intValue(12_345_678 + i, -3),
      voltage_l1_v: intValue(2301 + (i % 7), -1),
    };
    return {
      meter,
      ts: t0 + i * 1000,
      seq: firstSeq + i,
      flags: i % 10 === 3 ? 1 : 0,
      values,
      ...(i % 10 === 3 ? { missing: ['current_l1_a'] } : {}),
    };
  });
}

interface MotoTimestreamTable {
  db_name: string;
  name: string;
  records: {
    Dimensions: { Name: string; Value: string }[];
    MeasureName: string;
    Time: string;
    Version?: number;
    MeasureValues: { Name: string; Value: string; Type: string }[];
  }[];
}

/**
 * Timestream records as moto keeps them (it appends every write; the real service upserts by dimensions +
 * measure name + time, and treats an identical re-write with the same version as a no-op).
 */
export async function motoTimestreamRecords(
  endpoint: string,
  db: string,
  table: string,
): Promise<MotoTimestreamTable['records']> {
  const res = await fetch(`${endpoint}/moto-api/data.json`);
  const data = (await res.json()) as { timestreamwrite?: { TimestreamTable?: MotoTimestreamTable[] } };
  return (
    data.timestreamwrite?.TimestreamTable?.find((x) => x.db_name === db && x.name === table)?.records ?? []
  );
}

import {
  AttachThingPrincipalCommand,
  CreateThingCommand,
  RegisterCertificateWithoutCACommand,
  type IoTClient,
} from '@aws-sdk/client-iot';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { signBatch } from '../../cloud-contract/index.js';
import { buildRuleEnvelope } from '../../infra-cfn/lambda/envelope.js';
import { issueCert, type Ca } from '../harness/pki.js';

export interface TestDevice {
  readonly thing: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly certDer: Buffer;
  /** Certificate id (= kid hex) as IoT reports it. */
  readonly id: string;
}

/**
 * Issues a device certificate (CN = thing), registers it in (moto's) IoT with the given status, and attaches it
 * to the thing (created if new), as provisioning does.
 */
export async function registerDevice(
  iot: Pick<IoTClient, 'send'>,
  ca: Ca,
  thing: string,
  status: 'ACTIVE' | 'INACTIVE' | 'REVOKED' = 'ACTIVE',
): Promise<TestDevice> {
  const c = await issueCert(ca, { cn: thing });
  const out = await iot.send(new RegisterCertificateWithoutCACommand({ certificatePem: c.certPem, status }));
  if (out.certificateId !== c.fingerprint)
    throw new Error(`IoT certificate id ${out.certificateId} is not the DER SHA-256 ${c.fingerprint}`);
  await iot.send(new CreateThingCommand({ thingName: thing }));
  await iot.send(new AttachThingPrincipalCommand({ thingName: thing, principal: out.certificateArn }));
  return { thing, keyPem: c.keyPem, certPem: c.certPem, certDer: c.certDer, id: c.fingerprint };
}

/** The envelope the batch topic rule would put on the stream for `samples` signed by `signer`. */
export function ruleRecord(
  dev: TestDevice,
  samples: readonly Sample[],
  over: {
    signer?: TestDevice;
    principal?: string;
    thing?: string;
    device?: string;
    receivedAt?: number;
    payload?: Uint8Array;
  } = {},
): Buffer {
  const signer = over.signer ?? dev;
  const thing = over.thing ?? dev.thing;
  const payload =
    over.payload ??
    signBatch(
      { device: over.device ?? dev.thing, samples },
      { privateKey: signer.keyPem, certDer: signer.certDer },
    );
  return buildRuleEnvelope({
    payload,
    thing,
    principal: over.principal ?? dev.id,
    receivedAt: over.receivedAt ?? Date.UTC(2025, 0, 15, 13),
    topic: `meterlink/v1/${thing}/batch`,
  });
}

export async function createStream(kinesis: Pick<KinesisClient, 'send'>, name: string): Promise<string> {
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
  const d = await kinesis.send(new DescribeStreamCommand({ StreamName: name }));
  return d.StreamDescription?.StreamARN as string;
}

/** Puts records (partition key = thing, as the rule does) and returns the position to read them from. */
export async function putRecords(
  kinesis: Pick<KinesisClient, 'send'>,
  stream: string,
  records: { thing: string; data: Uint8Array }[],
): Promise<void> {
  for (const r of records)
    await kinesis.send(new PutRecordCommand({ StreamName: stream, PartitionKey: r.thing, Data: r.data }));
}

/** Reads every record of the (single-shard) stream after `afterSeq` and shapes them as Lambda's Kinesis event. */
export async function readEvent(
  kinesis: Pick<KinesisClient, 'send'>,
  stream: string,
  streamArn: string,
  afterSeq?: string,
): Promise<KinesisStreamEvent> {
  const d = await kinesis.send(new DescribeStreamCommand({ StreamName: stream }));
  const shardId = d.StreamDescription?.Shards?.[0]?.ShardId as string;
  const it = await kinesis.send(
    new GetShardIteratorCommand({
      StreamName: stream,
      ShardId: shardId,
      ...(afterSeq
        ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: afterSeq }
        : { ShardIteratorType: 'TRIM_HORIZON' }),
    }),
  );
  const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator, Limit: 10_000 }));
  const Records: KinesisStreamRecord[] = (out.Records ?? []).map((r) => ({
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: r.PartitionKey as string,
      sequenceNumber: r.SequenceNumber as string,
      data: Buffer.from(r.Data as Uint8Array).toString('base64'),
      approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp ?? new Date()).getTime() / 1000,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${shardId}:${r.SequenceNumber}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/ingest',
    awsRegion: 'eu-west-1',
    eventSourceARN: streamArn,
  }));
  return { Records };
}

/** The DynamoDB hot-store table as the template creates it (pk = device#meter, sk = time#seq), in moto. */
export async function createSamplesTable(ddb: DynamoDBClient, name = 'samples'): Promise<void> {
  await ddb.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
}
