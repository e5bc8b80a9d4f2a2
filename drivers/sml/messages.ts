/**
 * SML messages (SML 1.04 §7): a file holds messages, each a list of 6 — transaction id, group, abort-on-error,
 * body (a list of tag and content), CRC, end-of-message. We read `SML_GetList.Res` (tag 0x0701), the list a
 * meter pushes on its info interface: the server id (the meter's identity) and the value list, each entry an
 * OBIS code, status, time, unit, scaler and value. Open/close responses and other messages are skipped.
 */
import { crc16x25 } from './crc.js';
import { SmlCursor, SmlSyntaxError, type SmlNode } from './tlv.js';

export const SML_GET_LIST_RES = 0x0701;

export interface SmlEntry {
  /** OBIS `A-B:C.D.E*F`. */
  readonly obis: string;
  /** DLMS unit code (27 W, 30 Wh, 33 A, 35 V, 44 Hz), if sent. */
  readonly unit?: number;
  readonly scaler: number;
  /** The value: an integer (exact, any width), an octet string, or a boolean. */
  readonly value: SmlNode;
  /** The status word, if sent. */
  readonly status?: bigint;
}

export interface SmlList {
  /** Server id (the meter's identity), hex. */
  readonly serverId?: string;
  readonly entries: readonly SmlEntry[];
}

export interface SmlMessageCrcMismatch {
  /** Message number in the file, from 0. */
  readonly index: number;
  readonly tag: number;
  /** CRC the message carries, and the CRC-16/X-25 of its bytes before the CRC field. */
  readonly got: number;
  readonly want: number;
}

export interface SmlMessages {
  /** Tags of every message, in order. */
  readonly tags: readonly number[];
  readonly lists: readonly SmlList[];
  /** Messages whose own CRC does not match (SML 1.04 §7.1: CRC16 over the message up to the CRC field). */
  readonly crcMismatches: readonly SmlMessageCrcMismatch[];
}

/**
 * The CRC a message must carry: CRC-16/X-25 of its bytes from the list TL up to the CRC field, as the
 * Unsigned16 the meters send (the checksum's low byte first: every vendor capture in the tests agrees).
 */
export function messageCrc(payload: Uint8Array, start: number, end: number): number {
  const c = crc16x25(payload, start, end);
  return ((c & 0xff) << 8) | (c >> 8);
}

const asInt = (n: SmlNode | undefined): bigint | undefined => (n?.t === 'int' ? n.v : undefined);

export function obisText(b: Buffer): string {
  if (b.length !== 6) return b.toString('hex');
  return `${b[0]}-${b[1]}:${b[2]}.${b[3]}.${b[4]}*${b[5]}`;
}

function listOf(n: SmlNode | undefined, size: number, what: string, at: number): readonly SmlNode[] {
  if (n?.t !== 'list' || n.v.length !== size)
    throw new SmlSyntaxError(`${what} is not a list of ${size}`, at);
  return n.v;
}

function entryOf(n: SmlNode, at: number): SmlEntry {
  const [name, status, , unit, scaler, value] = listOf(n, 7, 'value list entry', at);
  if (name?.t !== 'octets') throw new SmlSyntaxError('value list entry without an OBIS code', at);
  const u = asInt(unit);
  const s = asInt(scaler);
  const st = asInt(status);
  if (s !== undefined && (s < -128n || s > 127n)) throw new SmlSyntaxError('scaler out of range', at);
  return Object.assign(
    { obis: obisText(name.v), scaler: s === undefined ? 0 : Number(s), value: value as SmlNode },
    u === undefined ? {} : { unit: Number(u) },
    st === undefined ? {} : { status: st },
  );
}

/** Parses the payload of a transport file (`unpackFile`). Throws `SmlSyntaxError` on malformed data. */
export function parseMessages(payload: Buffer): SmlMessages {
  const c = new SmlCursor(payload);
  const tags: number[] = [];
  const lists: SmlList[] = [];
  const crcMismatches: SmlMessageCrcMismatch[] = [];
  while (c.pos < payload.length) {
    // Zero bytes between or after messages: trailing end-of-message markers and filler.
    if (payload[c.pos] === 0x00) {
      c.pos++;
      continue;
    }
    const at = c.pos;
    // A message is a list of 6 whose last element is the end-of-message byte 0x00 (not a TL element).
    if (payload[at] !== 0x76) throw new SmlSyntaxError('message is not a list of 6', at);
    c.pos++;
    const msg: SmlNode[] = [];
    for (let i = 0; i < 4; i++) msg.push(c.read());
    const crcAt = c.pos;
    msg.push(c.read());
    if (payload[c.pos] !== 0x00) throw new SmlSyntaxError('message without end-of-message', c.pos);
    c.pos++;
    const [tag, body] = listOf(msg[3], 2, 'message body', at);
    const t = asInt(tag);
    if (t === undefined) throw new SmlSyntaxError('message body without a tag', at);
    tags.push(Number(t));
    const crc = msg[4];
    if (crc?.t !== 'int' && crc?.t !== 'none')
      throw new SmlSyntaxError('message CRC is not an integer', crcAt);
    // An empty optional (0x01) instead of the CRC is tolerated as "not sent".
    if (crc.t === 'int') {
      const want = messageCrc(payload, at, crcAt);
      if (Number(crc.v) !== want)
        crcMismatches.push({ index: tags.length - 1, tag: Number(t), got: Number(crc.v), want });
    }
    if (Number(t) !== SML_GET_LIST_RES) continue;
    const res = listOf(body, 7, 'GetList.Res', at);
    const server = res[1];
    const vals = res[4];
    if (vals?.t !== 'list') throw new SmlSyntaxError('GetList.Res without a value list', at);
    const entries = vals.v.map((e) => entryOf(e, at));
    lists.push(server?.t === 'octets' ? { serverId: server.v.toString('hex'), entries } : { entries });
  }
  return { tags, lists, crcMismatches };
}
