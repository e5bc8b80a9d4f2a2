/**
 * A DSMR P1 telegram, from its exact bytes to typed values on canonical channels.
 *
 * Layout (DSMR 4/5 §6.2; 2.2 §5): `/XXXZ Ident` CRLF, CRLF, data lines `OBIS(value)(value)…` CRLF, then
 * `!` followed by the CRC16 as four hex digits (none in DSMR 2.2/3) and CRLF. The CRC covers every byte from
 * `/` through `!`, so it is computed over the raw buffer, never over re-encoded text.
 */
import { channelByName } from '../../cloud-contract/channels.js';
import { intValue, type Value } from '../../cloud-contract/sample.js';
import { DriverError } from '../errors.js';
import { wireUnits } from '../wire-units.js';
import { crc16, crcHex } from './crc16.js';
import {
  OBIS_EMUCS_VERSION,
  OBIS_EQUIPMENT_ID,
  OBIS_TIMESTAMP,
  OBIS_VERSION,
  obisMapping,
  type ObisMapping,
} from './obis-map.js';
import { parseDsmrTime } from './time.js';

const SLASH = 0x2f;
const BANG = 0x21;

/** One data object of the telegram: its OBIS code and the contents of its `(…)` groups. */
export interface DsmrLine {
  readonly obis: string;
  readonly groups: readonly string[];
  /** 1-based line number in the telegram (the header is line 1). */
  readonly line: number;
}

/** A mapped OBIS line whose value could not be used (unexpected unit, not a number, out of range). */
export interface DsmrProblem {
  readonly channel: string;
  readonly obis: string;
  readonly line: number;
  readonly reason: 'unit' | 'number' | 'time';
  readonly text: string;
}

export interface DsmrTelegram {
  /** The identification line without the leading `/` (manufacturer, baud char, model). */
  readonly header: string;
  /** `1-3:0.2.8` (DSMR 4/5, Smarty) or `0-0:96.1.4` (e-MUCS); undefined for DSMR 2.2/3. */
  readonly version?: string;
  /** The CRC as sent and as computed; undefined for DSMR 2.2/3 telegrams, which carry none. */
  readonly crc?: { readonly sent: number; readonly computed: number };
  readonly lines: readonly DsmrLine[];
  /** Canonical channel → exact value (DSMR decimals kept: mantissa × 10^exponent). */
  readonly values: Readonly<Record<string, Value>>;
  /** Channels with their own capture time (gas, e-MUCS monthly peak), ms since the epoch. */
  readonly channelTimes: Readonly<Record<string, number>>;
  /** The meter's clock (0-0:1.0.0). */
  readonly meterTime?: number;
  /** Equipment identifier (0-0:96.1.1), hex-decoded when the meter sends it hex-encoded. */
  readonly serial?: string;
  readonly problems: readonly DsmrProblem[];
}

export type ParseResult =
  | { readonly ok: true; readonly telegram: DsmrTelegram }
  | { readonly ok: false; readonly error: DriverError };

export interface ParseOptions {
  /** Reject telegrams without a CRC (DSMR 4+ always sends one). Default false: DSMR 2.2/3 have none. */
  readonly requireCrc?: boolean;
}

/** Wire unit → canonical unit and the exponent shift: the units the DSMR specs use (not MWh, kV or Hz). */
const unitConversion = Object.fromEntries(
  ['kWh', 'Wh', 'kW', 'W', 'V', 'A', 'm3', 'kvarh', 'varh'].map((u) => [u, wireUnits[u]]),
) as typeof wireUnits;

const linePattern = /^(\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3})((?:\([^()]*\))+)$/;
const continuationPattern = /^((?:\([^()]*\))+)$/;
const numberPattern = /^(-?)(\d+)(?:\.(\d+))?$/;
const hexPattern = /^(?:[0-9A-Fa-f]{2})+$/;

function frameError(reason: string, message: string, raw: Buffer, extra: Record<string, unknown> = {}) {
  return new DriverError('BAD_FRAME', message, {
    context: { reason, ...extra, telegram: raw.toString('latin1') },
  });
}

function groupsOf(text: string): string[] {
  // The patterns above guarantee `(a)(b)…` with no nested parentheses.
  return text.slice(1, -1).split(')(');
}

/** Hex-encoded ASCII (DSMR 4+ equipment ids) → text; anything else is returned as sent. */
export function decodeHexText(text: string): string {
  if (!hexPattern.test(text)) return text;
  const decoded = Buffer.from(text, 'hex').toString('latin1');
  return /^[\x20-\x7e]+$/.test(decoded) ? decoded : text;
}

/**
 * A DSMR decimal `012345.678*kWh` → exact Value on the canonical unit: mantissa from the digits, the
 * exponent from the decimals and the unit (`00.193*kW` → 193 × 10^0 W).
 */
export function parseDsmrNumber(
  text: string,
  wantUnit: string,
  unitOverride?: string,
): { value: Value } | { reason: 'unit' | 'number' } {
  const star = text.indexOf('*');
  const num = star < 0 ? text : text.slice(0, star);
  const unit = star < 0 ? unitOverride : text.slice(star + 1);
  const m = numberPattern.exec(num);
  if (!m) return { reason: 'number' };
  const decimals = m[3] ?? '';
  const mantissa = Number((m[1] ?? '') + (m[2] ?? '') + decimals);
  if (!Number.isSafeInteger(mantissa)) return { reason: 'number' };
  let shift = 0;
  if (unit === undefined || unit === '') {
    // Counters and the tariff indicator carry no unit.
    if (wantUnit !== 'count' && wantUnit !== '1') return { reason: 'unit' };
  } else {
    const conv = unitConversion[unit];
    if (!conv || conv.unit !== wantUnit) return { reason: 'unit' };
    shift = conv.shift;
  }
  return { value: intValue(mantissa === 0 ? 0 : mantissa, shift - decimals.length) };
}

/** Aligns two exact values to the smaller exponent and adds them (`sign` −1 subtracts). Integer math. */
function addExact(a: Value, b: Value, sign: 1 | -1): Value | undefined {
  const e = Math.min(a.exponent, b.exponent);
  const ma = a.mantissa * 10 ** (a.exponent - e);
  const mb = b.mantissa * 10 ** (b.exponent - e);
  const sum = ma + sign * mb;
  return Number.isSafeInteger(sum) ? intValue(sum === 0 ? 0 : sum, e) : undefined;
}

/** Splits the telegram into lines, checking the frame and (when present) the CRC. */
function checkFrame(
  raw: Buffer,
  opts: ParseOptions,
): { ok: true; body: string; crc?: { sent: number; computed: number } } | { ok: false; error: DriverError } {
  if (raw.length === 0 || raw[0] !== SLASH)
    return { ok: false, error: frameError('no-start', 'DSMR telegram does not start with "/"', raw) };
  const bang = raw.lastIndexOf(BANG);
  if (bang < 0)
    return {
      ok: false,
      error: frameError('truncated', 'DSMR telegram is truncated: no "!" footer', raw, { bytes: raw.length }),
    };
  const footer = raw.subarray(bang + 1).toString('latin1');
  const fm = /^([0-9A-Fa-f]*)(\r?\n)?$/.exec(footer);
  const hex = fm?.[1] ?? '';
  if (!fm || (hex.length !== 0 && hex.length !== 4))
    return {
      ok: false,
      error: frameError(
        'truncated',
        `DSMR telegram footer "!${footer.trim()}" is not "!" + 4 hex digits`,
        raw,
      ),
    };
  const body = raw.subarray(0, bang).toString('latin1');
  if (hex.length === 0) {
    if (opts.requireCrc)
      return {
        ok: false,
        error: frameError('crc-missing', 'DSMR telegram has no CRC but this meter version sends one', raw),
      };
    return { ok: true, body };
  }
  const sent = parseInt(hex, 16);
  const computed = crc16(raw.subarray(0, bang + 1));
  if (sent !== computed)
    return {
      ok: false,
      error: new DriverError(
        'CRC',
        `DSMR telegram CRC mismatch: sent ${crcHex(sent)}, computed ${crcHex(computed)}`,
        { context: { expected: crcHex(sent), actual: crcHex(computed), telegram: raw.toString('latin1') } },
      ),
    };
  return { ok: true, body, crc: { sent, computed } };
}

/**
 * Parses one telegram, `/` through `!CRC` (trailing CRLF optional). Returns the typed telegram, or a coded
 * error: `CRC` (context `expected`/`actual`), `BAD_FRAME` with `context.reason` `no-start` | `truncated` |
 * `crc-missing` | `malformed-line` (with `context.line`, 1-based).
 */
export function parseTelegram(bytes: Buffer, opts: ParseOptions = {}): ParseResult {
  const frame = checkFrame(bytes, opts);
  if (!frame.ok) return frame;
  const rawLines = frame.body.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const header = (rawLines[0] ?? '').slice(1);
  const lines: DsmrLine[] = [];
  for (let i = 1; i < rawLines.length; i++) {
    const text = rawLines[i]!;
    if (text === '') continue;
    const lm = linePattern.exec(text);
    const prev = lines[lines.length - 1];
    if (lm) {
      lines.push({ obis: lm[1]!, groups: groupsOf(lm[2]!), line: i + 1 });
    } else if (prev && continuationPattern.test(text)) {
      // DSMR 2.2/3: the gas value of 0-n:24.3.0 follows on its own line, `(00000.000)`.
      lines[lines.length - 1] = { ...prev, groups: [...prev.groups, ...groupsOf(text)] };
    } else {
      return {
        ok: false,
        error: frameError('malformed-line', `DSMR telegram line ${i + 1} is malformed: "${text}"`, bytes, {
          line: i + 1,
          text,
        }),
      };
    }
  }
  return { ok: true, telegram: mapTelegram(header, lines, frame.crc) };
}

function mapTelegram(
  header: string,
  lines: readonly DsmrLine[],
  crc: { sent: number; computed: number } | undefined,
): DsmrTelegram {
  const values: Record<string, Value> = {};
  const channelTimes: Record<string, number> = {};
  const problems: DsmrProblem[] = [];
  let meterTime: number | undefined;
  let serial: string | undefined;
  let version: string | undefined;
  const mbusType = new Map<string, number>();
  for (const l of lines) {
    const mb = /^0-([1-4]):24\.1\.0$/.exec(l.obis);
    if (mb) mbusType.set(mb[1]!, Number(l.groups[0]));
  }

  const use = (map: ObisMapping, l: DsmrLine) => {
    if (map.mbusDeviceType !== undefined) {
      const type = mbusType.get(l.obis.charAt(2));
      if (type !== undefined && type !== map.mbusDeviceType) return; // a water or heat meter, not gas
      if (values[map.channel]) return; // the first gas meter wins
    }
    const def = channelByName(map.channel);
    const idx = map.valueGroup < 0 ? l.groups.length + map.valueGroup : map.valueGroup;
    const text = l.groups[idx] ?? '';
    const problem = (reason: DsmrProblem['reason']) =>
      problems.push({ channel: map.channel, obis: l.obis, line: l.line, reason, text: l.groups.join(')(') });
    if (!def) return;
    // DSMR 2.2/3 gas: the unit is its own group, `(0-1:24.2.1)(m3)`, before the value.
    const unitOverride = map.obis === '0-n:24.3.0' ? l.groups[5] : undefined;
    const parsed = parseDsmrNumber(text, def.unit, unitOverride);
    if (!('value' in parsed)) return problem(parsed.reason);
    if (map.timeGroup !== undefined) {
      const t = parseDsmrTime(l.groups[map.timeGroup] ?? '');
      if (t === undefined) return problem('time');
      channelTimes[map.channel] = t;
    }
    values[map.channel] = parsed.value;
  };

  for (const l of lines) {
    const first = l.groups[0] ?? '';
    if (l.obis === OBIS_TIMESTAMP) meterTime = parseDsmrTime(first);
    else if (l.obis === OBIS_EQUIPMENT_ID) serial = first === '' ? undefined : decodeHexText(first);
    else if (l.obis === OBIS_EMUCS_VERSION) version = first;
    else if (l.obis === OBIS_VERSION) version ??= first;
    const map = obisMapping(l.obis);
    if (map) use(map, l);
  }

  // Net power and total energy as the canonical channels expect them, derived exactly from the registers.
  const imp = values['power_import_w'];
  const exp = values['power_export_w'];
  if (imp && exp && !values['power_w']) {
    const net = addExact(imp, exp, -1);
    if (net) values['power_w'] = net;
  }
  // Per phase too: the same net channels (import positive) a Modbus or SML meter fills.
  for (const l of ['l1', 'l2', 'l3']) {
    const pi = values[`power_import_${l}_w`];
    const pe = values[`power_export_${l}_w`];
    if (pi && pe && !values[`power_${l}_w`]) {
      const net = addExact(pi, pe, -1);
      if (net) values[`power_${l}_w`] = net;
    }
  }
  for (const dir of ['import', 'export'] as const) {
    const t1 = values[`energy_${dir}_t1_kwh`];
    const t2 = values[`energy_${dir}_t2_kwh`];
    if (t1 && t2 && !values[`energy_${dir}_kwh`]) {
      const sum = addExact(t1, t2, 1);
      if (sum) values[`energy_${dir}_kwh`] = sum;
    }
  }

  const telegram: DsmrTelegram = { header, lines, values, channelTimes, problems };
  return Object.assign(
    telegram,
    version === undefined ? {} : { version },
    crc === undefined ? {} : { crc },
    meterTime === undefined ? {} : { meterTime },
    serial === undefined ? {} : { serial },
  );
}
