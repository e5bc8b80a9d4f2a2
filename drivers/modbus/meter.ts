/**
 * `createModbusMeter`: one Modbus meter as a `MeterReader`. A poll runs the planned block reads through the
 * meter's shared bus, decodes every register to a lossless `Value` on its canonical channel, and reports
 * what could not be read (`partial`, `missing`, `errors`). A meter that keeps failing backs off, so it
 * cannot hog its bus; it is retried after the backoff and recovers on its own.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { QualityFlag, type Value } from '../../cloud-contract/sample.js';
import { builtinProfiles } from '../profiles/index.js';
import { DriverError, isDriverError } from '../errors.js';
import type { MeterReader, MeterReading } from '../reader.js';
import { acquireBus, releaseBus, type ModbusBus, type ModbusTransport } from './bus.js';
import { decodeRegister } from './codec.js';
import { planReads, type ReadBlock } from './planner.js';
import { registerWords, validateProfile, type ModbusProfile } from './profile.js';

export interface ModbusMeterOptions {
  /** Meter id from the config. */
  readonly id: string;
  readonly transport: ModbusTransport;
  /** Modbus unit id (slave address), 1–247. */
  readonly unit: number;
  /** A built-in profile name (`eastron-sdm630`) or an inline register map. */
  readonly profile: string | ModbusProfile;
  /** Per-request timeout in ms. Default 1000. */
  readonly timeout?: number;
  /** Extra attempts of a request after a timeout or a bad frame. Default 1. */
  readonly retries?: number;
  /** First backoff after repeated failed polls, in ms (doubles each time). Default 2000. */
  readonly backoffMs?: number;
  /** Longest backoff, in ms. Default 60000. */
  readonly maxBackoffMs?: number;
}

export interface ModbusMeterDeps {
  /** Monotonic-enough clock for the backoff, ms. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The profile for a name or inline map, validated; throws PROFILE_INVALID listing every problem. */
export function resolveProfile(profile: string | ModbusProfile, where = 'profile'): ModbusProfile {
  if (typeof profile === 'string') {
    const p = builtinProfiles[profile];
    if (!p)
      throw new DriverError(
        'PROFILE_INVALID',
        `${where}: unknown profile "${profile}"; built-in profiles are ${Object.keys(builtinProfiles).join(', ')}`,
        { context: { profile } },
      );
    return p;
  }
  const problems = validateProfile(profile);
  if (problems.length > 0)
    throw new DriverError(
      'PROFILE_INVALID',
      `${where} is invalid:\n` + problems.map((p) => `  ${where}.${p.path}: ${p.message}`).join('\n'),
      { context: { problems } },
    );
  return profile;
}

const retryable = new Set(['TIMEOUT', 'CRC', 'WRONG_UNIT', 'BAD_FRAME']);
const fatal = new Set(['PORT_GONE', 'PORT_OPEN_FAILED', 'CLOSED']);

export function createModbusMeter(opts: ModbusMeterOptions, deps: ModbusMeterDeps = {}): MeterReader {
  const profile = resolveProfile(opts.profile, `meter ${opts.id} profile`);
  if (!Number.isInteger(opts.unit) || opts.unit < 1 || opts.unit > 247)
    throw new DriverError('PROFILE_INVALID', `meter ${opts.id}: unit must be 1–247, got ${opts.unit}`);
  const plan = planReads(profile);
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms));
  const timeout = opts.timeout ?? 1000;
  const retries = opts.retries ?? 1;
  const backoffMs = opts.backoffMs ?? 2000;
  const maxBackoffMs = opts.maxBackoffMs ?? 60_000;
  let bus: ModbusBus | undefined = acquireBus(opts.transport);
  let failures = 0;
  let backoffUntil = 0;

  const readBlock = async (block: ReadBlock, signal?: AbortSignal): Promise<Buffer> => {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      if (!bus) throw new DriverError('CLOSED', `meter ${opts.id} is closed`);
      try {
        return await bus.read({
          unit: opts.unit,
          fn: block.fn,
          address: block.address,
          count: block.count,
          timeout,
        });
      } catch (err) {
        const de = isDriverError(err) ? err : new DriverError('BAD_FRAME', String(err), { cause: err });
        if (attempt >= retries || !retryable.has(de.code)) throw de;
      }
    }
  };

  const poll = async (signal?: AbortSignal): Promise<MeterReading> => {
    const values: Record<string, Value> = {};
    const missing: string[] = [];
    const errors: DriverError[] = [];
    let flags = 0;
    let okBlocks = 0;
    for (const [i, block] of plan.entries()) {
      if (i > 0 && profile.pauseMs) await sleep(profile.pauseMs);
      let bytes: Buffer;
      try {
        bytes = await readBlock(block, signal);
      } catch (err) {
        const de = err as DriverError;
        // Nothing answered at all, or the port is gone: this poll is a failure, not a partial read, and
        // the rest of the blocks would only keep the bus busy.
        if (fatal.has(de.code) || (okBlocks === 0 && de.code === 'TIMEOUT')) throw de;
        errors.push(de);
        if (de.code === 'MODBUS_EXCEPTION') flags |= QualityFlag.meterError;
        missing.push(...block.registers.map((r) => r.reg.channel));
        continue;
      }
      okBlocks++;
      for (const { reg, offset } of block.registers) {
        const d = decodeRegister(reg, bytes.subarray(offset * 2, (offset + registerWords[reg.type]) * 2));
        if (d.ok) {
          values[reg.channel] = d.value;
          continue;
        }
        missing.push(reg.channel);
        flags |= d.why === 'sentinel' ? QualityFlag.meterError : QualityFlag.outOfRange;
      }
    }
    if (okBlocks === 0) throw errors[0]!;
    if (errors.length > 0) flags |= QualityFlag.partial;
    return { values, flags, missing, errors };
  };

  return {
    id: opts.id,
    async read(signal) {
      if (!bus) throw new DriverError('CLOSED', `meter ${opts.id} is closed`);
      const t = now();
      if (t < backoffUntil)
        throw new DriverError(
          'BACKOFF',
          `meter ${opts.id} failed ${failures} polls in a row; next try in ${Math.ceil(backoffUntil - t)} ms`,
          { context: { meter: opts.id, failures, retryAt: backoffUntil } },
        );
      try {
        const reading = await poll(signal);
        failures = 0;
        backoffUntil = 0;
        return reading;
      } catch (err) {
        failures++;
        // The first failure is retried on the next poll; from the second on, the meter waits longer each
        // time so a dead meter cannot take the bus from the healthy ones.
        if (failures >= 2) backoffUntil = now() + Math.min(maxBackoffMs, backoffMs * 2 ** (failures - 2));
        if (isDriverError(err)) {
          throw new DriverError(err.code, `meter ${opts.id}: ${err.message}`, {
            cause: err,
            context: { ...err.context, meter: opts.id },
          });
        }
        throw err;
      }
    },
    async close() {
      const b = bus;
      bus = undefined;
      if (b) await releaseBus(b);
    },
  };
}
