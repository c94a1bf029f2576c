/**
 * The correctly rounded sum of doubles, as Python's `math.fsum` computes it (Shewchuk's exact partials, then a
 * half-even rounding of their sum): the result is the double nearest the exact sum, so it does not depend on the
 * order of the values. Aggregates use it so that a resumed run, whose records sit in another file order, gives
 * the same bits as an uninterrupted one.
 */
export function exactSum(values: Iterable<number>): number {
  const partials: number[] = [];
  let special = 0; // a sum of the non-finite values, if any (inf, -inf, NaN propagate as in plain addition)
  for (let x of values) {
    if (!Number.isFinite(x)) {
      special += x;
      continue;
    }
    let used = 0;
    for (let i = 0; i < partials.length; i += 1) {
      let y = partials[i]!;
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[used++] = lo;
      x = hi;
    }
    partials.length = used;
    partials.push(x);
  }
  if (special !== 0 || Number.isNaN(special)) return special;
  return roundPartials(partials);
}

/** Sum non-overlapping partials (increasing magnitude) with one rounding, half to even as fsum does. */
function roundPartials(partials: number[]): number {
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n]!;
    hi = x + y;
    const yr = hi - x;
    lo = y - yr;
    if (lo !== 0) break;
  }
  // Half-way cases: if the remaining partials push the rounding the other way, correct by one ulp.
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    const yr = x - hi;
    if (y === yr) hi = x;
  }
  return hi;
}
