/** "Did you mean …?" for unknown keys and bad enum values: the closest candidate by edit distance. */

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment), case-insensitive:
 * `sdm360` is one edit from `sdm630`, two from `sdm120`.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(s.length, t.length);
}

/**
 * The candidate closest to `input`, if it is close enough to be a plausible typo: at most a third of the
 * longer word's letters (and at least one) differ.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(input, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // `baudrate` for `baud`, `interval_s` for `interval`: the user wrote the key with a suffix.
  const prefixed = candidates.find((c) => c.length >= 3 && input.toLowerCase().startsWith(c.toLowerCase()));
  if (best === undefined) return prefixed;
  const allowed = Math.max(1, Math.floor(Math.max(input.length, best.length) / 3));
  return bestDistance <= allowed ? best : prefixed;
}
