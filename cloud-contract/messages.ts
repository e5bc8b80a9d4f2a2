/**
 * Health and event messages: small JSON documents (IoT rules can read JSON; these are rare and tiny, so
 * readability beats compactness). The TypeBox schemas are the single source of the TypeScript types, the
 * JSON Schemas (exported for the cloud side and editors) and the strict validators (no extra properties).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ContractError } from './errors.js';
import { type Rejection } from './reject.js';

/** JSON messages are small; anything bigger is refused before `JSON.parse`. */
export const MAX_JSON_MESSAGE_BYTES = 16 * 1024;

const Thing = Type.String({ pattern: '^[a-zA-Z0-9:_-]{1,128}$' });
const MeterId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' });
const Ms = Type.Integer({ minimum: 0, maximum: 2 ** 47, description: 'ms since the Unix epoch' });
const Count = Type.Integer({ minimum: 0 });
const Text = Type.String({ maxLength: 1024 });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const strict = { additionalProperties: false } as const;

export const HealthV1Schema = Type.Object(
  {
    v: Type.Literal(1),
    kind: Type.Literal('health'),
    device: Thing,
    ts: Ms,
    agent: Type.Object(
      {
        version: Type.String({ maxLength: 64 }),
        uptimeS: Type.Number({ minimum: 0 }),
        rssBytes: Type.Optional(Count),
      },
      strict,
    ),
    buffer: Type.Object(
      {
        /** Samples waiting for the cloud. */
        depth: Count,
        bytes: Count,
        oldestTs: Nullable(Ms),
        /** Samples dropped by the retention policy since the agent started. */
        droppedTotal: Count,
      },
      strict,
    ),
    publisher: Type.Object(
      {
        connected: Type.Boolean(),
        inFlight: Count,
        publishedTotal: Count,
        lastAckTs: Nullable(Ms),
        lastError: Type.Optional(Text),
      },
      strict,
    ),
    clock: Type.Object({ synced: Type.Boolean(), offsetMs: Type.Optional(Type.Number()) }, strict),
    cert: Type.Optional(
      Type.Object({ notAfter: Type.String({ maxLength: 40 }), daysLeft: Type.Number() }, strict),
    ),
    meters: Type.Array(
      Type.Object(
        {
          id: MeterId,
          ok: Type.Boolean(),
          lastTs: Nullable(Ms),
          polls: Count,
          failures: Count,
          lastError: Type.Optional(Text),
        },
        strict,
      ),
      { maxItems: 64 },
    ),
  },
  strict,
);
export type HealthV1 = Static<typeof HealthV1Schema>;

const common = {
  v: Type.Literal(1),
  kind: Type.Literal('event'),
  device: Thing,
  ts: Ms,
  /** Unique per device (e.g. `${bootId}-${n}`): duplicates of an at-least-once delivery are detectable. */
  id: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' }),
  severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('error')]),
  message: Type.Optional(Text),
};

function event<K extends string, D extends TSchema>(name: K, data: D) {
  return Type.Object({ ...common, event: Type.Literal(name), data }, strict);
}

const obj = <P extends Parameters<typeof Type.Object>[0]>(p: P, opts: { description?: string } = {}) =>
  Type.Object(p, { ...strict, ...opts });

/** At most this many lost ranges in one `buffer_repaired` event (keeps it far below the message limit). */
export const MAX_LOST_RANGES = 256;

export const EventKinds = [
  'agent_started',
  'meter_error',
  'meter_recovered',
  'counter_reset',
  'meter_swap',
  'samples_dropped',
  'clock_synced',
  'clock_step',
  'clock_unsynced',
  'cert_expiring',
  'buffer_corrupt_set_aside',
  'buffer_repaired',
  'publish_not_authorized',
] as const;
export type EventKind = (typeof EventKinds)[number];

export const EventV1Schema = Type.Union([
  event('agent_started', obj({ version: Type.String({ maxLength: 64 }), bootId: Type.Optional(Text) })),
  event(
    'meter_error',
    obj({ meter: MeterId, code: Type.String({ maxLength: 64 }), detail: Type.Optional(Text) }),
  ),
  event('meter_recovered', obj({ meter: MeterId, downMs: Count, failedPolls: Count })),
  event(
    'counter_reset',
    obj({
      meter: MeterId,
      channel: Type.String({ maxLength: 64 }),
      before: Type.Number(),
      after: Type.Number(),
    }),
  ),
  event('meter_swap', obj({ meter: MeterId, oldSerial: Text, newSerial: Text })),
  event(
    'samples_dropped',
    obj({
      count: Count,
      firstSeq: Count,
      lastSeq: Count,
      reason: Type.Union([Type.Literal('retention'), Type.Literal('disk_full'), Type.Literal('corrupt')]),
    }),
  ),
  event('clock_synced', obj({ offsetMs: Type.Number(), correctedSamples: Count })),
  event('clock_step', obj({ stepMs: Type.Number(), source: Type.String({ maxLength: 64 }) })),
  event('clock_unsynced', obj({ source: Type.String({ maxLength: 64 }), unsyncedMs: Count, cause: Text })),
  event('cert_expiring', obj({ notAfter: Type.String({ maxLength: 40 }), daysLeft: Type.Number() })),
  event('buffer_corrupt_set_aside', obj({ path: Text, entries: Type.Optional(Count) })),
  event(
    'buffer_repaired',
    obj(
      {
        path: Text,
        action: Type.Union([Type.Literal('repaired'), Type.Literal('set_aside')], {
          description: "'repaired': LevelDB's repair brought the store back; 'set_aside': moved to movedTo",
        }),
        movedTo: Type.Optional(Text),
        count: Type.Integer({ minimum: 0, description: 'samples lost: the sum of the lost ranges' }),
        lost: Type.Array(
          obj({ firstSeq: Type.Integer({ minimum: 1 }), lastSeq: Type.Integer({ minimum: 1 }) }),
          {
            maxItems: MAX_LOST_RANGES,
            description:
              'the lost sequence ranges, both ends inclusive, ascending; every seq in them was stored and ' +
              'is gone (none was acknowledged or dropped by retention)',
          },
        ),
        nextSeq: Type.Integer({ minimum: 1, description: 'the seq the next sample gets' }),
        exact: Type.Boolean({
          description:
            'false when what the store held was not known exactly (its ledger was missing or the ranges ' +
            'did not fit): count is then a lower bound and lost may be incomplete',
        }),
      },
      {
        description:
          'The buffer was damaged (e.g. after a power cut) and repaired or set aside: which stored samples ' +
          'were lost. Seqs go on from the highest ever used, so a gap in the data is explained by exactly ' +
          'these ranges.',
      },
    ),
  ),
  event('publish_not_authorized', obj({ topic: Text, reasonCode: Count })),
]);
export type EventV1 = Static<typeof EventV1Schema>;
/** The `data` of one event kind, e.g. `EventData<'meter_swap'>`. */
export type EventData<K extends EventKind> = Extract<EventV1, { event: K }>['data'];

export type ParseResult<T> = { ok: true; message: T } | Rejection;

function firstError(schema: TSchema, x: unknown): string {
  const e = Value.Errors(schema, x).First();
  return e === undefined ? 'invalid' : `${e.path || '/'}: ${e.message}`;
}

function encode<T>(schema: TSchema, x: T, what: string): Uint8Array {
  if (!Value.Check(schema, x))
    throw new ContractError('BAD_MESSAGE', `invalid ${what} message at ${firstError(schema, x)}`, {
      message: x,
    });
  const bytes = new TextEncoder().encode(JSON.stringify(x));
  if (bytes.length > MAX_JSON_MESSAGE_BYTES)
    throw new ContractError(
      'TOO_LARGE',
      `${what} message is ${bytes.length} bytes (limit ${MAX_JSON_MESSAGE_BYTES})`,
      {},
    );
  return bytes;
}

function parse<T>(schema: TSchema, input: Uint8Array | string, what: string): ParseResult<T> {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > MAX_JSON_MESSAGE_BYTES)
    return {
      ok: false,
      reason: 'TOO_LARGE',
      detail: `${what} message is ${size} bytes (limit ${MAX_JSON_MESSAGE_BYTES})`,
    };
  let x: unknown;
  try {
    x = JSON.parse(
      typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input),
    );
  } catch (err) {
    return { ok: false, reason: 'BAD_JSON', detail: `not JSON: ${(err as Error).message}` };
  }
  if (!Value.Check(schema, x))
    return { ok: false, reason: 'BAD_JSON', detail: `invalid ${what} message at ${firstError(schema, x)}` };
  return { ok: true, message: x as T };
}

/** Validates and serialises a health message; throws `ContractError('BAD_MESSAGE')` naming the bad field. */
export function encodeHealth(h: HealthV1): Uint8Array {
  return encode(HealthV1Schema, h, 'health');
}

export function encodeEvent(e: EventV1): Uint8Array {
  return encode(EventV1Schema, e, 'event');
}

/** Strictly parses a health message (untrusted input). Never throws. */
export function parseHealth(input: Uint8Array | string): ParseResult<HealthV1> {
  return parse<HealthV1>(HealthV1Schema, input, 'health');
}

export function parseEvent(input: Uint8Array | string): ParseResult<EventV1> {
  return parse<EventV1>(EventV1Schema, input, 'event');
}
