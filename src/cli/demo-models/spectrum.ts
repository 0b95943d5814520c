/**
 * An emission line on a 1-D spectrum: a Gaussian line of unknown centre, width (σ) and amplitude
 * on a flat continuum, sampled in 128 wavelength bins around Hα with Gaussian noise. Used by
 * `nbi demo spectrum`; the featurizer is nbi's default ResNet-GRU.
 *
 *     f(λ) = continuum + amplitude · exp(−(λ − centre)² / (2 width²)) + N(0, 0.3²)
 */
import type { FeaturizerConfig } from "../../featurizers/registry.js";
import { uniform } from "../../inference/priors.js";

export const LENGTH = 128;
/** Wavelength bins in Ångström: 6520 to 6605 Å. */
export const wavelengths: readonly number[] = Array.from(
  { length: LENGTH },
  (_, i) => 6520 + (85 * i) / (LENGTH - 1),
);
export const NOISE_SIGMA = 0.3;

/** The noiseless spectrum for θ = [centre, width, amplitude, continuum]. */
export function spectrum(theta: ArrayLike<number>): Float64Array {
  const [centre, width, amplitude, continuum] = [theta[0]!, theta[1]!, theta[2]!, theta[3]!];
  return Float64Array.from(
    wavelengths,
    (l) => continuum + amplitude * Math.exp(-0.5 * ((l - centre) / width) ** 2),
  );
}

export const priors = {
  centre: uniform(6550, 6575),
  width: uniform(1, 5),
  amplitude: uniform(0.5, 3),
  continuum: uniform(0.8, 1.2),
};

/** The true parameters of the demo's observation: Hα at rest, a modest line. */
export const truth: readonly number[] = [6562.8, 2.5, 1.2, 1.0];

export const flow = { nDims: 4, flowHidden: 64, numBlocks: 5 };

/**
 * nbi's default featurizer. Depth by nbi's rule of thumb, round(log2 L − 5) = 2 for L = 128
 * (`featurizers.defaultDepth(128)`): one max-pool, so the GRU runs over 64 steps of 64 channels.
 */
export const featurizer: FeaturizerConfig = {
  type: "resnet-gru",
  dimIn: 1,
  depth: 2,
  length: LENGTH,
};
