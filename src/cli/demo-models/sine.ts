/**
 * nbi's sine light-curve problem: x(t) = A sin(ωt + φ0) + N(0, 1) at t = linspace(0, 1, 50),
 * with φ0 ~ U(0, 2π), A ~ U(1, 5), ω ~ U(2π, 12π). Shared by the demo, the tests and the
 * benchmark (examples/sine-model.ts re-exports it); the worker-thread variant of the simulator is
 * examples/sine-simulator.mjs.
 */
import type { FeaturizerConfig } from "../../featurizers/registry.js";
import { hostKey, keyAt, normals } from "../../inference/host.js";
import { uniform } from "../../inference/priors.js";

export const LENGTH = 50;
export const times: readonly number[] = Array.from({ length: LENGTH }, (_, i) => i / (LENGTH - 1));
export const NOISE_SIGMA = 1;

/** The noiseless light curve for θ = [φ0, A, ω]. */
export function sine(theta: ArrayLike<number>): Float64Array {
  const [phi0, amplitude, omega] = [theta[0]!, theta[1]!, theta[2]!];
  return Float64Array.from(times, (t) => amplitude * Math.sin(omega * t + phi0));
}

export const priors = {
  phi0: uniform(0, 2 * Math.PI),
  A: uniform(1, 5),
  omega: uniform(2 * Math.PI, 12 * Math.PI),
};

/** The true parameters of the demo's observation. */
export const truth: readonly number[] = [1.3, 3.0, 20.0];

/** The observation for a seed: the true curve plus unit Gaussian noise, from a key of its own. */
export function observation(seed: number): Float64Array {
  const eps = normals(keyAt(hostKey(1000 + seed), 0), LENGTH);
  return sine(truth).map((v, i) => v + NOISE_SIGMA * eps[i]!);
}

/** nbi's sine-example networks. */
export const flow = { nDims: 3, flowHidden: 64, numBlocks: 5 };
export const resnetGruFeaturizer: FeaturizerConfig = {
  type: "resnet-gru",
  dimIn: 1,
  dimOut: 64,
  depth: 3,
};
/** A lighter featurizer for the sine curve (50 numbers): a two-layer MLP. */
export const mlpFeaturizer: FeaturizerConfig = {
  type: "mlp",
  dimIn: LENGTH,
  dimOut: 32,
  hidden: [128, 128],
};
