/**
 * One conformance suite for the SampleSink interface (STYLE habit 2), run against every implementation with
 * a real or emulated store: DynamoDB and Timestream for LiveAnalytics through moto, InfluxDB line protocol
 * against a real influxd (1.x, user and password) and against InfluxDB 2's documented /write contract (tokens,
 * status codes, Retry-After) served on loopback by test/infra/influxd.ts. Each: every sample readable once with equal values, a re-sent batch changes
 * nothing, chunking past the API limits. Then the failure paths of each.
 */
import t, { type Test } from 'tap';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CreateDatabaseCommand,
  CreateTableCommand as CreateTsTable,
  TimestreamWriteClient,
} from '@aws-sdk/client-timestream-write';
import { f32Value, valueToNumber, type Sample } from '../../cloud-contract/sample.js';
import { isIngestError } from '../../infra-cfn/lambda/errors.js';
import { SHARDS, createDynamoDbSink, queryKeys, sampleKey } from '../../infra-cfn/lambda/sinks/dynamodb.js';
import { readSamples } from '../../infra-cfn/lambda/sinks/dynamodb-read.js';
import { secretCredentials, sinkFromEnv } from '../../infra-cfn/lambda/sinks/from-env.js';
import { createInfluxSink, sampleLine } from '../../infra-cfn/lambda/sinks/influx.js';
import { backoffMs, noneSink, type SampleSink } from '../../infra-cfn/lambda/sinks/sink.js';
import { createTimestreamSink, sampleRecord } from '../../infra-cfn/lambda/sinks/timestream.js';
import { startMoto } from '../harness/moto.js';
import { freePort } from '../harness/net.js';
import { makeSamples, motoTimestreamRecords, createSamplesTable } from './fixtures.js';
import { startInflux2Api, startInfluxd } from './influxd.js';

interface Stored {
  ts: number;
  flags: number;
  values: Record<string, number>;
}

interface Implementation {
  name: string;
  sink: SampleSink;
  /** Stored samples of a device keyed "meter#seq"; `copies` counts distinct stored versions per key. */
  readBack(device: string): Promise<{ rows: Map<string, Stored>; copies: number }>;
}

const expected = (samples: Sample[]) =>
  new Map(
    samples.map((s) => [
      `${s.meter}#${s.seq}`,
      {
        ts: s.ts,
        flags: s.flags,
        values: Object.fromEntries(Object.entries(s.values).map(([k, v]) => [k, valueToNumber(v)])),
      },
    ]),
  );

function conformance(t: Test, impl: () => Promise<Implementation>) {
  t.test('writes every sample once with equal values; a re-sent batch changes nothing', async (t) => {
    const { sink, readBack } = await impl();
    const device = `box-${Math.random().toString(36).slice(2, 8)}`;
    const samples = makeSamples(260); // > 100 (Timestream) and > 25 (DynamoDB) per request
    const first = await sink.write([
      { device, samples: samples.slice(0, 130) },
      { device, samples: samples.slice(130) },
    ]);
    t.equal(first.written, 260);
    t.equal(first.rejected, 0);
    const before = await readBack(device);
    t.same(before.rows, expected(samples), 'read back equals what was written');
    t.equal(before.copies, 260, 'one stored version per sample');
    // At-least-once delivery: the same batch again, and once more inside one write call.
    await sink.write([
      { device, samples: samples.slice(0, 130) },
      { device, samples: samples.slice(0, 130) },
    ]);
    const after = await readBack(device);
    t.same(after.rows, before.rows, 're-sent batches change nothing');
    t.equal(after.copies, 260, 'still one version per sample');
  });
}

t.test('DynamoDB (moto)', async (t) => {
  const moto = await startMoto(t);
  const client = new DynamoDBClient({
    endpoint: moto.endpoint,
    region: moto.region,
    credentials: moto.credentials,
  });
  t.teardown(() => client.destroy());
  await createSamplesTable(client);
  const sink = createDynamoDbSink({ client, table: 'samples', retentionDays: 30 });
  const readBack = async (device: string) => {
    const rows = new Map<string, Stored>();
    let copies = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await client.send(new ScanCommand({ TableName: 'samples', ExclusiveStartKey: start }));
      for (const it of out.Items ?? []) {
        if (it.device?.S !== device) continue;
        copies++;
        const values = Object.fromEntries(
          Object.entries(it.values?.M ?? {}).map(([k, v]) => [k, Number(v.N)]),
        );
        rows.set(`${it.meter?.S}#${it.seq?.N}`, { ts: Number(it.ts?.N), flags: Number(it.flags?.N), values });
        t.equal(
          Number(it.expiresAt?.N),
          Math.floor(Number(it.ts?.N) / 1000) + 30 * 86_400,
          'TTL attribute set',
        );
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return { rows, copies };
  };
  t.test('conformance', async (t) => conformance(t, async () => ({ name: 'dynamodb', sink, readBack })));

  t.test('a meter over a time range: one Query per day and shard, merged in time order', async (t) => {
    const device = 'read-box';
    // 1,000 samples of two meters across a UTC midnight, 2 s apart.
    const t0 = Date.UTC(2025, 0, 15, 23, 40);
    const samples: Sample[] = makeSamples(1_000, 5_001, t0).map((x, i) => ({ ...x, ts: t0 + i * 2_000 }));
    await sink.write([{ device, samples }]);
    const from = t0 + 300 * 2_000;
    const to = t0 + 900 * 2_000;
    const items = await readSamples({ client, table: 'samples', concurrency: 32 }, device, 'main', from, to);
    const want = samples.filter((x) => x.meter === 'main' && x.ts >= from && x.ts < to);
    t.same(
      items.map((i) => [Number(i.ts?.N), Number(i.seq?.N)]),
      want.map((x) => [x.ts, x.seq]),
      `${want.length} samples of one meter, oldest first, none outside [from, to)`,
    );
    t.equal(queryKeys(device, 'main', from, to).length, 2 * SHARDS, 'two days, every shard');
    const used = new Set(samples.map((x) => sampleKey(device, x).pk));
    t.ok(used.size > SHARDS, `${used.size} partition keys written`);
  });

  t.test('a missing table is a retryable SINK_UNAVAILABLE', async (t) => {
    const bad = createDynamoDbSink({ client, table: 'nope', retentionDays: 1 });
    const err = await bad.write([{ device: 'b', samples: makeSamples(3) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_UNAVAILABLE') && err.retryable, String(err));
  });

  t.test('sinkFromEnv builds it from the template environment', async (t) => {
    const s = sinkFromEnv({ HOT_STORE: 'dynamodb', HOT_TABLE: 'samples', HOT_RETENTION_DAYS: '7' }, moto);
    t.equal(s.kind, 'dynamodb');
    t.equal((await s.write([{ device: 'env-box', samples: makeSamples(2) }])).written, 2);
    t.throws(() => sinkFromEnv({ HOT_STORE: 'dynamodb' }), { code: 'SINK_CONFIG', message: /HOT_TABLE/ });
    t.throws(() => sinkFromEnv({ HOT_STORE: 'cassandra' }), { code: 'SINK_CONFIG' });
    t.equal(sinkFromEnv({}).kind, 'none');
    t.equal(
      sinkFromEnv({ HOT_STORE: 'timestream-liveanalytics', TIMESTREAM_DATABASE: 'd', HOT_TABLE: 't' }, moto)
        .kind,
      'timestream-liveanalytics',
    );
    t.equal(
      sinkFromEnv({ HOT_STORE: 'timestream-influxdb', INFLUX_SECRET_ARN: 'arn' }, moto).kind,
      'timestream-influxdb',
    );
  });
});

t.test('Timestream for LiveAnalytics (moto)', async (t) => {
  const moto = await startMoto(t);
  const client = new TimestreamWriteClient({
    endpoint: moto.endpoint,
    region: moto.region,
    credentials: moto.credentials,
  });
  t.teardown(() => client.destroy());
  await client.send(new CreateDatabaseCommand({ DatabaseName: 'meterlink' }));
  await client.send(new CreateTsTable({ DatabaseName: 'meterlink', TableName: 'samples' }));
  const sink = createTimestreamSink({ client, database: 'meterlink', table: 'samples' });
  const readBack = async (device: string) => {
    const records = (await motoTimestreamRecords(moto.endpoint, 'meterlink', 'samples')).filter(
      (r) => r.Dimensions.find((d) => d.Name === 'device')?.Value === device,
    );
    // The service's upsert key is dimensions + measure name + time; identical re-writes (same version and
    // values) are no-ops. moto appends them, so collapse identical copies and count distinct versions.
    const distinct = new Map<string, string>();
    for (const r of records) {
      const key = JSON.stringify([r.Dimensions, r.MeasureName, r.Time]);
      distinct.set(`${key}|${JSON.stringify(r)}`, key);
    }
    const rows = new Map<string, Stored>();
    const seen = new Set<string>();
    for (const r of records) {
      const m = Object.fromEntries(r.MeasureValues.map((v) => [v.Name, v]));
      const key = JSON.stringify([r.Dimensions, r.MeasureName, r.Time]);
      if (seen.has(key)) continue;
      seen.add(key);
      t.equal(r.Version, 1);
      const values: Record<string, number> = {};
      for (const v of r.MeasureValues) if (v.Type === 'DOUBLE') values[v.Name] = Number(v.Value);
      rows.set(`${r.Dimensions.find((d) => d.Name === 'meter')?.Value}#${m.seq?.Value}`, {
        ts: Number(r.Time),
        flags: Number(m.flags?.Value),
        values,
      });
    }
    return { rows, copies: distinct.size };
  };
  t.test('conformance', async (t) => conformance(t, async () => ({ name: 'timestream', sink, readBack })));

  t.test('records are multi-measure with ≤ 100 per WriteRecords', async (t) => {
    const r = sampleRecord('box', makeSamples(1)[0] as Sample);
    t.equal(r.MeasureValueType, 'MULTI');
    t.same(
      r.MeasureValues?.map((v) => v.Name),
      ['power_w', 'energy_import_kwh', 'voltage_l1_v', 'seq', 'flags'],
    );
  });

  t.test('rejected records are counted, not retried; a missing table is retryable', async (t) => {
    const rejecting = createTimestreamSink({
      database: 'meterlink',
      table: 'samples',
      client: {
        send: async () => {
          throw Object.assign(new Error('rejected'), {
            name: 'RejectedRecordsException',
            RejectedRecords: [{ RecordIndex: 1, Reason: 'ExistingVersion' }],
          });
        },
      } as never,
    });
    const res = await rejecting.write([{ device: 'b', samples: makeSamples(3) }]);
    t.equal(res.rejected, 1);
    t.equal(res.written, 2);
    t.match(res.rejections?.[0], /ExistingVersion/);
    const missing = createTimestreamSink({ client, database: 'meterlink', table: 'nope', maxAttempts: 2 });
    const err = await missing.write([{ device: 'b', samples: makeSamples(2) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_UNAVAILABLE'), String(err));
  });
});

t.test('InfluxDB line protocol (real influxd)', async (t) => {
  const influx = await startInfluxd(t);
  const creds = {
    url: influx.url,
    database: influx.database,
    username: influx.username,
    password: influx.password,
  };
  const sink = createInfluxSink({ credentials: async () => creds, linesPerRequest: 100 });
  const readBack = async (device: string) => {
    const rows = new Map<string, Stored>();
    const points = await influx.query(`SELECT * FROM meterlink WHERE device = '${device}'`);
    for (const p of points) {
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(p))
        if (!['time', 'device', 'meter', 'seq', 'flags'].includes(k) && typeof v === 'number') values[k] = v;
      rows.set(`${String(p.meter)}#${String(p.seq)}`, { ts: Number(p.time), flags: Number(p.flags), values });
    }
    return { rows, copies: points.length };
  };
  t.test('conformance', async (t) => conformance(t, async () => ({ name: 'influx', sink, readBack })));

  t.test('line protocol escapes tag values and types integers', async (t) => {
    const s = makeSamples(1)[0] as Sample;
    t.equal(
      sampleLine('meterlink', 'apt 12,a=b', s),
      `meterlink,device=apt\\ 12\\,a\\=b,meter=main power_w=1000,energy_import_kwh=12345.678,voltage_l1_v=230.1,seq=1i,flags=0i ${s.ts}`,
    );
  });

  t.test('credentials come from Secrets Manager and are re-read after a 401', async (t) => {
    const moto = await startMoto(t);
    const sm = new SecretsManagerClient({
      endpoint: moto.endpoint,
      region: moto.region,
      credentials: moto.credentials,
    });
    t.teardown(() => sm.destroy());
    const created = await sm.send(
      new CreateSecretCommand({
        Name: 'influx',
        SecretString: JSON.stringify({ ...creds, password: 'stale' }),
      }),
    );
    const provider = secretCredentials(sm, created.ARN as string);
    const s = createInfluxSink({ credentials: provider });
    const err = await s.write([{ device: 'rot', samples: makeSamples(1) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_CONFIG'), 'wrong password is a config error');
    await sm.send(new PutSecretValueCommand({ SecretId: created.ARN, SecretString: JSON.stringify(creds) }));
    t.equal(
      (await s.write([{ device: 'rot', samples: makeSamples(2) }])).written,
      2,
      'rotated secret picked up',
    );
    await sm.send(new PutSecretValueCommand({ SecretId: created.ARN, SecretString: 'not json' }));
    await t.rejects(provider(true), { code: 'SINK_CONFIG' });
    await sm.send(new PutSecretValueCommand({ SecretId: created.ARN, SecretString: '{"url":"x"}' }));
    await t.rejects(provider(true), { code: 'SINK_CONFIG', message: /database/ });
  });

  t.test('a field type conflict is counted as rejected; an unreachable server is retryable', async (t) => {
    // power_w was a float; a string field of the same name in the same shard is a type conflict (400).
    const conflict = createInfluxSink({
      credentials: async () => creds,
      measurement: 'meterlink',
      fetch: (url, init) =>
        fetch(url, {
          ...init,
          body: `meterlink,device=x,meter=main power_w="text" ${Date.UTC(2025, 0, 15, 12)}`,
        }),
    });
    await sink.write([{ device: 'x', samples: makeSamples(1) }]);
    const res = await conflict.write([{ device: 'x', samples: makeSamples(1) }]);
    t.equal(res.rejected, 1);
    t.match(res.rejections?.[0], /conflict|type/);
    const down = createInfluxSink({
      credentials: async () => ({ ...creds, url: `http://127.0.0.1:${await freePort()}` }),
    });
    const err = await down.write([{ device: 'x', samples: makeSamples(1) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_UNAVAILABLE') && err.retryable);
    const tokenSink = createInfluxSink({
      credentials: async () => ({ url: influx.url, database: 'meterlink', token: 'nope' }),
    });
    await t.rejects(tokenSink.write([{ device: 'x', samples: makeSamples(1) }]), { code: 'SINK_CONFIG' });
  });
});

t.test('InfluxDB 2 token path: the documented /write contract', async (t) => {
  const api = await startInflux2Api(t);
  const creds = { url: api.url, database: api.bucket, token: api.token };
  const sink = createInfluxSink({ credentials: async () => creds, linesPerRequest: 100 });
  const readBack = async (device: string) => {
    const rows = new Map<string, Stored>();
    const points = api.points().filter((p) => p.tags.device === device);
    for (const p of points) {
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(p.fields))
        if (k !== 'seq' && k !== 'flags' && typeof v === 'number') values[k] = v;
      rows.set(`${p.tags.meter}#${String(p.fields.seq)}`, {
        ts: p.time,
        flags: Number(p.fields.flags),
        values,
      });
    }
    return { rows, copies: points.length };
  };
  t.test('conformance', async (t) => conformance(t, async () => ({ name: 'influx2', sink, readBack })));

  t.test('the request: Authorization: Token, db = bucket, precision ms', async (t) => {
    const before = api.requests.length;
    await sink.write([{ device: 'req', samples: makeSamples(3) }]);
    const r = api.requests[before];
    t.equal(r?.authorization, `Token ${api.token}`);
    t.same(r?.query, { db: api.bucket, precision: 'ms' });
    t.equal(r?.status, 204);
  });

  t.test('401: the credentials are re-read once, then SINK_CONFIG', async (t) => {
    const asked: boolean[] = [];
    let token = 'revoked-token';
    const rotating = createInfluxSink({
      credentials: async (fresh) => {
        asked.push(fresh);
        return { ...creds, token };
      },
    });
    const err = await rotating.write([{ device: 'rot', samples: makeSamples(1) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_CONFIG') && err.retryable, 'a wrong token: fix the secret, records kept');
    t.same(asked, [false, true], 'asked again for fresh credentials after the 401');
    token = api.token;
    t.equal(
      (await rotating.write([{ device: 'rot', samples: makeSamples(2) }])).written,
      2,
      'rotated token used',
    );
    const v1 = createInfluxSink({
      credentials: async () => ({ url: api.url, database: api.bucket, username: 'any', password: api.token }),
    });
    t.equal(
      (await v1.write([{ device: 'v1', samples: makeSamples(2) }])).written,
      2,
      'v1 credentials (Basic, the token as password) work too',
    );
  });

  t.test('404: no such bucket is SINK_CONFIG', async (t) => {
    const wrong = createInfluxSink({ credentials: async () => ({ ...creds, database: 'nope' }) });
    const err = await wrong.write([{ device: 'x', samples: makeSamples(1) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_CONFIG'), String(err));
  });

  t.test('413: the request is halved until it fits; a single line too large is rejected alone', async (t) => {
    api.maxBodyBytes = 2_000;
    t.teardown(() => (api.maxBodyBytes = 25 * 1024 * 1024));
    const before = api.requests.length;
    const samples = makeSamples(60);
    const res = await sink.write([{ device: 'big', samples }]);
    t.same([res.written, res.rejected], [60, 0], 'every line written');
    const sent = api.requests.slice(before);
    t.ok(sent.some((r) => r.status === 413) && sent.every((r) => r.status === 413 || r.bytes <= 2_000));
    t.equal((await readBack('big')).copies, 60);
    const huge = { ...(makeSamples(1, 9_000)[0] as Sample) };
    huge.values = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`channel_${i}_w`, f32Value(i)]));
    const mixed = await sink.write([{ device: 'big', samples: [...makeSamples(3, 100), huge] }]);
    t.same([mixed.written, mixed.rejected], [3, 1], 'the other lines still written');
    t.match(mixed.rejections?.[0], /413/);
  });

  t.test('429 and 503 with Retry-After: waited out within the budget, else handed back', async (t) => {
    api.answer({ status: 429, headers: { 'retry-after': '1' } });
    let t0 = performance.now();
    const res = await sink.write([{ device: 'slow', samples: makeSamples(2) }]);
    t.equal(res.written, 2);
    t.ok(performance.now() - t0 >= 950, `waited the second Retry-After asked for`);
    api.answer({ status: 503, headers: { 'retry-after': '120' } });
    t0 = performance.now();
    let err = await sink.write([{ device: 'slow', samples: makeSamples(2) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_UNAVAILABLE') && err.retryable, 'a long wait: records back to Lambda');
    t.equal(isIngestError(err) ? err.context.retryAfter : undefined, '120');
    t.ok(performance.now() - t0 < 900, 'without waiting here');
    const patient = createInfluxSink({ credentials: async () => creds, maxAttempts: 3 });
    api.answer(...Array.from({ length: 3 }, () => ({ status: 503, headers: { 'retry-after': '0' } })));
    err = await patient.write([{ device: 'slow', samples: makeSamples(2) }]).catch((e: unknown) => e);
    t.ok(isIngestError(err, 'SINK_UNAVAILABLE'), 'still 503 after its attempts: handed back');
    t.equal(
      api.requests.slice(-3).filter((r) => r.status === 503).length,
      3,
      'three attempts, as configured',
    );
  });

  t.test('400 and 422: refused points are counted, never retried', async (t) => {
    const typed = createInfluxSink({
      credentials: async () => creds,
      fetch: (url, init) =>
        fetch(url, {
          ...init,
          body: `meterlink,device=x,meter=main power_w="text" ${Date.UTC(2025, 0, 15)}`,
        }),
    });
    const conflict = await typed.write([{ device: 'x', samples: makeSamples(1) }]);
    t.same([conflict.rejected, conflict.written], [1, 0]);
    t.match(conflict.rejections?.[0], /field type conflict/);
    const garbled = createInfluxSink({
      credentials: async () => creds,
      fetch: (url, init) => fetch(url, { ...init, body: 'meterlink,device=x power_w= 12' }),
    });
    const bad = await garbled.write([{ device: 'x', samples: makeSamples(1) }]);
    t.same([bad.rejected, bad.written], [1, 0]);
    t.match(bad.rejections?.[0], /unable to parse/);
  });
});

t.test('the none sink and the backoff', async (t) => {
  t.same(await noneSink.write([{ device: 'x', samples: makeSamples(2) }]), { written: 0, rejected: 0 });
  for (let i = 0; i < 20; i++) t.ok(backoffMs(i) <= 2_000);
});
