/**
 * The read planner: turns a profile into the fewest block reads the profile's rules allow — at most
 * `maxRegisters` per read, bridging runs of unused registers up to `maxGap`, never touching a refused range —
 * and among the plans with that fewest number, the one with the fewest bytes on the wire.
 */
import { functionCode, registerWords, type ModbusProfile, type RegisterDef } from './profile.js';

export interface ReadBlock {
  /** Modbus function code: 3 (holding) or 4 (input). */
  readonly fn: 3 | 4;
  /** First register, as sent on the wire (0-based). */
  readonly address: number;
  /** Number of registers. */
  readonly count: number;
  /** The profile's registers this block carries, with their offset (in registers) inside it. */
  readonly registers: readonly { readonly reg: RegisterDef; readonly offset: number }[];
}

/** RTU bytes of one read transaction: request (8) + response (5 + 2 per register). */
export const rtuTransactionBytes = (count: number): number => 8 + 5 + 2 * count;

interface Span {
  readonly reg: RegisterDef;
  readonly fn: 3 | 4;
  readonly from: number;
  readonly to: number;
}

/** Wire-address spans of a profile's registers, grouped by function code and sorted. */
export function registerSpans(profile: ModbusProfile): Map<3 | 4, Span[]> {
  const base = profile.addressBase ?? 0;
  const byFn = new Map<3 | 4, Span[]>();
  for (const reg of profile.registers) {
    const fn = functionCode[reg.function];
    const from = reg.address - base;
    const list = byFn.get(fn) ?? [];
    list.push({ reg, fn, from, to: from + registerWords[reg.type] - 1 });
    byFn.set(fn, list);
  }
  for (const list of byFn.values()) list.sort((a, b) => a.from - b.from);
  return new Map([...byFn.entries()].sort((a, b) => a[0] - b[0]));
}

/** Whether one request may read spans[i..j] of one function under the profile's rules. */
export function blockAllowed(profile: ModbusProfile, spans: readonly Span[], i: number, j: number): boolean {
  const first = spans[i]!;
  const maxRegisters = profile.maxRegisters ?? 125;
  const maxGap = profile.maxGap ?? 0;
  const base = profile.addressBase ?? 0;
  let end = first.to;
  for (let k = i + 1; k <= j; k++) {
    const s = spans[k]!;
    const gap = s.from - end - 1;
    if (gap > maxGap) return false;
    if (gap > 0 && refusedOverlap(profile, s.fn, end + 1, s.from - 1, base)) return false;
    end = Math.max(end, s.to);
  }
  return end - first.from + 1 <= maxRegisters;
}

function refusedOverlap(profile: ModbusProfile, fn: 3 | 4, from: number, to: number, base: number): boolean {
  return (profile.refused ?? []).some(
    (r) => functionCode[r.function] === fn && from <= r.to - base && to >= r.from - base,
  );
}

/** The block reads of one poll, in function/address order. */
export function planReads(profile: ModbusProfile): ReadBlock[] {
  const blocks: ReadBlock[] = [];
  for (const spans of registerSpans(profile).values()) {
    const n = spans.length;
    // best[k]: [transactions, bytes] for spans[0..k-1]; from[k]: where its last block starts.
    const best: [number, number][] = [[0, 0]];
    const from: number[] = [0];
    for (let j = 0; j < n; j++) {
      let choice: [number, number] = [Infinity, Infinity];
      let at = -1;
      for (let i = j; i >= 0; i--) {
        if (!blockAllowed(profile, spans, i, j)) {
          // A block that breaks the size limit stays broken when it grows leftwards; a gap rule may not.
          if (spans[j]!.to - spans[i]!.from + 1 > (profile.maxRegisters ?? 125)) break;
          continue;
        }
        const prev = best[i]!;
        const count = Math.max(...spans.slice(i, j + 1).map((s) => s.to)) - spans[i]!.from + 1;
        const cand: [number, number] = [prev[0] + 1, prev[1] + rtuTransactionBytes(count)];
        if (cand[0] < choice[0] || (cand[0] === choice[0] && cand[1] < choice[1])) {
          choice = cand;
          at = i;
        }
      }
      best.push(choice);
      from.push(at);
    }
    const fnBlocks: ReadBlock[] = [];
    for (let k = n; k > 0;) {
      const i = from[k]!;
      const part = spans.slice(i, k);
      const start = part[0]!.from;
      const end = Math.max(...part.map((s) => s.to));
      fnBlocks.unshift({
        fn: part[0]!.fn,
        address: start,
        count: end - start + 1,
        registers: part.map((s) => ({ reg: s.reg, offset: s.from - start })),
      });
      k = i;
    }
    blocks.push(...fnBlocks);
  }
  return blocks;
}
