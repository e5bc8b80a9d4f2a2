/**
 * Sets of sequence numbers as sorted, disjoint, non-adjacent inclusive ranges. A buffer's stored seqs are
 * almost always one range (appends at the top, acks and drops from the bottom); out-of-order acks and
 * damage make a few more.
 */
import type { SeqRange } from './reading-buffer.js';

export type Ranges = readonly SeqRange[];

/** `set ∪ [first, last]`. */
export function addRange(set: Ranges, first: number, last: number): SeqRange[] {
  if (first > last) return [...set];
  const out: SeqRange[] = [];
  let f = first;
  let l = last;
  let placed = false;
  for (const r of set) {
    if (r.last + 1 < f) out.push(r);
    else if (l + 1 < r.first) {
      if (!placed) out.push({ first: f, last: l });
      placed = true;
      out.push(r);
    } else {
      f = Math.min(f, r.first);
      l = Math.max(l, r.last);
    }
  }
  if (!placed) out.push({ first: f, last: l });
  return out;
}

/** `set − [first, last]`. */
export function removeRange(set: Ranges, first: number, last: number): SeqRange[] {
  if (first > last) return [...set];
  const out: SeqRange[] = [];
  for (const r of set) {
    if (r.last < first || r.first > last) {
      out.push(r);
      continue;
    }
    if (r.first < first) out.push({ first: r.first, last: first - 1 });
    if (r.last > last) out.push({ first: last + 1, last: r.last });
  }
  return out;
}

/** `a − b`. */
export function subtract(a: Ranges, b: Ranges): SeqRange[] {
  let out: SeqRange[] = [...a];
  for (const r of b) out = removeRange(out, r.first, r.last);
  return out;
}

export function countOf(set: Ranges): number {
  return set.reduce((n, r) => n + r.last - r.first + 1, 0);
}

/**
 * At most `max` ranges: the smallest gaps are filled until it fits, so the result covers `set` (a superset).
 * Returns whether it had to.
 */
export function coarsen(set: Ranges, max: number): { ranges: SeqRange[]; coarsened: boolean } {
  const out = [...set];
  if (out.length <= max) return { ranges: out, coarsened: false };
  while (out.length > max) {
    let best = 1;
    for (let i = 2; i < out.length; i++)
      if (out[i]!.first - out[i - 1]!.last < out[best]!.first - out[best - 1]!.last) best = i;
    out.splice(best - 1, 2, { first: out[best - 1]!.first, last: out[best]!.last });
  }
  return { ranges: out, coarsened: true };
}

/** Builds ranges from ascending seqs, one at a time (the scan on open). */
export class RangeBuilder {
  readonly ranges: SeqRange[] = [];
  private cur: { first: number; last: number } | null = null;

  push(seq: number): void {
    if (this.cur && seq === this.cur.last + 1) this.cur.last = seq;
    else {
      if (this.cur) this.ranges.push(this.cur);
      this.cur = { first: seq, last: seq };
    }
  }

  done(): SeqRange[] {
    if (this.cur) this.ranges.push(this.cur);
    this.cur = null;
    return this.ranges;
  }
}
