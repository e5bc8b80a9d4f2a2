/**
 * IEC 62056-21 data messages of a simulated meter: the apartment model's state (apartment-model.ts) written as
 * OBIS data lines `1-0:1.8.0*255(012345.678*kWh)` with fixed decimals, framed `STX … ! CR LF ETX BCC` (or bare,
 * as mode D push meters often send it). `iecSimValues` gives the exact mantissas the lines carry, so a test can
 * check a reading without parsing the text.
 */
import { intValue, type Value } from '../../cloud-contract/sample.js';
import { bcc, ETX, STX } from '../iec62056/protocol.js';
import type { ApartmentState } from './apartment-model.js';

/** Channel → [mantissa, exponent] as written on the wire (and as the reader must deliver it). */
export function iecSimValues(s: ApartmentState): Record<string, Value> {
  const [p1, p2, p3] = s.power.map((p) => Math.round(p)) as [number, number, number];
  const v = (x: number, e: number) => intValue(Math.round(x * 10 ** -e) || 0, e);
  return {
    energy_import_kwh: v(s.importKwh, -3),
    energy_export_kwh: v(s.exportKwh, -3),
    power_w: intValue(p1 + p2 + p3 || 0, 0),
    power_l1_w: intValue(p1 || 0, 0),
    power_l2_w: intValue(p2 || 0, 0),
    power_l3_w: intValue(p3 || 0, 0),
    voltage_l1_v: v(s.voltage[0], -1),
    voltage_l2_v: v(s.voltage[1], -1),
    voltage_l3_v: v(s.voltage[2], -1),
    current_l1_a: v(Math.abs(s.current[0]), -2),
    current_l2_a: v(Math.abs(s.current[1]), -2),
    current_l3_a: v(Math.abs(s.current[2]), -2),
    frequency_hz: v(s.frequency, -2),
  };
}

/** OBIS code, channel, unit, field width: one data line each. */
const lines = `
  1.8.0 energy_import_kwh kWh 10 | 2.8.0 energy_export_kwh kWh 10 | 16.7.0 power_w W 6
  36.7.0 power_l1_w W 6 | 56.7.0 power_l2_w W 6 | 76.7.0 power_l3_w W 6
  32.7.0 voltage_l1_v V 5 | 52.7.0 voltage_l2_v V 5 | 72.7.0 voltage_l3_v V 5
  31.7.0 current_l1_a A 6 | 51.7.0 current_l2_a A 6 | 71.7.0 current_l3_a A 6 | 14.7.0 frequency_hz Hz 5`
  .split(/[|\n]/)
  .map((l) => l.trim().split(' '))
  .filter((f) => f.length === 4)
  .map(
    ([code, channel, unit, width]) =>
      [code as string, channel as string, unit as string, Number(width)] as const,
  );

/** A mantissa/exponent as fixed-point text, zero-padded to `width` characters (sign included). */
function fixed(v: Value, width: number): string {
  const neg = v.mantissa < 0;
  const digits = String(Math.abs(v.mantissa)).padStart(-v.exponent + 1, '0');
  const text = v.exponent < 0 ? `${digits.slice(0, v.exponent)}.${digits.slice(v.exponent)}` : digits;
  return (neg ? '-' : '') + text.padStart(width - (neg ? 1 : 0), '0');
}

/** The data block (lines and the end `!` CR LF) of one reading. */
export function renderIecBlock(s: ApartmentState, opts: { serial: string; errorRegister?: string }): string {
  const values = iecSimValues(s);
  const out = [`0-0:96.1.0*255(${opts.serial})`, `1-0:0.0.0*255(${opts.serial})`];
  for (const [code, channel, unit, width] of lines)
    out.push(`1-0:${code}*255(${fixed(values[channel] as Value, width)}*${unit})`);
  out.push(`1-0:1.6.0*255(${fixed(values['power_l1_w'] as Value, 6)}*W)(2406011230)`);
  out.push(`F.F(${opts.errorRegister ?? '00000000'})`);
  return `${out.join('\r\n')}\r\n!\r\n`;
}

/** `STX block ETX BCC`. */
export function frameIecBlock(block: string): Buffer {
  const body = Buffer.concat([Buffer.from(block, 'latin1'), Buffer.from([ETX])]);
  return Buffer.concat([Buffer.from([STX]), body, Buffer.from([bcc(body)])]);
}
