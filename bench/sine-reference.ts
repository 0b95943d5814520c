/**
 * The exact posterior of nbi's sine light curve, x(t) = A sin(ωt + φ0) + N(0, σ²) under uniform
 * priors on a box, by dense quadrature — for the tests' moments and the benchmark's KL(ref‖q).
 *
 * With a = A cos φ0 and b = A sin φ0 the model is linear, so at a given ω the log-likelihood of any
 * (φ0, A) is a quadratic form in five sufficient statistics: a grid cell costs O(1) and a grid of
 * ~2·10⁷ cells runs in about a second. Pass 1 (coarse ω over the whole prior) finds the mode's
 * region and the mass outside it; pass 2 refines a window of ±12 σ_ω around it.
 *
 * Draws come from the grid's piecewise-constant density g (a cell by its mass, uniform inside it)
 * and carry the exact importance weights p/g, so expectations under p — the KL in particular — are
 * exact up to Monte Carlo error. Checked two ways: the evidence by midpoint quadrature against its
 * importance-sampling estimate from the draws (`zCheck`), and the window's missing mass from pass 1.
 */
import { hostKey, uniforms } from "../src/inference/host.js";

export interface SineBounds {
  readonly phi: readonly [number, number];
  readonly a: readonly [number, number];
  readonly omega: readonly [number, number];
}

/** nbi's priors: φ0 ~ U(0, 2π), A ~ U(1, 5), ω ~ U(2π, 12π). */
export const NBI_SINE_BOUNDS: SineBounds = {
  phi: [0, 2 * Math.PI],
  a: [1, 5],
  omega: [2 * Math.PI, 12 * Math.PI],
};

export interface SineReference {
  /** Posterior means of (φ0, A, ω). */
  readonly mean: [number, number, number];
  /** Posterior standard deviations of (φ0, A, ω). */
  readonly std: [number, number, number];
  /** log p(x) (the evidence) by midpoint quadrature. */
  readonly logZ: number;
  /** Posterior mass outside pass 2's ω window, from pass 1 (should be negligible). */
  readonly massOutside: number;
  /** Exact log p(θ | x) of each row of θ (n × 3; −∞ outside the prior). */
  logDensity(theta: ArrayLike<number>): Float64Array;
  /**
   * n draws from the grid density g with their self-normalised importance weights p/g, and the
   * evidence's importance-sampling estimate from them (it should match `logZ`).
   */
  draw(n: number, seed?: number): { theta: Float64Array; weights: Float64Array; logZIs: number };
}

/** The grid: cell centres per axis and the sufficient statistics per ω. */
interface Pass {
  phis: Float64Array;
  cosP: Float64Array;
  sinP: Float64Array;
  amps: Float64Array;
  omegas: Float64Array;
  /** Per ω slice: log Σ_cells exp(ll) (cells of equal volume). */
  sliceLogMass: Float64Array;
  logSum: number;
  mean: [number, number, number];
  std: [number, number, number];
  cellVolume: number;
}

function sufficient(t: readonly number[], xObs: ArrayLike<number>, w: number) {
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
  return { ss, cc, sc, xs, xc };
}

const centres = (lo: number, hi: number, n: number) =>
  Float64Array.from({ length: n }, (_, i) => lo + ((i + 0.5) * (hi - lo)) / n);

export function sineReference(
  t: readonly number[],
  xObs: ArrayLike<number>,
  sigma: number,
  bounds: SineBounds = NBI_SINE_BOUNDS,
): SineReference {
  const inv = 1 / (sigma * sigma);
  let xx = 0;
  for (let i = 0; i < t.length; i++) xx += xObs[i]! * xObs[i]!;
  // The log-likelihood's constant part, so logDensity and logZ are exact, not relative.
  const llConst = -0.5 * inv * xx - 0.5 * t.length * Math.log(2 * Math.PI * sigma * sigma);
  const logVolume = Math.log(
    (bounds.phi[1] - bounds.phi[0]) *
      (bounds.a[1] - bounds.a[0]) *
      (bounds.omega[1] - bounds.omega[0]),
  );
  const quad = (
    s: ReturnType<typeof sufficient>,
    a: number,
    b: number, // −½σ⁻²(a²ss + b²cc + 2ab·sc − 2(a·xs + b·xc)), the θ-dependent part
  ) => -0.5 * inv * (a * a * s.ss + b * b * s.cc + 2 * a * b * s.sc - 2 * (a * s.xs + b * s.xc));

  const integrate = (wLo: number, wHi: number, nW: number, nPhi: number, nA: number): Pass => {
    const phis = centres(bounds.phi[0], bounds.phi[1], nPhi);
    const cosP = phis.map(Math.cos);
    const sinP = phis.map(Math.sin);
    const amps = centres(bounds.a[0], bounds.a[1], nA);
    const omegas = centres(wLo, wHi, nW);
    const sliceLogMass = new Float64Array(nW);
    // Online log-sum-exp: sums are kept relative to the largest log-likelihood seen so far.
    let max = Number.NEGATIVE_INFINITY;
    let z = 0;
    const m1 = [0, 0, 0];
    const m2 = [0, 0, 0];
    const row = new Float64Array(nPhi * nA);
    for (let k = 0; k < nW; k++) {
      const w = omegas[k]!;
      const s = sufficient(t, xObs, w);
      let rowMax = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < nPhi; i++)
        for (let j = 0; j < nA; j++) {
          const v = quad(s, amps[j]! * cosP[i]!, amps[j]! * sinP[i]!);
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
      let slice = 0;
      for (let i = 0; i < nPhi; i++)
        for (let j = 0; j < nA; j++) {
          const p = Math.exp(row[i * nA + j]! - max);
          if (p === 0) continue;
          slice += p;
          m1[0]! += p * phis[i]!;
          m2[0]! += p * phis[i]! * phis[i]!;
          m1[1]! += p * amps[j]!;
          m2[1]! += p * amps[j]! * amps[j]!;
          m1[2]! += p * w;
          m2[2]! += p * w * w;
        }
      z += slice;
      sliceLogMass[k] = Math.log(slice) + max;
    }
    const mean = m1.map((m) => m / z) as [number, number, number];
    const std = m2.map((m, d) => Math.sqrt(Math.max(m / z - mean[d]! ** 2, 0))) as [
      number,
      number,
      number,
    ];
    const cellVolume =
      ((bounds.phi[1] - bounds.phi[0]) / nPhi) *
      ((bounds.a[1] - bounds.a[0]) / nA) *
      ((wHi - wLo) / nW);
    return {
      phis,
      cosP,
      sinP,
      amps,
      omegas,
      sliceLogMass,
      logSum: Math.log(z) + max,
      mean,
      std,
      cellVolume,
    };
  };

  const coarse = integrate(bounds.omega[0], bounds.omega[1], 4000, 128, 64);
  const span = Math.max(12 * coarse.std[2], 0.05);
  const lo = Math.max(bounds.omega[0], coarse.mean[2] - span);
  const hi = Math.min(bounds.omega[1], coarse.mean[2] + span);
  let inside = 0;
  coarse.omegas.forEach((w, k) => {
    if (w >= lo && w <= hi) inside += Math.exp(coarse.sliceLogMass[k]! - coarse.logSum);
  });
  const nW = 600;
  const nPhi = 256;
  const nA = 128;
  const fine = integrate(lo, hi, nW, nPhi, nA);
  // p(x) = ∫ L(θ) p(θ) dθ with p(θ) = 1/V on the box: midpoint rule over the window's cells.
  const logZ = llConst + fine.logSum + Math.log(fine.cellVolume) - logVolume;

  const logLike = (phi: number, a: number, w: number) =>
    llConst + quad(sufficient(t, xObs, w), a * Math.cos(phi), a * Math.sin(phi));
  const inPrior = (phi: number, a: number, w: number) =>
    phi >= bounds.phi[0] &&
    phi <= bounds.phi[1] &&
    a >= bounds.a[0] &&
    a <= bounds.a[1] &&
    w >= bounds.omega[0] &&
    w <= bounds.omega[1];

  return {
    mean: fine.mean,
    std: fine.std,
    logZ,
    massOutside: Math.max(0, 1 - inside),
    logDensity(theta) {
      const n = theta.length / 3;
      const out = new Float64Array(n);
      for (let r = 0; r < n; r++) {
        const [phi, a, w] = [theta[3 * r]!, theta[3 * r + 1]!, theta[3 * r + 2]!];
        out[r] = inPrior(phi, a, w)
          ? logLike(phi, a, w) - logVolume - logZ
          : Number.NEGATIVE_INFINITY;
      }
      return out;
    },
    draw(n, seed = 0) {
      // Slices by their mass (sorted uniforms walk the cumulative sums once), then cells within.
      const u = Float64Array.from(uniforms(hostKey(seed), n)).sort();
      const jitter = uniforms(hostKey(seed + 1), 4 * n);
      const theta = new Float64Array(3 * n);
      const logW = new Float64Array(n);
      const dPhi = fine.phis[1]! - fine.phis[0]!;
      const dA = fine.amps[1]! - fine.amps[0]!;
      const dW = fine.omegas[1]! - fine.omegas[0]!;
      const cells = new Float64Array(nPhi * nA);
      let r = 0;
      let cum = 0;
      for (let k = 0; k < nW && r < n; k++) {
        const sliceP = Math.exp(fine.sliceLogMass[k]! - fine.logSum);
        const end = k === nW - 1 ? 1.1 : cum + sliceP;
        const first = r;
        while (r < n && u[r]! < end) r++;
        cum = end;
        if (r === first) continue;
        // This slice's cells, as cumulative masses relative to the slice's.
        const w0 = fine.omegas[k]!;
        const s = sufficient(t, xObs, w0);
        let acc = 0;
        for (let c = 0; c < nPhi * nA; c++) {
          const i = Math.floor(c / nA);
          const j = c % nA;
          const v = quad(s, fine.amps[j]! * fine.cosP[i]!, fine.amps[j]! * fine.sinP[i]!);
          acc += Math.exp(v + llConst - (fine.sliceLogMass[k]! + llConst));
          cells[c] = acc;
        }
        for (let q = first; q < r; q++) {
          const target = jitter[4 * q]! * acc;
          let loC = 0;
          let hiC = nPhi * nA - 1;
          while (loC < hiC) {
            const mid = (loC + hiC) >> 1;
            if (cells[mid]! < target) loC = mid + 1;
            else hiC = mid;
          }
          const i = Math.floor(loC / nA);
          const j = loC % nA;
          const phi = fine.phis[i]! + (jitter[4 * q + 1]! - 0.5) * dPhi;
          const a = fine.amps[j]! + (jitter[4 * q + 2]! - 0.5) * dA;
          const w = w0 + (jitter[4 * q + 3]! - 0.5) * dW;
          theta.set([phi, a, w], 3 * q);
          const cellLl = quad(s, fine.amps[j]! * fine.cosP[i]!, fine.amps[j]! * fine.sinP[i]!);
          // p/g up to a constant: the exact likelihood over the cell centre's.
          logW[q] = logLike(phi, a, w) - llConst - cellLl;
        }
      }
      let m = Number.NEGATIVE_INFINITY;
      for (const v of logW) m = Math.max(m, v);
      let sum = 0;
      const weights = new Float64Array(n);
      for (let q = 0; q < n; q++) sum += weights[q] = Math.exp(logW[q]! - m);
      for (let q = 0; q < n; q++) weights[q]! /= sum;
      // E_g[p/g] = 1, so the mean ratio rescales the quadrature's evidence.
      const logZIs = logZ + Math.log(sum / n) + m;
      return { theta, weights, logZIs };
    },
  };
}

/**
 * KL(ref ‖ q) in nats from the reference's weighted draws and log q at them (−∞ where q has no
 * mass gives +∞). Also the draws' effective sample size, so a caller can judge the estimate.
 */
export function klFromReference(
  ref: SineReference,
  draws: { theta: Float64Array; weights: Float64Array },
  logQ: Float64Array,
): { kl: number; ess: number } {
  const logP = ref.logDensity(draws.theta);
  let kl = 0;
  let sq = 0;
  for (let i = 0; i < logQ.length; i++) {
    kl += draws.weights[i]! * (logP[i]! - logQ[i]!);
    sq += draws.weights[i]! ** 2;
  }
  return { kl, ess: 1 / sq };
}
