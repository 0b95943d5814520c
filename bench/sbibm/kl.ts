/**
 * KL(reference ‖ surrogate) at the observation, from the reference's exact draws:
 *
 *   KL = E_ref[log p(θ | x_o) − log q(θ | x_o)],  log p(θ | x_o) = log L(x_o | θ) + log π(θ) − log Z,
 *
 * with the evidence Z = p(x_o) from importance weights (the caller's: run.ts takes the surrogate-only
 * predict's, whose estimate is unbiased; its standard error is carried into the KL's) or, on the
 * two Gaussian tasks, in closed form. Unlike the C2ST it needs no classifier
 * (no training noise, seconds instead of minutes) and it weighs every reference draw where the
 * surrogate is too narrow, which a C2ST near 0.5 hides; it does not see surrogate mass where the
 * reference has none (that is KL(q ‖ ref)'s side, and the spill column's).
 */
import { ndtr } from "../../src/inference/special.js";
import type { Reference } from "./reference.js";
import { GLU_VAR, GM_COMPONENTS, type Task } from "./tasks.js";

/** A KL estimate and its standard error (Monte Carlo over the reference draws and the evidence's). */
export interface KlEstimate {
  kl: number;
  se: number;
}

/**
 * KL(ref ‖ q) from log q at the reference's draws and the evidence. Rows where q is zero make the
 * KL infinite, as they should.
 */
export function klToReference(
  task: Task,
  ref: Reference,
  xObs: ArrayLike<number>,
  logQ: Float64Array,
  logEvidence: number,
  logEvidenceSe = 0,
): KlEstimate {
  const d = task.dim;
  const n = ref.samples.length / d;
  if (logQ.length !== n) {
    throw new Error(`klToReference: logQ expected ${n} values (one per draw), got ${logQ.length}`);
  }
  const logPrior = task.prior.logProb(ref.samples);
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const theta = ref.samples.subarray(i * d, (i + 1) * d);
    const v = task.logLike(xObs, theta) + logPrior[i]! - logQ[i]!;
    sum += v;
    sumSq += v * v;
  }
  const mean = sum / n;
  const varMean = Math.max(sumSq / n - mean * mean, 0) / n;
  return { kl: mean - logEvidence, se: Math.sqrt(varMean + logEvidenceSe ** 2) };
}

/** Each Gaussian task's likelihood as a mixture over θ (weights a, sds s) and its prior box. */
const GAUSSIAN_EVIDENCE: Readonly<
  Record<string, { a: readonly number[]; s: readonly number[]; lo: number; hi: number }>
> = {
  gaussian_linear_uniform: { a: [1], s: [Math.sqrt(GLU_VAR)], lo: -1, hi: 1 },
  gaussian_mixture: { a: GM_COMPONENTS.weights, s: GM_COMPONENTS.sds, lo: -10, hi: 10 },
};

/**
 * The evidence in closed form where the task has one, else null. Both Gaussian tasks have a
 * likelihood that, as a function of θ, is a mixture of Gaussians around x (each integrating to
 * one) and a uniform box prior of side w, so Z = w^−d Σ_k a_k Π_i [Φ((hi − x_i)/s_k) −
 * Φ((lo − x_i)/s_k)]: gaussian_linear_uniform (one component, s² = 0.1, box [−1, 1]^10) and
 * gaussian_mixture (a = ½, ½; s = 1, 0.1; box [−10, 10]²).
 */
export function closedFormLogEvidence(task: Task, xObs: ArrayLike<number>): number | null {
  const m = GAUSSIAN_EVIDENCE[task.name];
  if (!m) return null;
  let z = 0;
  m.a.forEach((a, k) => {
    let p = a;
    for (let i = 0; i < xObs.length; i++) {
      const x = xObs[i]!;
      p *= ndtr((m.hi - x) / m.s[k]!) - ndtr((m.lo - x) / m.s[k]!);
    }
    z += p;
  });
  return Math.log(z) - xObs.length * Math.log(m.hi - m.lo);
}
