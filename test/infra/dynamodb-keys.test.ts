/**
 * The DynamoDB hot store's keys against the write limits (infra-cfn/lambda/sinks/dynamodb.ts): item sizes of
 * the sink's real items, a box's backlog drain at IoT Core's per-connection pace, and 10,000 boxes live, in
 * write units per second per partition key (a partition serves 1,000) and per table (a new on-demand table
 * serves 4,000 until it scales; the template pre-warms it; the default table quota is 40,000). The figures
 * print as `RESULT {json}` and stand in infra-cfn/README.md.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Sample } from '../../cloud-contract/sample.js';
import { createBatchEncoder } from '../../agent/publisher/batch-encoder.js';
import { readings } from '../../bench/lib/week.js';
import { carloGavazziEm340 } from '../../drivers/profiles/carlo-gavazzi-em340.js';
import { eastronSdm630 } from '../../drivers/profiles/eastron-sdm630.js';
import { SHARDS, sampleItem, sampleKey, shardOf } from '../../infra-cfn/lambda/sinks/dynamodb.js';
import { repoRoot } from '../harness/cli.js';
import { issueCert, makeCa } from '../harness/pki.js';

/**
 * DynamoDB's item size (Developer Guide, "Item sizes and formats"): attribute names count as their UTF-8
 * bytes; a string its UTF-8 bytes; a number 1 byte per two significant digits + 1; a map or list 3 bytes +
 * 1 byte per element + the elements.
 */
function attributeBytes(v: AttributeValue): number {
  if (v.S !== undefined) return Buffer.byteLength(v.S);
  if (v.N !== undefined) {
    const digits = v.N.replace(/^-/, '')
      .replace(/e.*$/i, '')
      .replace('.', '')
      .replace(/^0+/, '')
      .replace(/0+$/, '');
    return Math.ceil(Math.max(1, digits.length) / 2) + 1;
  }
  if (v.M !== undefined)
    return 3 + Object.entries(v.M).reduce((n, [k, x]) => n + 1 + Buffer.byteLength(k) + attributeBytes(x), 0);
  if (v.L !== undefined) return 3 + v.L.reduce((n, x) => n + 1 + attributeBytes(x), 0);
  throw new Error(`attribute type not sized here: ${JSON.stringify(v)}`);
}
const itemBytes = (item: Record<string, AttributeValue>) =>
  Object.entries(item).reduce((n, [k, v]) => n + Buffer.byteLength(k) + attributeBytes(v), 0);
const itemWcu = (item: Record<string, AttributeValue>) => Math.ceil(itemBytes(item) / 1024);

/** IoT Core's per-connection limits: what bounds one box's backlog drain. */
const IOT_BYTES_PER_S = 512 * 1024;
const IOT_PUBLISHES_PER_S = 100;
/** A partition serves at most 1,000 write units per second. */
const PARTITION_WCU = 1_000;
/** A new on-demand table serves 4,000 write units/s until it scales; a table's default on-demand quota is 40,000. */
const NEW_TABLE_WRU = 4_000;
const TABLE_QUOTA_WRU = 40_000;
const FLEET = 10_000;
/** The sink's writes per call, and the fastest round trip credited to DynamoDB (it answers in a few ms). */
const SINK_ITEMS_PER_CALL = 25;
const MIN_WRITE_RTT_MS = 2;

t.test('DynamoDB keys: per-partition-key write rates of a backlog drain and of the fleet', async (t) => {
  const ca = await makeCa();
  const dev = await issueCert(ca, { cn: 'apt-drain' });
  const template = await readFile(join(repoRoot, 'infra-cfn/templates/hot-store.yaml'), 'utf8');
  const warm = Number(/WriteUnitsPerSecond:\s*(\d+)/.exec(template)?.[1]);
  t.ok(warm > 0, `the table is pre-warmed to ${warm} write units/s`);
  const figures: Record<string, unknown>[] = [];
  for (const profile of [eastronSdm630, carloGavazziEm340]) {
    // A backlog drain: the agent's encoder cuts full batches; IoT Core's limits set the pace.
    const t0 = Date.UTC(2025, 5, 3, 23, 0);
    const read = [...readings(profile, 20_000, t0)].map((x, i) => ({ ...x, seq: 7_000_001 + i }));
    const encode = createBatchEncoder({ device: 'apt-drain', privateKey: dev.keyPem, certDer: dev.certDer });
    const batch = await encode(read, 128_000);
    const bytesPerSample = batch.payload.length / batch.count;
    const drainPerS = Math.floor(
      Math.min(IOT_BYTES_PER_S / bytesPerSample, IOT_PUBLISHES_PER_S * batch.count),
    );
    // What the ingest Lambda can write for one box: 25-item BatchWriteItem calls one after another.
    const sinkPerS = SINK_ITEMS_PER_CALL * (1000 / MIN_WRITE_RTT_MS);
    // A drain longer than the readings made: they repeat, with the time and numbers running on.
    const samples: Sample[] = Array.from({ length: Math.ceil(drainPerS * 1.5) }, (_, i) => ({
      ...(read[i % read.length] as Sample),
      ts: t0 + i * 1000,
      seq: 7_000_001 + i,
    }));
    const wcu = samples.map((x) => itemWcu(sampleItem('apt-drain', x, 90)));
    // Every one-second window of the drain (consecutive samples, as the buffer sends them): WCU per key.
    let worstKey = 0;
    let worstSecond = 0;
    for (let i = 0; i + drainPerS <= samples.length; i += Math.floor(drainPerS / 4)) {
      const perKey = new Map<string, number>();
      let total = 0;
      for (let j = i; j < i + drainPerS; j++) {
        const x = samples[j] as Sample;
        const pk = sampleKey('apt-drain', x).pk;
        perKey.set(pk, (perKey.get(pk) ?? 0) + (wcu[j] as number));
        total += wcu[j] as number;
      }
      worstKey = Math.max(worstKey, ...perKey.values());
      worstSecond = Math.max(worstSecond, total);
    }
    const liveWcu = Math.max(...wcu);
    const fleetLive = FLEET * liveWcu;
    const sinkDrain = Math.min(drainPerS, sinkPerS) * liveWcu;
    figures.push({
      profile: profile.name,
      bytesPerSample: Number(bytesPerSample.toFixed(1)),
      drainSamplesPerS: drainPerS,
      itemBytes: Math.max(...samples.map((x) => itemBytes(sampleItem('apt-drain', x, 90)))),
      wcuPerItem: liveWcu,
      drainWcuPerS: worstSecond,
      drainWcuPerKey: worstKey,
      sinkBoundDrainWcuPerS: sinkDrain,
      fleetLiveWcuPerS: fleetLive,
      fleetLiveWcuPerKey: liveWcu,
    });
    t.ok(
      worstSecond > PARTITION_WCU,
      `${profile.name}: a drain (${worstSecond} WCU/s) would overrun one key`,
    );
    t.ok(
      worstKey < PARTITION_WCU,
      `${profile.name}: the drain's busiest key takes ${worstKey} WCU/s < 1,000`,
    );
    t.ok(fleetLive > NEW_TABLE_WRU, `${FLEET} boxes live (${fleetLive} WRU/s) exceed a new table's 4,000`);
    t.ok(
      fleetLive + sinkDrain <= warm && warm <= TABLE_QUOTA_WRU,
      `${profile.name}: ${FLEET} boxes live (${fleetLive} WRU/s) + one drain as the sink writes it (${sinkDrain}) ≤ warm throughput ${warm} ≤ the ${TABLE_QUOTA_WRU} table quota`,
    );
  }
  t.comment(`RESULT ${JSON.stringify(figures)}`);
});

t.test('shards: consecutive and strided sequence numbers spread evenly', async (t) => {
  for (const stride of [1, 2, 3, 4, 8]) {
    const counts = new Array<number>(SHARDS).fill(0);
    for (let i = 0; i < 64_000; i++) (counts[shardOf(2 ** 33 + 17 + i * stride)] as number)++;
    const mean = 64_000 / SHARDS;
    t.ok(
      Math.max(...counts) < mean * 1.35 && Math.min(...counts) > mean * 0.65,
      `stride ${stride} (a box with ${stride} meters): ${Math.min(...counts)}–${Math.max(...counts)} per shard`,
    );
  }
});
