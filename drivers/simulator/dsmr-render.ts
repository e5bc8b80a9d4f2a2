/**
 * Writes a DSMR telegram for a model snapshot, byte for byte the way the meter of each flavour does, with
 * the CRC computed over the exact bytes `/` … `!`. Flavours: DSMR 2.2 (no CRC, two-line gas record),
 * DSMR 4.2, DSMR 5.0.2, and the Belgian e-MUCS (ESMR 5 with demand registers and gas as 24.2.3).
 */
import { crc16, crcHex } from '../dsmr/crc16.js';
import { formatDsmrTime } from '../dsmr/time.js';
import type { DsmrSnapshot } from './dsmr-model.js';

export type DsmrFlavour = '2.2' | '4' | '5' | 'e-mucs';

export const dsmrFlavours: readonly DsmrFlavour[] = ['2.2', '4', '5', 'e-mucs'];

export interface RenderOptions {
  /** Equipment identifier, sent hex-encoded (DSMR 4+) in 0-0:96.1.1. */
  readonly serial?: string;
  readonly gasSerial?: string;
}

/** An integer in the smallest unit as a fixed-width DSMR decimal: `fixed(1193, 2, 3)` → `01.193`. */
export function fixed(value: number, intDigits: number, decimals: number): string {
  const digits = String(Math.abs(Math.round(value))).padStart(intDigits + decimals, '0');
  const body = decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
  return value < 0 ? `-${body}` : body;
}

const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex').toUpperCase();
const count = (n: number) => String(n).padStart(5, '0');

function lines(f: DsmrFlavour, s: DsmrSnapshot, o: Required<RenderOptions>): string[] {
  const ts = formatDsmrTime(s.time);
  const kw = (w: number) => `${fixed(w, 2, 3)}*kW`;
  const kwh = (wh: number) => `${fixed(wh, 6, 3)}*kWh`;
  if (f === '2.2') {
    // DSMR 2.2 §5: kW with two decimals (10 W resolution), kWh as 5.3, gas in a 24.3.0 record whose value
    // is on the next line, timestamps without the S/W suffix.
    const kw2 = (w: number) => `${fixed(w / 10, 4, 2)}*kW`;
    const kwh5 = (wh: number) => `${fixed(wh, 5, 3)}*kWh`;
    return [
      '/MLS5\\ML22-SIM',
      '',
      `0-0:96.1.1(${hex(o.serial)})`,
      `1-0:1.8.1(${kwh5(s.importWh[0])})`,
      `1-0:1.8.2(${kwh5(s.importWh[1])})`,
      `1-0:2.8.1(${kwh5(s.exportWh[0])})`,
      `1-0:2.8.2(${kwh5(s.exportWh[1])})`,
      `0-0:96.14.0(000${s.tariff})`,
      `1-0:1.7.0(${kw2(s.totalImportW)})`,
      `1-0:2.7.0(${kw2(s.totalExportW)})`,
      '0-0:17.0.0(0999.00*kW)',
      '0-0:96.3.10(1)',
      '0-0:96.13.1()',
      '0-0:96.13.0()',
      `0-1:96.1.0(${hex(o.gasSerial)})`,
      `0-1:24.3.0(${formatDsmrTime(s.gasTime, false)})(00)(60)(1)(0-1:24.2.1)(m3)`,
      `(${fixed(s.gasL, 5, 3)})`,
      '0-1:24.4.0(1)',
    ];
  }
  const common = [
    `1-0:1.8.1(${kwh(s.importWh[0])})`,
    `1-0:1.8.2(${kwh(s.importWh[1])})`,
    `1-0:2.8.1(${kwh(s.exportWh[0])})`,
    `1-0:2.8.2(${kwh(s.exportWh[1])})`,
    `0-0:96.14.0(000${s.tariff})`,
  ];
  const power = [`1-0:1.7.0(${kw(s.totalImportW)})`, `1-0:2.7.0(${kw(s.totalExportW)})`];
  const events = [
    `0-0:96.7.21(${count(s.powerFailures)})`,
    `0-0:96.7.9(${count(s.longPowerFailures)})`,
    '1-0:99.97.0(1)(0-0:96.7.19)(200117065912W)(0000009606*s)',
    ...s.sags.map((n, i) => `1-0:${32 + 20 * i}.32.0(${count(n)})`),
    ...s.swells.map((n, i) => `1-0:${32 + 20 * i}.36.0(${count(n)})`),
  ];
  const phases = (currentDecimals: 0 | 2) => [
    ...s.voltageDv.map((v, i) => `1-0:${32 + 20 * i}.7.0(${fixed(v, 3, 1)}*V)`),
    ...s.currentCa.map((c, i) =>
      currentDecimals === 0
        ? `1-0:${31 + 20 * i}.7.0(${fixed(c / 100, 3, 0)}*A)`
        : `1-0:${31 + 20 * i}.7.0(${fixed(c, 3, 2)}*A)`,
    ),
    ...s.importW.map((w, i) => `1-0:${21 + 20 * i}.7.0(${kw(w)})`),
    ...s.exportW.map((w, i) => `1-0:${22 + 20 * i}.7.0(${kw(w)})`),
  ];
  const gas = `(${formatDsmrTime(s.gasTime)})(${fixed(s.gasL, 5, 3)}*m3)`;
  if (f === 'e-mucs') {
    return [
      '/MLS5\\ML-EMUCS-SIM',
      '',
      '0-0:96.1.4(50217)',
      `0-0:96.1.1(${hex(o.serial)})`,
      `0-0:1.0.0(${ts})`,
      ...common.slice(0, 4),
      `1-0:1.4.0(${kw(s.avgDemandW)})`,
      `1-0:1.6.0(${formatDsmrTime(s.maxDemandTime)})(${kw(s.maxDemandW)})`,
      `0-0:98.1.0(1)(1-0:1.6.0)(1-0:1.6.0)(200101000000W)(191212183000W)(03.695*kW)`,
      common[4]!,
      ...power,
      ...phases(2).slice(6),
      ...phases(2).slice(0, 6),
      '0-0:96.3.10(1)',
      '0-0:17.0.0(999.9*kW)',
      '1-0:31.4.0(999*A)',
      '0-0:96.13.0()',
      '0-1:24.1.0(003)',
      `0-1:96.1.1(${hex(o.gasSerial)})`,
      '0-1:24.4.0(1)',
      `0-1:24.2.3${gas}`,
    ];
  }
  const v4 = f === '4';
  return [
    v4 ? '/MLS5\\ML42-SIM' : '/MLS5\\ML50-SIM',
    '',
    `1-3:0.2.8(${v4 ? '42' : '50'})`,
    `0-0:1.0.0(${ts})`,
    `0-0:96.1.1(${hex(o.serial)})`,
    ...common,
    ...power,
    ...(v4 ? ['0-0:17.0.0(999.9*kW)', '0-0:96.3.10(1)'] : []),
    ...events,
    ...(v4 ? ['0-0:96.13.1()'] : []),
    '0-0:96.13.0()',
    // DSMR 4.2 meters report current and power per phase but not voltage.
    ...(v4 ? phases(0).slice(3) : phases(0)),
    '0-1:24.1.0(003)',
    `0-1:96.1.0(${hex(o.gasSerial)})`,
    `0-1:24.2.1${gas}`,
  ];
}

/** The telegram bytes, `/` through `!CRC` CRLF (just `!` CRLF for DSMR 2.2). */
export function renderTelegram(flavour: DsmrFlavour, s: DsmrSnapshot, opts: RenderOptions = {}): Buffer {
  const o = { serial: opts.serial ?? 'MLSIM0000000001', gasSerial: opts.gasSerial ?? 'MLGAS0000000001' };
  const body = Buffer.from(`${lines(flavour, s, o).join('\r\n')}\r\n!`, 'latin1');
  if (flavour === '2.2') return Buffer.concat([body, Buffer.from('\r\n')]);
  return Buffer.concat([body, Buffer.from(`${crcHex(crc16(body))}\r\n`, 'latin1')]);
}
