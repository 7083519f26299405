// Shared comparison helper for the training tests: reports the largest error, its index and the tolerance.
import assert from "node:assert/strict";

export type Num = ArrayLike<number>;

/** Asserts |got − want| ≤ atol + rtol·|want| elementwise; on failure names the worst element. */
export function assertClose(what: string, got: Num, want: Num, atol: number, rtol: number): { maxAbs: number; worst: number } {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs expected ${want.length}`);
  let worst = -1, worstExcess = -Infinity, maxAbs = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= maxAbs)) maxAbs = Number.isNaN(err) ? Infinity : Math.max(maxAbs, err);
    const excess = Number.isNaN(err) ? Infinity : err - (atol + rtol * Math.abs(want[i]));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worstExcess > 0) {
    assert.fail(
      `${what}: element ${worst} got ${got[worst]} expected ${want[worst]} (|err| ${Math.abs(got[worst] - want[worst]).toExponential(3)} > ` +
        `atol ${atol} + rtol ${rtol}·|expected|); largest |err| ${maxAbs.toExponential(3)}`,
    );
  }
  return { maxAbs, worst };
}
