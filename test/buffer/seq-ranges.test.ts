/** Seq range sets: checked against plain sets of numbers, on random operations. */
import t from 'tap';
import {
  addRange,
  coarsen,
  countOf,
  RangeBuilder,
  removeRange,
  subtract,
  type Ranges,
} from '../../buffer/seq-ranges.js';

const toSet = (r: Ranges) => {
  const s = new Set<number>();
  for (const x of r) for (let i = x.first; i <= x.last; i++) s.add(i);
  return s;
};
const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
/** Sorted, disjoint, and not adjacent (adjacent ranges must have been merged). */
const canonical = (r: Ranges) =>
  r.every((x, i) => x.first <= x.last && (i === 0 || x.first > r[i - 1]!.last + 1));

t.test('add and remove agree with a plain set, and stay canonical', async (t) => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  let r: Ranges = [];
  const plain = new Set<number>();
  for (let step = 0; step < 2000; step++) {
    const a = 1 + rnd(300);
    const b = a + rnd(20);
    if (rnd(3) === 0) {
      r = removeRange(r, a, b);
      for (let i = a; i <= b; i++) plain.delete(i);
    } else {
      r = addRange(r, a, b);
      for (let i = a; i <= b; i++) plain.add(i);
    }
    if (!canonical(r) || sorted(toSet(r)).join() !== sorted(plain).join())
      throw new Error(`diverged at step ${step}: ${JSON.stringify(r)}`);
  }
  t.equal(countOf(r), plain.size);
  const other = addRange(addRange([], 50, 120), 200, 260);
  t.same(
    sorted(toSet(subtract(r, other))),
    sorted(plain).filter((s) => !(s >= 50 && s <= 120) && !(s >= 200 && s <= 260)),
  );
});

t.test('RangeBuilder turns ascending seqs into ranges', async (t) => {
  const b = new RangeBuilder();
  for (const s of [1, 2, 3, 7, 9, 10]) b.push(s);
  t.same(b.done(), [
    { first: 1, last: 3 },
    { first: 7, last: 7 },
    { first: 9, last: 10 },
  ]);
});

t.test('coarsen fills the smallest gaps first and covers the set', async (t) => {
  const r = [
    { first: 1, last: 2 },
    { first: 10, last: 10 },
    { first: 12, last: 12 },
    { first: 40, last: 41 },
  ];
  t.same(coarsen(r, 4), { ranges: r, coarsened: false });
  t.same(coarsen(r, 3).ranges, [
    { first: 1, last: 2 },
    { first: 10, last: 12 },
    { first: 40, last: 41 },
  ]);
  t.same(coarsen(r, 1).ranges, [{ first: 1, last: 41 }]);
});
