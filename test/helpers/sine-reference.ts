/**
 * Brute-force posterior moments for the sine light curve x(t) = A sin(ωt + φ0) + N(0, σ²) under
 * uniform priors, by dense quadrature. With a = A cos φ0 and b = A sin φ0 the model is linear, so
 * the log-likelihood at any (φ0, A) for a given ω is a quadratic form in five sufficient statistics:
 * each grid point costs O(1) and a 3-D grid of ~10⁸ points runs in about a second.
 */
export interface SineReference {
  mean: [number, number, number];
  std: [number, number, number];
}

export function sineReference(
  t: readonly number[],
  xObs: ArrayLike<number>,
  sigma: number,
  bounds = { phi: [0, 2 * Math.PI], a: [1, 5], omega: [2 * Math.PI, 12 * Math.PI] },
): SineReference {
  const nPhi = 256;
  const nA = 128;
  // Pass 1: a coarse ω grid over the whole prior finds the mode region; pass 2 refines around it.
  const coarse = integrate(
    t,
    xObs,
    sigma,
    bounds,
    bounds.omega[0]!,
    bounds.omega[1]!,
    4000,
    nPhi / 2,
    nA / 2,
  );
  const w0 = coarse.mean[2];
  const span = Math.max(12 * coarse.std[2], 0.05);
  const lo = Math.max(bounds.omega[0]!, w0 - span);
  const hi = Math.min(bounds.omega[1]!, w0 + span);
  return integrate(t, xObs, sigma, bounds, lo, hi, 600, nPhi, nA);
}

function integrate(
  t: readonly number[],
  xObs: ArrayLike<number>,
  sigma: number,
  bounds: { phi: number[]; a: number[] },
  wLo: number,
  wHi: number,
  nW: number,
  nPhi: number,
  nA: number,
): SineReference {
  const inv = 1 / (sigma * sigma);
  const cosP = new Float64Array(nPhi);
  const sinP = new Float64Array(nPhi);
  const phis = new Float64Array(nPhi);
  for (let i = 0; i < nPhi; i++) {
    phis[i] = bounds.phi[0]! + ((i + 0.5) * (bounds.phi[1]! - bounds.phi[0]!)) / nPhi;
    cosP[i] = Math.cos(phis[i]!);
    sinP[i] = Math.sin(phis[i]!);
  }
  const amps = Float64Array.from(
    { length: nA },
    (_, j) => bounds.a[0]! + ((j + 0.5) * (bounds.a[1]! - bounds.a[0]!)) / nA,
  );
  // Online log-sum-exp: sums are kept relative to the largest log-likelihood seen so far.
  let max = Number.NEGATIVE_INFINITY;
  let z = 0;
  const m1 = [0, 0, 0];
  const m2 = [0, 0, 0];
  const row = new Float64Array(nPhi * nA);
  for (let k = 0; k < nW; k++) {
    const w = wLo + ((k + 0.5) * (wHi - wLo)) / nW;
    let ss = 0;
    let cc = 0;
    let sc = 0;
    let xs = 0;
    let xc = 0;
    for (let i = 0; i < t.length; i++) {
      const s = Math.sin(w * t[i]!);
      const c = Math.cos(w * t[i]!);
      ss += s * s;
      cc += c * c;
      sc += s * c;
      xs += xObs[i]! * s;
      xc += xObs[i]! * c;
    }
    // A sin(ωt + φ) = (A cos φ) sin ωt + (A sin φ) cos ωt.
    let rowMax = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < nPhi; i++)
      for (let j = 0; j < nA; j++) {
        const a = amps[j]! * cosP[i]!;
        const b = amps[j]! * sinP[i]!;
        const v = -0.5 * inv * (a * a * ss + b * b * cc + 2 * a * b * sc - 2 * (a * xs + b * xc));
        row[i * nA + j] = v;
        if (v > rowMax) rowMax = v;
      }
    if (rowMax > max) {
      const f = Math.exp(max - rowMax);
      z *= f;
      for (let d = 0; d < 3; d++) {
        m1[d]! *= f;
        m2[d]! *= f;
      }
      max = rowMax;
    }
    for (let i = 0; i < nPhi; i++)
      for (let j = 0; j < nA; j++) {
        const p = Math.exp(row[i * nA + j]! - max);
        if (p === 0) continue;
        z += p;
        const v0 = phis[i]!;
        const v1 = amps[j]!;
        m1[0]! += p * v0;
        m2[0]! += p * v0 * v0;
        m1[1]! += p * v1;
        m2[1]! += p * v1 * v1;
        m1[2]! += p * w;
        m2[2]! += p * w * w;
      }
  }
  const mean = m1.map((m) => m / z) as [number, number, number];
  const std = m2.map((m, d) => Math.sqrt(Math.max(m / z - mean[d]! ** 2, 0))) as [
    number,
    number,
    number,
  ];
  return { mean, std };
}
