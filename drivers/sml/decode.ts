/**
 * One SML file → a meter reading: transport checked (`unpackFile`), messages parsed (`parseMessages`),
 * GetList.Res entries mapped to canonical channels with exact integer values (mantissa = the meter's
 * integer, exponent = scaler + unit conversion). The server id becomes the meter serial (a change = a swap).
 */
import { intValue, type Value } from '../../cloud-contract/sample.js';
import { DriverError } from '../errors.js';
import { parseMessages, SML_GET_LIST_RES } from './messages.js';
import { smlObisMapping } from './obis-map.js';
import { SmlSyntaxError } from './tlv.js';
import { unpackFile } from './transport.js';

export interface SmlProblem {
  readonly obis: string;
  readonly channel: string;
  readonly reason: 'unit' | 'type' | 'range';
}

export interface SmlReadingData {
  readonly serial?: string;
  readonly values: Readonly<Record<string, Value>>;
  /** Entries that map to a channel but whose value could not be used (unit, type, beyond 2^53). */
  readonly problems: readonly SmlProblem[];
  /** Every OBIS code in the file (mapped or not). */
  readonly obis: readonly string[];
}

export type SmlDecodeResult = { ok: true; data: SmlReadingData } | { ok: false; error: DriverError };

export interface SmlDecodeOptions {
  /**
   * `check` (default): a message whose own CRC does not match rejects the file (`CRC`, reason
   * `message-crc`). `ignore`: rely on the file CRC alone — for meters whose firmware writes wrong message
   * CRCs while the transport CRC is right (the eBZ DD3 capture in the tests, SmlLib issue #8).
   */
  readonly messageCrc?: 'check' | 'ignore';
}

export function decodeSmlFile(file: Uint8Array, opts: SmlDecodeOptions = {}): SmlDecodeResult {
  const t = unpackFile(file);
  if (!t.ok) return t;
  let parsed;
  try {
    parsed = parseMessages(t.payload);
  } catch (err) {
    if (!(err instanceof SmlSyntaxError)) throw err;
    return {
      ok: false,
      error: new DriverError('BAD_FRAME', `SML message: ${err.message}`, {
        cause: err,
        context: { offset: err.offset },
      }),
    };
  }
  const bad = parsed.crcMismatches[0];
  if (bad && opts.messageCrc !== 'ignore')
    return {
      ok: false,
      error: new DriverError(
        'CRC',
        `SML message ${bad.index} (tag 0x${bad.tag.toString(16).padStart(4, '0')}) carries CRC 0x${bad.got.toString(16).padStart(4, '0')}, computed 0x${bad.want.toString(16).padStart(4, '0')} (the file CRC was right: set messageCrc: ignore for a meter that always does this)`,
        { context: { reason: 'message-crc', mismatches: parsed.crcMismatches } },
      ),
    };
  if (!parsed.tags.includes(SML_GET_LIST_RES) || parsed.lists.length === 0)
    return {
      ok: false,
      error: new DriverError('BAD_FRAME', 'SML file without a GetList.Res (no meter values)', {
        context: { tags: parsed.tags },
      }),
    };
  const values: Record<string, Value> = {};
  const problems: SmlProblem[] = [];
  const obis: string[] = [];
  let serial: string | undefined;
  for (const list of parsed.lists) {
    serial ??= list.serverId;
    for (const e of list.entries) {
      obis.push(e.obis);
      const map = smlObisMapping(e.obis);
      if (!map) continue;
      const problem = (reason: SmlProblem['reason']) =>
        problems.push({ obis: e.obis, channel: map.channel, reason });
      if (e.value.t !== 'int') {
        problem('type');
        continue;
      }
      if (e.unit !== undefined && e.unit !== map.unit) {
        problem('unit');
        continue;
      }
      if (e.value.v > BigInt(Number.MAX_SAFE_INTEGER) || e.value.v < BigInt(Number.MIN_SAFE_INTEGER)) {
        problem('range');
        continue;
      }
      values[map.channel] = intValue(Number(e.value.v), e.scaler + map.exponent);
    }
  }
  return {
    ok: true,
    data: serial === undefined ? { values, problems, obis } : { serial, values, problems, obis },
  };
}
