/**
 * The surrogate's raw draws without its leaked mass (`NBI.sample`). A surrogate trained with APT
 * can put mass where no training atom lies; sbi's flows live on θ itself, so that mass falls
 * outside the prior's box and sbi rejects it ("leakage correction"). Ours live on the unbounded
 * image of the box (unbounded.ts), so the same mass lands in the float64 band at a bound instead:
 * on sbibm's SLCP at 10⁴ simulations ~90% of the raw draws lay within 1e-9 of the width of a bound
 * (bench/RESULTS.md). The band is the image of the probit's tails beyond |u| ≈ 6, where the prior
 * holds 1e-9 of its mass per side: draws there are rejected and drawn again, as sbi's are outside
 * the box. A posterior could hold real mass there only with a likelihood ~10⁶ times its average
 * under the prior inside that sliver.
 */
import type { Array } from "../trace/array.js";
import { keyAt } from "./host.js";
import { fillByRejection } from "./proposals.js";

/** Relative width of the band at each bound of a two-sided interval whose draws are rejected. */
export const LEAK_BAND = 1e-9;
/** Give up after this many batches, or after drawing max(200·n, 200,000) (acceptance < ~0.5%). */
const MAX_ATTEMPTS = 30;
const drawBudget = (n: number) => Math.max(200 * n, 200_000);

/**
 * Per row of θ (n × d), 1 when no coordinate with two finite bounds lies within LEAK_BAND of the
 * interval's width from either bound; 0 otherwise.
 */
export function interiorRows(
  theta: Float64Array,
  lower: Float64Array,
  upper: Float64Array,
): Uint8Array {
  const d = lower.length;
  const n = theta.length / d;
  const out = new Uint8Array(n).fill(1);
  for (let j = 0; j < d; j++) {
    const lo = lower[j]!;
    const hi = upper[j]!;
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) continue;
    const band = LEAK_BAND * (hi - lo);
    for (let i = 0; i < n; i++) {
      const v = theta[i * d + j]!;
      if (v - lo < band || hi - v < band) out[i] = 0;
    }
  }
  return out;
}

/**
 * n draws (n × d) of `draw` restricted to the interior (see `interiorRows`): the first batch with
 * `key` itself (so a surrogate without leaked draws gives exactly its own draws), then batches
 * with keyAt(key, attempt) sized by the acceptance so far. Also the fraction accepted.
 */
export async function interiorSample(
  draw: (key: Array, m: number) => Promise<Float64Array>,
  lower: Float64Array,
  upper: Float64Array,
  key: Array,
  n: number,
): Promise<{ theta: Float64Array; acceptance: number }> {
  const r = await fillByRejection(
    n,
    lower.length,
    n,
    async (attempt, want) => {
      const theta = await draw(attempt === 0 ? key : keyAt(key, attempt), want);
      return { theta, keep: interiorRows(theta, lower, upper) };
    },
    (filled, drawn) =>
      `sample: the surrogate put almost all its draws on the prior's bounds (${filled} of ${n} ` +
      `inside after ${drawn} draws): it leaked its mass where no training simulation lies. ` +
      "predict's draws are weighed exactly; refit with more simulations or another loss",
    {
      next: (missing, filled, drawn) =>
        Math.max(16, Math.ceil((1.2 * missing) / Math.max(filled / drawn, 1e-3))),
      maxAttempts: MAX_ATTEMPTS,
      budget: drawBudget(n),
    },
  );
  return { theta: r.theta, acceptance: n / r.drawn };
}
