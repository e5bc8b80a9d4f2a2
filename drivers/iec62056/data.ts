/**
 * IEC 62056-21 data messages: BCC check, data lines `address(value*unit)(…)` (several data sets on a line,
 * several values per data set, continuation lines `(…)`), and the mapping of OBIS addresses to canonical
 * channels, with exact values (digits → mantissa, decimals and unit → exponent; no float math).
 */
import { intValue, QualityFlag, type Value } from '../../cloud-contract/sample.js';
import { DriverError } from '../errors.js';
import { wireUnit } from '../wire-units.js';
import type { MeterReading } from '../reader.js';
import { bcc, ETX, STX } from './protocol.js';

export interface IecDataSet {
  /** The address as sent (`1-0:1.8.0*255`, `1.8.0`, `C.1.0`, `F.F`; empty on a continuation line). */
  readonly address: string;
  /** Each bracket's content split at the first `*`: value and unit (undefined without `*`). */
  readonly values: readonly { readonly value: string; readonly unit?: string }[];
}

export type IecDataResult =
  | { readonly ok: true; readonly sets: readonly IecDataSet[] }
  | { readonly ok: false; readonly error: DriverError };

function bad(reason: string, message: string, raw: Buffer, extra: Record<string, unknown> = {}) {
  return {
    ok: false as const,
    error: new DriverError('BAD_FRAME', message, {
      context: { reason, ...extra, message: raw.toString('latin1').slice(0, 2000) },
    }),
  };
}

const setPattern = /([^()\s]*)((?:\([^()]*\))+)/y;

/**
 * Checks and splits a data message (as the framer cut it). `STX … ! CR LF ETX BCC` must carry the right BCC
 * (`CRC` error otherwise); a bare push block has none to check.
 */
export function parseDataMessage(raw: Buffer, opts: { requireBcc?: boolean } = {}): IecDataResult {
  let text: string;
  if (raw[0] === STX) {
    const etx = raw.length - 2;
    if (raw.length < 4 || raw[etx] !== ETX)
      return bad('truncated', 'IEC 62056-21 data message does not end in ETX BCC', raw);
    const want = bcc(raw.subarray(1, etx + 1));
    const got = raw[etx + 1] as number;
    if (want !== got)
      return {
        ok: false,
        error: new DriverError(
          'CRC',
          `IEC 62056-21 data message BCC 0x${got.toString(16).padStart(2, '0')}, computed 0x${want.toString(16).padStart(2, '0')}`,
          { context: { reason: 'bcc', got, want, message: raw.toString('latin1').slice(0, 2000) } },
        ),
      };
    text = raw.subarray(1, etx).toString('latin1');
  } else {
    if (opts.requireBcc)
      return bad('no-bcc', 'IEC 62056-21 data message without STX/ETX/BCC where one is required', raw);
    text = raw.toString('latin1');
  }
  if (/[^\x20-\x7e\r\n]/.test(text))
    return bad('noise', 'IEC 62056-21 data block holds non-ASCII bytes', raw);
  // Readout data blocks end in `!` CR LF; answers to a single register read (programming mode) need not.
  // A `!` glued to the last data line (`6.31(0109868*h)!`, Kamstrup) ends the block too.
  const lines = text.replace(/\)!\r\n$/, ')\r\n!\r\n').split('\r\n');
  const endAt = lines.lastIndexOf('!');
  if (raw[0] !== STX && endAt < 0)
    return bad('truncated', 'IEC 62056-21 data block without its end `!`', raw);
  const body = endAt < 0 ? lines : lines.slice(0, endAt);
  const rest = endAt < 0 ? [] : lines.slice(endAt + 1);
  if (rest.some((l) => l !== '')) return bad('line', 'IEC 62056-21 data after the end `!` of the block', raw);
  const sets: IecDataSet[] = [];
  for (const [i, line] of body.entries()) {
    if (line === '') continue;
    const l = line;
    setPattern.lastIndex = 0;
    let at = 0;
    while (at < l.length) {
      setPattern.lastIndex = at;
      const m = setPattern.exec(l);
      if (!m)
        return bad(
          'line',
          `IEC 62056-21 data line ${i + 1} is not address(value): ${JSON.stringify(line)}`,
          raw,
          { line: i + 1 },
        );
      at = setPattern.lastIndex;
      const groups = (m[2] as string).slice(1, -1).split(')(');
      sets.push({
        address: m[1] as string,
        values: groups.map((g) => {
          const star = g.indexOf('*');
          return star < 0 ? { value: g } : { value: g.slice(0, star), unit: g.slice(star + 1) };
        }),
      });
    }
  }
  return { ok: true, sets };
}

/** Letter codes of value group C/D (IEC 62056-61): C = 96, F = 97, L = 98, P = 99. */
const letter: Readonly<Record<string, string>> = { C: '96', F: '97', L: '98', P: '99' };

/**
 * `A-B:C.D.E*F`, `C.D.E`, `C.D` (E = 0) or letter codes → `{ medium: A, channel: B, cde: 'C.D.E' }`.
 * `F.F` is the error register 97.97.0.
 */
export function normalizeAddress(
  address: string,
): { medium?: number; channel?: number; cde: string } | undefined {
  const m =
    /^(?:(\d{1,3})-(\d{1,3}):)?([0-9CFLP]{1,3})\.([0-9CFLP]{1,3})(?:\.(\d{1,3}))?(?:[*&](\d{1,3}))?$/.exec(
      address,
    );
  if (!m) return undefined;
  const part = (p: string) => letter[p] ?? String(Number(p));
  if (!/^\d+$/.test(part(m[3] as string)) || !/^\d+$/.test(part(m[4] as string))) return undefined;
  const cde = `${part(m[3] as string)}.${part(m[4] as string)}.${Number(m[5] ?? 0)}`;
  // F other than 255: a billing-period (history) value, not the current one.
  if (m[6] !== undefined && Number(m[6]) !== 255) return { cde: `${cde}*${Number(m[6])}` };
  return m[1] === undefined ? { cde } : { medium: Number(m[1]), channel: Number(m[2]), cde };
}

export interface IecObisMapping {
  readonly code: string;
  readonly channel: string;
  /** Canonical unit of the channel. */
  readonly unit: 'kWh' | 'W' | 'V' | 'A' | 'Hz' | 'kvarh';
}

const m = (code: string, channel: string, unit: IecObisMapping['unit']): IecObisMapping =>
  Object.freeze({ code, channel, unit });

/**
 * Electricity OBIS codes (C.D.E) we keep. Import/export power registers as DSMR names them; signed net power
 * 16.7.0 and 36/56/76.7.0 as SML and Modbus meters fill them; EasyMeter's signed `x.7.255` registers are net
 * power too. Net and total channels missing from the block are derived exactly (see `iecToValues`).
 */
export const iecObisMap: readonly IecObisMapping[] = Object.freeze([
  m('1.8.0', 'energy_import_kwh', 'kWh'),
  m('1.8.1', 'energy_import_t1_kwh', 'kWh'),
  m('1.8.2', 'energy_import_t2_kwh', 'kWh'),
  m('2.8.0', 'energy_export_kwh', 'kWh'),
  m('2.8.1', 'energy_export_t1_kwh', 'kWh'),
  m('2.8.2', 'energy_export_t2_kwh', 'kWh'),
  m('3.8.0', 'energy_reactive_import_kvarh', 'kvarh'),
  m('4.8.0', 'energy_reactive_export_kvarh', 'kvarh'),
  m('16.7.0', 'power_w', 'W'),
  m('1.7.255', 'power_w', 'W'),
  m('36.7.0', 'power_l1_w', 'W'),
  m('56.7.0', 'power_l2_w', 'W'),
  m('76.7.0', 'power_l3_w', 'W'),
  m('21.7.255', 'power_l1_w', 'W'),
  m('41.7.255', 'power_l2_w', 'W'),
  m('61.7.255', 'power_l3_w', 'W'),
  m('1.7.0', 'power_import_w', 'W'),
  m('2.7.0', 'power_export_w', 'W'),
  m('21.7.0', 'power_import_l1_w', 'W'),
  m('41.7.0', 'power_import_l2_w', 'W'),
  m('61.7.0', 'power_import_l3_w', 'W'),
  m('22.7.0', 'power_export_l1_w', 'W'),
  m('42.7.0', 'power_export_l2_w', 'W'),
  m('62.7.0', 'power_export_l3_w', 'W'),
  m('32.7.0', 'voltage_l1_v', 'V'),
  m('52.7.0', 'voltage_l2_v', 'V'),
  m('72.7.0', 'voltage_l3_v', 'V'),
  m('31.7.0', 'current_l1_a', 'A'),
  m('51.7.0', 'current_l2_a', 'A'),
  m('71.7.0', 'current_l3_a', 'A'),
  m('14.7.0', 'frequency_hz', 'Hz'),
]);

const byCode = new Map(iecObisMap.map((e) => [e.code, e]));

/** The mapping of an address (electricity, medium 1 or no medium given), if we keep it. */
export function iecObisMapping(address: string): IecObisMapping | undefined {
  const a = normalizeAddress(address);
  return a && (a.medium === undefined || a.medium === 1) ? byCode.get(a.cde) : undefined;
}

/**
 * `-000073.69` with unit `W` → exact Value in `want`. No unit: the value is taken in the channel's unit
 * (push meters such as the Hager eHZ send `1.8.0(000001.2963)`, kWh by convention).
 */
export function parseIecNumber(
  value: string,
  unit: string | undefined,
  want: IecObisMapping['unit'],
): { value: Value } | { reason: 'unit' | 'number' } {
  const n = /^([+-]?)(\d{1,18})(?:\.(\d{1,18}))?$/.exec(value);
  if (!n) return { reason: 'number' };
  const decimals = n[3] ?? '';
  const mantissa = Number(`${n[1] === '-' ? '-' : ''}${n[2]}${decimals}`);
  if (!Number.isSafeInteger(mantissa)) return { reason: 'number' };
  let shift = 0;
  if (unit !== undefined && unit !== '') {
    const u = wireUnit(unit);
    if (!u || u.unit !== want) return { reason: 'unit' };
    shift = u.shift;
  }
  return { value: intValue(mantissa === 0 ? 0 : mantissa, shift - decimals.length) };
}

/** Aligns two exact values to the smaller exponent and adds them (`sign` −1 subtracts). Integer math. */
function addExact(a: Value, b: Value, sign: 1 | -1): Value | undefined {
  const e = Math.min(a.exponent, b.exponent);
  const sum = a.mantissa * 10 ** (a.exponent - e) + sign * b.mantissa * 10 ** (b.exponent - e);
  return Number.isSafeInteger(sum) ? intValue(sum === 0 ? 0 : sum, e) : undefined;
}

export interface IecProblem {
  readonly address: string;
  readonly channel: string;
  readonly reason: 'unit' | 'number';
  readonly text: string;
}

export interface IecReadingData {
  readonly values: Record<string, Value>;
  readonly problems: readonly IecProblem[];
  /** Serial: 96.1.0 (also written C.1.0, or 96.1.255 by EasyMeter/Hager), else 0.0.0. */
  readonly serial?: string;
  /** The error register F.F (97.97.0) when it is not all zeros. */
  readonly errorRegister?: string;
}

/** Data sets → channel values, the serial and the error register. */
export function iecToValues(sets: readonly IecDataSet[]): IecReadingData {
  const values: Record<string, Value> = {};
  const problems: IecProblem[] = [];
  let serial96: string | undefined;
  let serial0: string | undefined;
  let errorRegister: string | undefined;
  for (const s of sets) {
    const raw = s.values[0];
    if (!raw) continue;
    // Values are right-aligned in fixed-width fields by some meters: `0.0(          120858)`, `( 001.67*kW)`.
    const first = { value: raw.value.trim(), unit: raw.unit?.trim() };
    const a = normalizeAddress(s.address);
    if (a?.cde === '97.97.0') {
      if (!/^0*$/.test(first.value)) errorRegister = first.value;
      continue;
    }
    // The meter's own serial (A 0 or 1, channel B 0); `0-1:96.1.0` would be an M-Bus device behind it.
    const own =
      a !== undefined && (a.medium === undefined || a.medium === 1 || (a.medium === 0 && a.channel === 0));
    if (own && (a.cde === '96.1.0' || a.cde === '96.1.255') && first.value !== '') serial96 ??= first.value;
    if (own && a.cde === '0.0.0' && first.value !== '') serial0 ??= first.value;
    const map = iecObisMapping(s.address);
    if (!map || map.channel in values) continue;
    const parsed = parseIecNumber(first.value, first.unit, map.unit);
    if ('reason' in parsed)
      problems.push({
        address: s.address,
        channel: map.channel,
        reason: parsed.reason,
        text: first.unit === undefined ? first.value : `${first.value}*${first.unit}`,
      });
    else values[map.channel] = parsed.value;
  }
  const derive = (to: string, a: string, b: string, sign: 1 | -1) => {
    const va = values[a];
    const vb = values[b];
    if (va && vb && !(to in values)) {
      const r = addExact(va, vb, sign);
      if (r) values[to] = r;
    }
  };
  derive('power_w', 'power_import_w', 'power_export_w', -1);
  for (const l of ['l1', 'l2', 'l3'])
    derive(`power_${l}_w`, `power_import_${l}_w`, `power_export_${l}_w`, -1);
  derive('energy_import_kwh', 'energy_import_t1_kwh', 'energy_import_t2_kwh', 1);
  derive('energy_export_kwh', 'energy_export_t1_kwh', 'energy_export_t2_kwh', 1);
  const serial = serial96 ?? serial0;
  return Object.assign(
    { values, problems },
    serial === undefined ? {} : { serial },
    errorRegister === undefined ? {} : { errorRegister },
  );
}

/** Decoded data → a reading: unusable values are `partial` + `outOfRange`, a set error register `meterError`. */
export function iecToReading(d: IecReadingData): MeterReading {
  const errors = d.problems.map(
    (p) =>
      new DriverError(
        'BAD_FRAME',
        `IEC 62056-21 ${p.address} (${p.channel}) has an unusable value "${p.text}"`,
        {
          context: { ...p },
        },
      ),
  );
  if (d.errorRegister !== undefined)
    errors.push(
      new DriverError('BAD_FRAME', `meter error register F.F is ${d.errorRegister}`, {
        context: { reason: 'error-register', errorRegister: d.errorRegister },
      }),
    );
  const missing = [...new Set(d.problems.map((p) => p.channel))];
  const flags =
    (missing.length > 0 ? QualityFlag.partial | QualityFlag.outOfRange : 0) |
    (d.errorRegister !== undefined ? QualityFlag.meterError : 0);
  const reading: MeterReading = { values: d.values, flags, missing, errors };
  return d.serial === undefined ? reading : { ...reading, serial: d.serial };
}
