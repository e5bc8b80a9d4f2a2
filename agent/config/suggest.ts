/** "Did you mean …?" for unknown keys and bad enum values: the closest candidate by edit distance. */

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment), case-insensitive:
 * `sdm360` is one edit from `sdm630`, two from `sdm120`.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  // Three rows of the table (the swap looks two rows back), reused: no allocation per cell or row.
  let before = new Uint32Array(t.length + 1);
  let prev = new Uint32Array(t.length + 1);
  let row = new Uint32Array(t.length + 1);
  for (let j = 0; j <= t.length; j++) prev[j] = j;
  for (let i = 1; i <= s.length; i++) {
    row[0] = i;
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        best = Math.min(best, (before[j - 2] as number) + 1);
      row[j] = best;
    }
    [before, prev, row] = [prev, row, before];
  }
  return prev[t.length] as number;
}

const MAX_WORD = 64;

/**
 * The candidate closest to `input`, if it is close enough to be a plausible typo: at most a third of the
 * longer word's letters (and at least one) differ.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  // No schema word is this long: a typo of one is not either, and the distance table would be large.
  if (input.length > MAX_WORD) return undefined;
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
