import t from 'tap';
import {
  EventKinds,
  batchTopic,
  detectPayloadType,
  encodeEvent,
  encodeHealth,
  eventTopic,
  healthTopic,
  isValidThingName,
  parseEvent,
  parseHealth,
  parseTopic,
  type EventV1,
  type HealthV1,
} from '../../cloud-contract/index.js';

t.test('topics: built in one place, parsed back, thing names validated', async (t) => {
  t.equal(batchTopic('apt-12'), 'meterlink/v1/apt-12/batch');
  t.equal(healthTopic('apt-12'), 'meterlink/v1/apt-12/health');
  t.equal(eventTopic('a:b_c-d'), 'meterlink/v1/a:b_c-d/event');
  t.equal(
    batchTopic('apt-12', { basicIngestRule: 'meterlink_ingest' }),
    '$aws/rules/meterlink_ingest/meterlink/v1/apt-12/batch',
  );
  t.same(parseTopic('meterlink/v1/apt-12/batch'), { thing: 'apt-12', kind: 'batch' });
  t.same(parseTopic('$aws/rules/r1/meterlink/v1/apt-12/batch'), {
    thing: 'apt-12',
    kind: 'batch',
    basicIngestRule: 'r1',
  });
  t.same(parseTopic('meterlink/v1/x/health'), { thing: 'x', kind: 'health' });
  for (const bad of [
    'meterlink/v1/apt 12/batch',
    'meterlink/v2/apt/batch',
    'meterlink/v1/apt/other',
    'meterlink/v1/apt/batch/extra',
    '$aws/rules/r-1/meterlink/v1/apt/batch',
    '$aws/rules/r/meterlink/v1/apt/health',
    '$aws/things/x/shadow/update',
    '',
    `meterlink/v1/${'x'.repeat(129)}/batch`,
  ])
    t.equal(parseTopic(bad), null, bad);
  t.throws(() => batchTopic('has/slash'), { code: 'BAD_THING_NAME' });
  t.throws(() => healthTopic('+'), { code: 'BAD_THING_NAME' });
  t.throws(() => batchTopic('ok', { basicIngestRule: 'bad-rule' }), { code: 'BAD_RULE_NAME' });
  t.ok(isValidThingName('x'.repeat(128)));
  t.notOk(isValidThingName(''));
  t.notOk(isValidThingName(42));
});

const health: HealthV1 = {
  v: 1,
  kind: 'health',
  device: 'apt-12',
  ts: 1_750_000_000_000,
  agent: { version: '0.1.0', uptimeS: 3600 },
  buffer: { depth: 10, bytes: 4096, oldestTs: null, droppedTotal: 0 },
  publisher: { connected: true, inFlight: 2, publishedTotal: 100, lastAckTs: 1_750_000_000_000 },
  clock: { synced: true, offsetMs: 3 },
  cert: { notAfter: '2026-01-01T00:00:00Z', daysLeft: 200 },
  meters: [{ id: 'main', ok: true, lastTs: 1_750_000_000_000, polls: 3600, failures: 1 }],
};

t.test('health messages: strict schema both ways', async (t) => {
  const bytes = encodeHealth(health);
  const back = parseHealth(bytes);
  t.ok(back.ok);
  if (back.ok) t.same(back.message, health);
  t.equal(detectPayloadType(bytes), 'health');
  t.throws(() => encodeHealth({ ...health, extra: 1 } as HealthV1), { code: 'BAD_MESSAGE' });
  const bad = [
    '{',
    JSON.stringify({ ...health, v: 2 }),
    JSON.stringify({ ...health, buffer: { ...health.buffer, depth: -1 } }),
    JSON.stringify({ ...health, device: 'a b' }),
    JSON.stringify({ ...health, sneaky: true }),
  ];
  for (const b of bad) {
    const r = parseHealth(b);
    t.ok(!r.ok && r.reason === 'BAD_JSON', r.ok ? 'accepted' : r.detail);
  }
  const big = parseHealth('{"a":"' + 'x'.repeat(20_000) + '"}');
  t.ok(!big.ok && big.reason === 'TOO_LARGE');
  const notUtf8 = parseHealth(new Uint8Array([0x7b, 0xff, 0x7d]));
  t.ok(!notUtf8.ok && notUtf8.reason === 'BAD_JSON');
});

t.test('event messages: every kind, with its data checked', async (t) => {
  const base = { v: 1, kind: 'event', device: 'apt-12', ts: 1_750_000_000_000, severity: 'warning' } as const;
  const data: Record<(typeof EventKinds)[number], unknown> = {
    agent_started: { version: '0.1.0' },
    meter_error: { meter: 'main', code: 'TIMEOUT', detail: 'no answer from unit 1' },
    meter_recovered: { meter: 'main', downMs: 5000, failedPolls: 5 },
    counter_reset: { meter: 'main', channel: 'energy_import_kwh', before: 12345.6, after: 0 },
    meter_swap: { meter: 'main', oldSerial: 'A1', newSerial: 'B2' },
    samples_dropped: { count: 10, firstSeq: 1, lastSeq: 10, reason: 'retention' },
    clock_synced: { offsetMs: 12_000, correctedSamples: 30 },
    clock_step: { stepMs: -3_600_000, source: 'ntp' },
    clock_unsynced: { source: 'kernel', unsyncedMs: 900_000, cause: 'no time daemon is running' },
    cert_expiring: { notAfter: '2026-01-01T00:00:00Z', daysLeft: 14 },
    buffer_corrupt_set_aside: { path: '/var/lib/meterlink/buffer.corrupt-1' },
    buffer_repaired: {
      path: '/var/lib/meterlink/buffer',
      action: 'repaired',
      count: 24,
      lost: [{ firstSeq: 134, lastSeq: 157 }],
      nextSeq: 158,
      exact: true,
    },
    publish_not_authorized: { topic: 'meterlink/v1/apt-12/batch', reasonCode: 135 },
  };
  let n = 0;
  for (const kind of EventKinds) {
    const e = { ...base, id: `boot1-${n++}`, event: kind, data: data[kind] } as EventV1;
    const bytes = encodeEvent(e);
    t.equal(detectPayloadType(bytes), 'event');
    const r = parseEvent(bytes);
    t.ok(r.ok, kind);
    if (r.ok) t.same(r.message, e);
    // the data of another kind is refused
    const wrong = parseEvent(JSON.stringify({ ...e, data: { nonsense: 1 } }));
    t.ok(!wrong.ok && wrong.reason === 'BAD_JSON', `${kind} with wrong data`);
  }
  t.throws(() => encodeEvent({ ...base, id: 'x', event: 'nope', data: {} } as unknown as EventV1), {
    code: 'BAD_MESSAGE',
  });
});
