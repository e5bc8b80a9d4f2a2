/**
 * Meter profiles: a meter model's register map as data. One file per model under drivers/profiles/, named
 * `vendor-model`; inline maps in the config use the same shape. `validateProfile` reports every problem with
 * its path, so an installer can fix a custom map in one go.
 */
import { channelByName, type Unit } from '../../cloud-contract/channels.js';

export type RegisterFunction = 'holding' | 'input';
export type RegisterType =
  'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64';
/** Byte order of the value as it appears on the wire; A is the most significant byte. */
export type WordOrder = 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';
/** The unit the meter reports a register in; converted to the channel's canonical unit by a power of ten. */
export type MeterUnit =
  | 'V'
  | 'kV'
  | 'A'
  | 'mA'
  | 'W'
  | 'kW'
  | 'var'
  | 'kvar'
  | 'VA'
  | 'kVA'
  | 'Hz'
  | 'Wh'
  | 'kWh'
  | 'MWh'
  | 'varh'
  | 'kvarh'
  | '1'
  | '%';

export interface RegisterDef {
  /** Canonical channel this register feeds (cloud-contract/channels.ts). */
  readonly channel: string;
  readonly function: RegisterFunction;
  /** Address as the vendor's document writes it (see `ModbusProfile.addressBase`). */
  readonly address: number;
  readonly type: RegisterType;
  /** Default ABCD (big-endian, the Modbus convention). */
  readonly wordOrder?: WordOrder;
  /** Decimal exponent: the meter's value is raw × 10^scale (e.g. −2 for "0.01 kWh"). Default 0. */
  readonly scale?: number;
  readonly unit: MeterUnit;
  /**
   * Raw values that mean "not available" (hex of the register bytes in ABCD order, e.g. `FFFFFFFF`,
   * `FFC00000` for a float NaN). Such a value is reported as a meter error, never as a number.
   */
  readonly sentinels?: readonly string[];
  /** Plausible range in the canonical unit (defaults by unit); outside it the value is flagged out of range. */
  readonly min?: number;
  readonly max?: number;
}

export interface AddressRange {
  readonly function: RegisterFunction;
  /** First and last address (inclusive), in the profile's addressing. */
  readonly from: number;
  readonly to: number;
}

export interface ModbusProfile {
  /** `vendor-model`, e.g. `eastron-sdm630`. */
  readonly name: string;
  readonly vendor: string;
  readonly model: string;
  /** The public document the register map was taken from. */
  readonly source: string;
  /** 1 phase or 3 (the simulator and `scan` use it). */
  readonly phases: 1 | 3;
  /** Addresses in this profile are 0-based (wire addresses) or 1-based (register numbers). Default 0. */
  readonly addressBase?: 0 | 1;
  /** Most registers one request may read (Modbus allows 125; some meters fewer). Default 125. */
  readonly maxRegisters?: number;
  /** Largest run of unused registers a block read may bridge. Default 0 (never read unused registers). */
  readonly maxGap?: number;
  /** Pause before each request after the first of a poll (meters that reset when polled too fast). */
  readonly pauseMs?: number;
  /** Address ranges the meter refuses (exception 2); no block read ever covers them. */
  readonly refused?: readonly AddressRange[];
  /** Serial-line defaults the vendor ships with. */
  readonly defaults?: { readonly baud?: number; readonly parity?: 'none' | 'even' | 'odd' };
  readonly registers: readonly RegisterDef[];
}

export const registerWords: Record<RegisterType, number> = {
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  int64: 4,
  uint64: 4,
  float32: 2,
  float64: 4,
};

export const functionCode: Record<RegisterFunction, 3 | 4> = { holding: 3, input: 4 };

/** Power of ten from a meter unit to its canonical unit, keyed by canonical unit. */
const unitExponents: Partial<Record<Unit, Partial<Record<MeterUnit, number>>>> = {
  V: { V: 0, kV: 3 },
  A: { A: 0, mA: -3 },
  W: { W: 0, kW: 3 },
  var: { var: 0, kvar: 3 },
  VA: { VA: 0, kVA: 3 },
  Hz: { Hz: 0 },
  kWh: { Wh: -3, kWh: 0, MWh: 3 },
  kvarh: { varh: -3, kvarh: 0 },
  '1': { '1': 0, '%': -2 },
};

/** The exponent that converts `unit` to the canonical unit of `channel`, or undefined if they do not fit. */
export function unitExponent(channel: string, unit: MeterUnit): number | undefined {
  const def = channelByName(channel);
  if (!def) return undefined;
  return unitExponents[def.unit]?.[unit];
}

const defaultRanges: Partial<Record<Unit, readonly [number, number]>> = {
  V: [0, 1000],
  A: [-10_000, 10_000],
  W: [-1e8, 1e8],
  var: [-1e8, 1e8],
  VA: [0, 1e8],
  Hz: [0, 100],
  kWh: [0, 1e12],
  kvarh: [0, 1e12],
  '1': [-1.001, 1.001],
};

const anyNumber: readonly [number, number] = [-Infinity, Infinity];

/** Plausible range of a register's value in its channel's canonical unit. */
export function plausibleRange(reg: RegisterDef): readonly [number, number] {
  const unit = channelByName(reg.channel)?.unit;
  const range = (unit && defaultRanges[unit]) ?? anyNumber;
  // Shared, not copied, unless the register narrows it: checked for every register of every poll.
  return reg.min === undefined && reg.max === undefined ? range : [reg.min ?? range[0], reg.max ?? range[1]];
}

const registerTypes = new Set(Object.keys(registerWords));
const wordOrders = new Set(['ABCD', 'CDAB', 'BADC', 'DCBA']);
const functions = new Set(['holding', 'input']);

export interface ProfileProblem {
  /** JSON-ish path, e.g. `registers[3].address`. */
  readonly path: string;
  readonly message: string;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Every problem with a profile (empty when valid). Accepts unknown input (a parsed config). */
export function validateProfile(obj: unknown): ProfileProblem[] {
  const problems: ProfileProblem[] = [];
  const bad = (path: string, message: string) => problems.push({ path, message });
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    bad('', 'a profile must be an object with name, registers, …');
    return problems;
  }
  const p = obj as Record<string, unknown>;
  for (const key of ['name', 'vendor', 'model', 'source'] as const) {
    if (typeof p[key] !== 'string' || (p[key] as string).length === 0)
      bad(key, `${key} must be a non-empty string`);
  }
  if (typeof p.name === 'string' && !/^[a-z0-9]+(-[a-z0-9]+)+$/.test(p.name))
    bad('name', 'name must be kebab-case vendor-model, e.g. "eastron-sdm630"');
  if (p.phases !== 1 && p.phases !== 3) bad('phases', 'phases must be 1 or 3');
  const base = p.addressBase ?? 0;
  if (base !== 0 && base !== 1) bad('addressBase', 'addressBase must be 0 or 1');
  const maxRegisters = p.maxRegisters ?? 125;
  if (!isInt(maxRegisters) || maxRegisters < 1 || maxRegisters > 125)
    bad('maxRegisters', 'maxRegisters must be an integer from 1 to 125');
  const maxGap = p.maxGap ?? 0;
  if (!isInt(maxGap) || maxGap < 0) bad('maxGap', 'maxGap must be an integer ≥ 0');
  const pauseMs = p.pauseMs ?? 0;
  if (typeof pauseMs !== 'number' || !(pauseMs >= 0)) bad('pauseMs', 'pauseMs must be a number ≥ 0');
  const refused: AddressRange[] = [];
  if (p.refused !== undefined) {
    if (!Array.isArray(p.refused)) bad('refused', 'refused must be a list of {function, from, to}');
    else
      p.refused.forEach((r: unknown, i) => {
        const rr = (r ?? {}) as Record<string, unknown>;
        if (!functions.has(rr.function as string))
          bad(`refused[${i}].function`, 'function must be "holding" or "input"');
        if (!isInt(rr.from) || !isInt(rr.to) || rr.from > rr.to)
          bad(`refused[${i}]`, 'from and to must be integers with from ≤ to');
        else refused.push(rr as unknown as AddressRange);
      });
  }
  if (!Array.isArray(p.registers) || p.registers.length === 0) {
    bad('registers', 'registers must be a non-empty list');
    return problems;
  }
  const seenChannels = new Map<string, number>();
  const spans: { fn: string; from: number; to: number; i: number }[] = [];
  p.registers.forEach((r: unknown, i) => {
    const at = `registers[${i}]`;
    if (typeof r !== 'object' || r === null) {
      bad(at, 'a register must be an object');
      return;
    }
    const reg = r as Record<string, unknown>;
    const channel = reg.channel;
    if (typeof channel !== 'string' || !channelByName(channel))
      bad(`${at}.channel`, `unknown channel ${JSON.stringify(channel)} (see cloud-contract/channels.ts)`);
    else if (seenChannels.has(channel))
      bad(`${at}.channel`, `channel ${channel} is already fed by registers[${seenChannels.get(channel)}]`);
    else seenChannels.set(channel, i);
    if (!functions.has(reg.function as string))
      bad(`${at}.function`, 'function must be "holding" or "input"');
    if (!registerTypes.has(reg.type as string))
      bad(`${at}.type`, `type must be one of ${[...registerTypes].join(', ')}`);
    if (reg.wordOrder !== undefined && !wordOrders.has(reg.wordOrder as string))
      bad(`${at}.wordOrder`, 'wordOrder must be ABCD, CDAB, BADC or DCBA');
    if (reg.scale !== undefined && (!isInt(reg.scale) || Math.abs(reg.scale) > 12))
      bad(`${at}.scale`, 'scale is a decimal exponent: an integer from -12 to 12');
    if (typeof channel === 'string' && channelByName(channel)) {
      if (unitExponent(channel, reg.unit as MeterUnit) === undefined)
        bad(
          `${at}.unit`,
          `unit ${JSON.stringify(reg.unit)} cannot be converted to ${channelByName(channel)?.unit} (${channel})`,
        );
    }
    if (reg.sentinels !== undefined) {
      const words = registerWords[reg.type as RegisterType] ?? 0;
      if (
        !Array.isArray(reg.sentinels) ||
        !reg.sentinels.every((s) => typeof s === 'string' && new RegExp(`^[0-9A-F]{${words * 4}}$`).test(s))
      )
        bad(`${at}.sentinels`, `sentinels must be upper-case hex strings of ${words * 4} digits`);
    }
    if (!isInt(reg.address) || reg.address < (base as number)) {
      bad(`${at}.address`, `address must be an integer ≥ ${base as number}`);
      return;
    }
    const words = registerWords[reg.type as RegisterType];
    if (words === undefined) return;
    const from = reg.address as number;
    const to = from + words - 1;
    if (to - (base as number) > 0xffff) bad(`${at}.address`, 'address beyond 65535');
    spans.push({ fn: reg.function as string, from, to, i });
    for (const rr of refused) {
      if (rr.function === reg.function && from <= rr.to && to >= rr.from)
        bad(`${at}.address`, `register lies in a refused range ${rr.from}–${rr.to}`);
    }
  });
  spans.sort((a, b) => (a.fn === b.fn ? a.from - b.from : a.fn < b.fn ? -1 : 1));
  for (let k = 1; k < spans.length; k++) {
    const prev = spans[k - 1]!;
    const cur = spans[k]!;
    if (prev.fn === cur.fn && cur.from <= prev.to)
      bad(`registers[${cur.i}].address`, `overlaps registers[${prev.i}] (${prev.from}–${prev.to})`);
  }
  return problems;
}
