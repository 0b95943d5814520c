import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { hostKey } from "../../src/inference/host.js";
import {
  empirical,
  fromSpec,
  independent,
  logUniform,
  multivariateNormal,
  normal,
  type Prior,
  resolvePriors,
  truncatedNormal,
  uniform,
} from "../../src/inference/priors.js";
import {
  erf,
  erfc,
  logNdtr,
  logSumExp,
  ndtr,
  ndtri,
  ndtriExp,
} from "../../src/inference/special.js";

const relClose = (got: number, want: number, tol: number): void => {
  expect(Math.abs(got - want)).toBeLessThanOrEqual(tol * Math.abs(want));
};

const expectNbiError = (f: () => unknown, message: RegExp): void => {
  expect(f).toThrow(NbiError);
  expect(f).toThrow(message);
};

/** Adaptive Simpson quadrature (tolerance in absolute terms). */
function integrate(f: (x: number) => number, a: number, b: number, tol = 1e-11): number {
  const simpson = (fa: number, fm: number, fb: number, h: number) => (h / 6) * (fa + 4 * fm + fb);
  const step = (
    a: number,
    b: number,
    fa: number,
    fm: number,
    fb: number,
    whole: number,
    tol: number,
    depth: number,
  ): number => {
    const m = (a + b) / 2;
    const lm = (a + m) / 2;
    const rm = (m + b) / 2;
    const flm = f(lm);
    const frm = f(rm);
    const left = simpson(fa, flm, fm, m - a);
    const right = simpson(fm, frm, fb, b - m);
    if (depth <= 0 || Math.abs(left + right - whole) <= 15 * tol) {
      return left + right + (left + right - whole) / 15;
    }
    return (
      step(a, m, fa, flm, fm, left, tol / 2, depth - 1) +
      step(m, b, fm, frm, fb, right, tol / 2, depth - 1)
    );
  };
  // Split first so that narrow features are not missed by the first coarse estimate.
  const pieces = 64;
  let total = 0;
  for (let i = 0; i < pieces; i++) {
    const lo = a + ((b - a) * i) / pieces;
    const hi = a + ((b - a) * (i + 1)) / pieces;
    const [fa, fm, fb] = [f(lo), f((lo + hi) / 2), f(hi)];
    total += step(lo, hi, fa, fm, fb, simpson(fa, fm, fb, hi - lo), tol / pieces, 40);
  }
  return total;
}

/** Kolmogorov–Smirnov statistic of a sample against an exact CDF. */
function ksStatistic(sample: Float64Array, cdf: (x: number) => number): number {
  const xs = Float64Array.from(sample).sort();
  const n = xs.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const F = cdf(xs[i]!);
    d = Math.max(d, F - i / n, (i + 1) / n - F);
  }
  return d;
}

/** CDF of Normal(mu, s) truncated to [lo, hi], in log space on the tail side (for far tails). */
function truncatedNormalCdf(mu: number, s: number, lo: number, hi: number) {
  const a = (lo - mu) / s;
  const b = (hi - mu) / s;
  return (x: number): number => {
    const z = (x - mu) / s;
    if (z <= a) return 0;
    if (z >= b) return 1;
    if (a >= 0) {
      // Survival through log Q(t) = log Φ(−t).
      const [la, lz, lb] = [logNdtr(-a), logNdtr(-z), logNdtr(-b)];
      return 1 - (Math.exp(lz - la) * -Math.expm1(lb - lz)) / -Math.expm1(lb - la);
    }
    const [la, lz, lb] = [logNdtr(a), logNdtr(z), logNdtr(b)];
    return (Math.exp(lz - lb) * -Math.expm1(la - lz)) / -Math.expm1(la - lb);
  };
}

/** CDF of the normalised piecewise-linear density on a grid. */
function piecewiseLinearCdf(grid: number[], density: number[]) {
  const cum = [0];
  for (let i = 1; i < grid.length; i++) {
    cum.push(cum[i - 1]! + ((density[i - 1]! + density[i]!) / 2) * (grid[i]! - grid[i - 1]!));
  }
  const total = cum[cum.length - 1]!;
  return (x: number): number => {
    if (x <= grid[0]!) return 0;
    if (x >= grid[grid.length - 1]!) return 1;
    let k = 0;
    while (grid[k + 1]! < x) k++;
    const d = x - grid[k]!;
    const slope = (density[k + 1]! - density[k]!) / (grid[k + 1]! - grid[k]!);
    return (cum[k]! + density[k]! * d + (slope * d * d) / 2) / total;
  };
}

interface Case {
  name: string;
  prior: Prior;
  cdf: (x: number) => number;
  range: [number, number]; // where (nearly) all the mass lies, for quadrature
}

const TWO_PI = 2 * Math.PI;
const eGrid = [0, 1, 2, 3, 5];
const eDensity = [0, 2, 1, 1, 0];
const cases: Case[] = [
  { name: "uniform", prior: uniform(0, TWO_PI), cdf: (x) => x / TWO_PI, range: [0, TWO_PI] },
  {
    name: "normal",
    prior: normal(1.5, 0.3),
    cdf: (x) => ndtr((x - 1.5) / 0.3),
    range: [1.5 - 12 * 0.3, 1.5 + 12 * 0.3],
  },
  {
    name: "logUniform",
    prior: logUniform(0.1, 100),
    cdf: (x) => Math.log(x / 0.1) / Math.log(1000),
    range: [0.1, 100],
  },
  {
    name: "truncatedNormal (straddling the mean)",
    prior: truncatedNormal(0, 1, -1, 2),
    cdf: truncatedNormalCdf(0, 1, -1, 2),
    range: [-1, 2],
  },
  {
    name: "truncatedNormal (lo = mu + 8σ)",
    prior: truncatedNormal(2, 0.5, 6, Number.POSITIVE_INFINITY),
    cdf: truncatedNormalCdf(2, 0.5, 6, Number.POSITIVE_INFINITY),
    range: [6, 8],
  },
  {
    name: "truncatedNormal (hi = mu − 8σ)",
    prior: truncatedNormal(-1, 2, Number.NEGATIVE_INFINITY, -17),
    cdf: truncatedNormalCdf(-1, 2, Number.NEGATIVE_INFINITY, -17),
    range: [-25, -17],
  },
  {
    name: "truncatedNormal (40σ out, where Φ underflows)",
    prior: truncatedNormal(0, 1, 40, 41),
    cdf: truncatedNormalCdf(0, 1, 40, 41),
    range: [40, 41],
  },
  {
    name: "empirical",
    prior: empirical(eGrid, eDensity),
    cdf: piecewiseLinearCdf(eGrid, eDensity),
    range: [0, 5],
  },
];

const density = (p: Prior) => (x: number) => Math.exp(p.logProb(Float64Array.of(x))[0]!);

describe("special functions", () => {
  it("erf and erfc match known values", () => {
    const erfs: [number, number][] = [
      [0.1, 0.11246291601828488],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [1.5, 0.9661051464753108],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
    ];
    for (const [x, v] of erfs) {
      relClose(erf(x), v, 1e-15);
      relClose(erf(-x), -v, 1e-15);
    }
    expect(erf(0)).toBe(0);
    expect(erf(Number.POSITIVE_INFINITY)).toBe(1);
    const erfcs: [number, number][] = [
      [-1, 1.842700792949715],
      [0.5, 0.4795001221869535],
      [2, 0.004677734981047266],
      [5, 1.537459794428035e-12],
      [10, 2.088487583762545e-45],
      [26, 5.663192408856143e-296],
    ];
    for (const [x, v] of erfcs) relClose(erfc(x), v, 1e-14);
    expect(erfc(30)).toBe(0);
    expect(Number.isNaN(erf(Number.NaN))).toBe(true);
  });

  it("logNdtr is exact far into the lower tail", () => {
    relClose(logNdtr(0), -Math.LN2, 1e-15);
    relClose(logNdtr(5), -2.866516129637636e-7, 1e-13);
    relClose(logNdtr(-10), -53.23128515051247, 1e-14);
    relClose(logNdtr(-40), -804.6084420137538, 1e-14);
    relClose(logNdtr(-1000), -500007.82669481216, 1e-14);
    expect(logNdtr(Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    expect(logNdtr(Number.POSITIVE_INFINITY)).toBe(0);
  });

  it("ndtri matches known values", () => {
    relClose(ndtri(0.975), 1.959963984540054, 1e-15);
    relClose(ndtri(0.025), -1.959963984540054, 1e-15);
    relClose(ndtri(0.6), 0.2533471031357998, 1e-15);
    relClose(ndtri(0.999), 3.0902323061678136, 1e-14);
    relClose(ndtri(1e-10), -6.361340902404057, 1e-15);
    relClose(ndtri(1e-300), -37.0470962993612, 1e-15);
    expect(ndtri(0.5)).toBe(0);
    expect(ndtri(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(ndtri(1)).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(ndtri(-0.1))).toBe(true);
    expect(Number.isNaN(ndtri(1.1))).toBe(true);
    relClose(ndtriExp(-1000), -44.6157477319694, 1e-14);
  });

  it("ndtri inverts Φ over a wide range", () => {
    // Lower half: p carries full relative precision, so x comes back to ~1e-15.
    fc.assert(
      fc.property(fc.double({ min: -37, max: 0, noNaN: true }), (x) => {
        expect(Math.abs(ndtri(ndtr(x)) - x)).toBeLessThanOrEqual(1e-13 * (1 + Math.abs(x)));
      }),
    );
    // Upper half: p = Φ(x) near 1 keeps only absolute precision 2^-53, so x is good to ε/φ(x).
    fc.assert(
      fc.property(fc.double({ min: 0, max: 6, noNaN: true }), (x) => {
        const tol = 1e-14 + (4e-16 * Math.sqrt(2 * Math.PI)) / Math.exp((-x * x) / 2);
        expect(Math.abs(ndtri(ndtr(x)) - x)).toBeLessThanOrEqual(tol);
      }),
    );
  });

  it("ndtriExp inverts logNdtr, including where Φ underflows", () => {
    fc.assert(
      fc.property(fc.double({ min: -1e4, max: 30, noNaN: true }), (x) => {
        expect(Math.abs(ndtriExp(logNdtr(x)) - x)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(x)));
      }),
    );
  });

  it("logSumExp is stable and handles empty and infinite inputs", () => {
    relClose(logSumExp([1000, 1000]), 1000 + Math.LN2, 1e-15);
    relClose(logSumExp([-1000, -1000]), -1000 + Math.LN2, 1e-15);
    relClose(logSumExp([0.1, -2, 3]), Math.log(Math.exp(0.1) + Math.exp(-2) + Math.exp(3)), 1e-15);
    expect(logSumExp([])).toBe(Number.NEGATIVE_INFINITY);
    expect(logSumExp([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY])).toBe(
      Number.NEGATIVE_INFINITY,
    );
    expect(logSumExp([1, Number.POSITIVE_INFINITY])).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(logSumExp([1, Number.NaN]))).toBe(true);
  });
});

describe.each(cases)("prior: $name", ({ prior, cdf, range }) => {
  const n = 20000;
  const key = hostKey(2024);

  it("log density integrates to 1 and is −Infinity outside the support", () => {
    expect(integrate(density(prior), range[0], range[1])).toBeCloseTo(1, 8);
    const outside = Float64Array.of(prior.lower[0]! - 1, prior.upper[0]! + 1, Number.NaN);
    for (const lp of prior.logProb(outside)) expect(lp).toBe(Number.NEGATIVE_INFINITY);
    expect([...prior.inSupport(outside)]).toEqual([0, 0, 0]);
  });

  it("samples are deterministic per key, inside the support and follow the CDF (KS)", () => {
    const x = prior.sample(key, n);
    expect(x).toHaveLength(n);
    expect(prior.sample(key, n)).toEqual(x);
    expect(prior.sample(hostKey(7), n)).not.toEqual(x);
    expect(x.every((v) => Number.isFinite(v) && v >= prior.lower[0]! && v <= prior.upper[0]!)).toBe(
      true,
    );
    expect(prior.inSupport(x).every((s) => s === 1)).toBe(true);
    // Critical value of the KS statistic at α = 0.001 is 1.95/√n.
    expect(ksStatistic(x, cdf)).toBeLessThan(1.95 / Math.sqrt(n));
  });

  it("mean() and std() match quadrature and the sample", () => {
    const f = density(prior);
    const m = integrate((x) => x * f(x), range[0], range[1]);
    const sd = Math.sqrt(integrate((x) => (x - m) ** 2 * f(x), range[0], range[1]));
    relClose(prior.mean()[0]!, m, 1e-7);
    relClose(prior.std()[0]!, sd, 1e-6);
    const x = prior.sample(key, n);
    const sampleMean = x.reduce((s, v) => s + v, 0) / n;
    const sampleSd = Math.sqrt(x.reduce((s, v) => s + (v - sampleMean) ** 2, 0) / (n - 1));
    expect(Math.abs(sampleMean - m)).toBeLessThan((5 * sd) / Math.sqrt(n));
    expect(Math.abs(sampleSd / sd - 1)).toBeLessThan(0.05);
  });

  it("toJSON / fromSpec round-trips through JSON text", () => {
    const back = fromSpec(JSON.parse(JSON.stringify(prior.toJSON())));
    const xs = Float64Array.from(
      { length: 41 },
      (_, i) => range[0] - 1 + ((range[1] - range[0] + 2) * i) / 40,
    );
    expect(back.logProb(xs)).toEqual(prior.logProb(xs));
    expect(back.sample(key, 100)).toEqual(prior.sample(key, 100));
    expect(String(back)).toBe(String(prior));
    expect(back.labels).toEqual(["θ0"]);
  });
});

describe("one-dimensional priors", () => {
  it("describe themselves readably", () => {
    expect(String(uniform(0, TWO_PI))).toBe("uniform(0, 6.283)");
    expect(String(normal(1, 0.1))).toBe("normal(1, 0.1)");
    expect(String(truncatedNormal(0, 1, 0, Number.POSITIVE_INFINITY))).toBe(
      "truncatedNormal(0, 1, 0, inf)",
    );
    expect(String(empirical(eGrid, eDensity))).toBe("empirical(5 points on [0, 5])");
  });

  it("uniform density is 1/(hi − lo), including at the closed ends", () => {
    const lp = uniform(2, 6).logProb(Float64Array.of(2, 4, 6));
    for (const v of lp) relClose(v, -Math.log(4), 1e-15);
  });

  it("truncatedNormal samples stay finite and inside far in either tail", () => {
    const key = hostKey(3);
    for (const [mu, s, lo, hi] of [
      [0, 1, 8, Number.POSITIVE_INFINITY],
      [5, 2, Number.NEGATIVE_INFINITY, 5 - 16],
      [0, 1, 100, 100.5],
      [0, 1, -1e3, -999],
    ] as const) {
      const p = truncatedNormal(mu, s, lo, hi);
      const x = p.sample(key, 5000);
      expect(x.every((v) => Number.isFinite(v) && v >= lo && v <= hi)).toBe(true);
      expect(p.logProb(x).every((v) => Number.isFinite(v))).toBe(true);
    }
  });

  it("empirical density is zero (and outside the support) on zero-density stretches", () => {
    const p = empirical([0, 1, 2, 3], [1, 0, 0, 1]);
    expect([...p.inSupport(Float64Array.of(0.5, 1.5, 2.5))]).toEqual([1, 0, 1]);
    relClose(p.logProb(Float64Array.of(0))[0]!, Math.log(1), 1e-15); // area 1 already
    const x = p.sample(hostKey(1), 5000);
    expect(p.inSupport(x).every((s) => s === 1)).toBe(true);
  });
});

describe("independent and resolvePriors", () => {
  const named = independent({
    phi0: uniform(0, TWO_PI),
    A: logUniform(0.1, 10),
    s: normal(0, 1),
  });

  it("takes labels from object keys and describes itself", () => {
    expect(named.dim).toBe(3);
    expect(named.labels).toEqual(["phi0", "A", "s"]);
    expect(String(named)).toBe(
      "independent{phi0: uniform(0, 6.283), A: logUniform(0.1, 10), s: normal(0, 1)}",
    );
    expect([...named.lower]).toEqual([0, 0.1, Number.NEGATIVE_INFINITY]);
    expect([...named.upper]).toEqual([TWO_PI, 10, Number.POSITIVE_INFINITY]);
    expect(named.mean()[2]).toBe(0);
    expect(named.std()[0]).toBeCloseTo(TWO_PI / Math.sqrt(12), 14);
  });

  it("logProb is the sum of the parts' logProbs", () => {
    const parts = [uniform(0, TWO_PI), logUniform(0.1, 10), normal(0, 1)];
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.double({ min: -1, max: 12, noNaN: true }),
            fc.double({ min: -1, max: 12, noNaN: true }),
            fc.double({ min: -5, max: 5, noNaN: true }),
          ),
          { minLength: 1, maxLength: 10 },
        ),
        (rows) => {
          const theta = Float64Array.from(rows.flat());
          const got = named.logProb(theta);
          rows.forEach((row, i) => {
            const want = row.reduce((s, v, j) => s + parts[j]!.logProb(Float64Array.of(v))[0]!, 0);
            if (want === Number.NEGATIVE_INFINITY) {
              expect(got[i]).toBe(Number.NEGATIVE_INFINITY);
              expect(named.inSupport(theta)[i]).toBe(0);
            } else relClose(got[i]!, want, 1e-14);
          });
        },
      ),
    );
  });

  it("samples deterministically, each column from its part", () => {
    const key = hostKey(11);
    const x = named.sample(key, 20000);
    expect(x).toHaveLength(60000);
    expect(named.sample(key, 20000)).toEqual(x);
    expect(named.inSupport(x).every((s) => s === 1)).toBe(true);
    const column = (j: number) => Float64Array.from({ length: 20000 }, (_, i) => x[3 * i + j]!);
    const crit = 1.95 / Math.sqrt(20000);
    expect(ksStatistic(column(0), (v) => v / TWO_PI)).toBeLessThan(crit);
    expect(ksStatistic(column(1), (v) => Math.log(v / 0.1) / Math.log(100))).toBeLessThan(crit);
    expect(ksStatistic(column(2), ndtr)).toBeLessThan(crit);
  });

  it("keeps custom labels from arrays, numbers default ones by position, and flattens", () => {
    expect(independent([uniform(0, 1), normal(0, 1)]).labels).toEqual(["θ0", "θ1"]);
    const nested = independent([independent({ a: uniform(0, 1), b: normal(0, 1) }), uniform(0, 2)]);
    expect(nested.labels).toEqual(["a", "b", "θ2"]);
    expect(String(nested)).toBe(
      "independent{a: uniform(0, 1), b: normal(0, 1), θ2: uniform(0, 2)}",
    );
    const block = independent({ x: independent([uniform(0, 1), uniform(0, 1)]), y: normal(0, 1) });
    expect(block.labels).toEqual(["x[0]", "x[1]", "y"]);
  });

  it("round-trips through toJSON / fromSpec with labels", () => {
    const back = fromSpec(JSON.parse(JSON.stringify(named.toJSON())));
    expect(back.labels).toEqual(named.labels);
    const theta = named.sample(hostKey(5), 50);
    expect(back.logProb(theta)).toEqual(named.logProb(theta));
    expect(String(back)).toBe(String(named));
    const labelled = resolvePriors(truncatedNormal(0, 1, 0, Number.POSITIVE_INFINITY), ["amp"]);
    const spec = JSON.parse(JSON.stringify(labelled.toJSON()));
    expect(spec).toEqual({
      type: "truncatedNormal",
      mu: 0,
      sigma: 1,
      lo: 0,
      hi: "Infinity",
      labels: ["amp"],
    });
    expect(fromSpec(spec).labels).toEqual(["amp"]);
  });

  it("resolvePriors accepts a prior, an array or an object, and labels override", () => {
    const u = uniform(0, 1);
    expect(resolvePriors(u)).toBe(u);
    expect(resolvePriors([u, normal(0, 1)]).dim).toBe(2);
    expect(resolvePriors({ a: u, b: u }).labels).toEqual(["a", "b"]);
    const relabelled = resolvePriors({ a: u, b: u }, ["p", "q"]);
    expect(relabelled.labels).toEqual(["p", "q"]);
    expect(String(relabelled)).toBe("independent{p: uniform(0, 1), q: uniform(0, 1)}");
    expect(resolvePriors(u, ["amp"]).labels).toEqual(["amp"]);
    expect(u.labels).toEqual(["θ0"]); // the original is unchanged
  });
});

describe("bad inputs give NbiErrors naming the argument", () => {
  const key = hostKey(0);
  it("constructors", () => {
    expectNbiError(
      () => uniform(1, 0),
      /uniform: hi expected a number greater than lo \(1\), got 0/,
    );
    expectNbiError(() => uniform(Number.NaN, 1), /uniform: lo expected a finite number, got NaN/);
    expectNbiError(
      () => uniform(0, Number.POSITIVE_INFINITY),
      /uniform: hi expected a finite number/,
    );
    expectNbiError(
      () => normal(0, 0),
      /normal: sigma expected a finite number greater than 0, got 0/,
    );
    expectNbiError(() => normal(Number.NaN, 1), /normal: mu/);
    expectNbiError(
      () => logUniform(0, 1),
      /logUniform: lo expected a finite number greater than 0/,
    );
    expectNbiError(
      () => logUniform(2, 1),
      /logUniform: hi expected a number greater than lo \(2\)/,
    );
    expectNbiError(() => truncatedNormal(0, -1, 0, 1), /truncatedNormal: sigma/);
    expectNbiError(
      () => truncatedNormal(0, 1, 2, 1),
      /truncatedNormal: hi expected a number greater than lo \(2\), got 1/,
    );
    expectNbiError(
      () => truncatedNormal(0, 1, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY),
      /truncatedNormal: lo/,
    );
    expectNbiError(
      () => empirical([0], [1]),
      /empirical: grid expected an array of at least 2 numbers/,
    );
    expectNbiError(() => empirical([0, 1, 2], [1, 1]), /empirical: density.length expected 3/);
    expectNbiError(
      () => empirical([0, 2, 1], [1, 1, 1]),
      /empirical: grid\[2\] expected a number greater than grid\[1\] \(2\), got 1/,
    );
    expectNbiError(
      () => empirical([0, 1], [1, -1]),
      /empirical: density\[1\] expected a finite number ≥ 0, got -1/,
    );
    expectNbiError(
      () => empirical([0, 1], [0, 0]),
      /empirical: density expected values enclosing a positive/,
    );
  });

  it("products, resolvePriors and fromSpec", () => {
    expectNbiError(() => independent([]), /independent: parts expected at least one prior/);
    expectNbiError(
      () => independent([uniform(0, 1), 3 as unknown as Prior]),
      /independent: parts\[1\] expected a prior/,
    );
    expectNbiError(
      () => independent([resolvePriors(uniform(0, 1), ["a"]), resolvePriors(normal(0, 1), ["a"])]),
      /independent: labels\[1\] expected a name not used by another dimension, got "a"/,
    );
    expectNbiError(
      () => resolvePriors(uniform(0, 1), ["a", "b"]),
      /resolvePriors: labels.length expected 1/,
    );
    expectNbiError(() => resolvePriors(3 as unknown as Prior), /resolvePriors: priors/);
    expectNbiError(
      () => fromSpec({ type: "beta" } as unknown as never),
      /fromSpec: spec.type expected .*got "beta"/,
    );
    expectNbiError(() => fromSpec({ type: "uniform", lo: 1, hi: 0 }), /uniform: hi/);
  });

  it("methods", () => {
    const p = independent([uniform(0, 1), normal(0, 1)]);
    expectNbiError(
      () => p.logProb(new Float64Array(3)),
      /independent.logProb: theta.length expected a multiple of dim \(2\), got 3/,
    );
    expectNbiError(
      () => uniform(0, 1).sample(key, -1),
      /uniform.sample: n expected a non-negative integer, got -1/,
    );
    expectNbiError(
      () => p.sample(key, 1.5),
      /independent.sample: n expected a non-negative integer, got 1.5/,
    );
    expect(p.sample(key, 0)).toHaveLength(0);
  });
});

describe("multivariateNormal", () => {
  const [m1, m2, s1, s2, rho] = [1, -2, 0.5, 3, 0.7];
  const cov = [
    [s1 * s1, rho * s1 * s2],
    [rho * s1 * s2, s2 * s2],
  ];
  const prior = multivariateNormal([m1, m2], cov);

  /** The bivariate normal's log density written out. */
  const closedForm = (x: number, y: number): number => {
    const [zx, zy] = [(x - m1) / s1, (y - m2) / s2];
    const q = (zx * zx - 2 * rho * zx * zy + zy * zy) / (1 - rho * rho);
    return -Math.log(2 * Math.PI * s1 * s2 * Math.sqrt(1 - rho * rho)) - q / 2;
  };

  it("logProb equals the 2-D closed form; non-finite rows are outside the support", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.double({ min: -5, max: 5, noNaN: true }),
            fc.double({ min: -20, max: 20, noNaN: true }),
          ),
          { minLength: 1, maxLength: 10 },
        ),
        (rows) => {
          const got = prior.logProb(Float64Array.from(rows.flat()));
          rows.forEach(([x, y], i) => {
            relClose(got[i]!, closedForm(x, y), 1e-13);
          });
        },
      ),
    );
    const odd = Float64Array.of(Number.NaN, 0, 0, Number.POSITIVE_INFINITY, m1, m2);
    const lp = prior.logProb(odd);
    expect([lp[0], lp[1]]).toEqual([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    relClose(lp[2]!, closedForm(m1, m2), 1e-15);
    expect([...prior.inSupport(odd)]).toEqual([0, 0, 1]);
    expect(prior.dim).toBe(2);
    expect(prior.labels).toEqual(["θ0", "θ1"]);
    expect([...prior.lower]).toEqual([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect([...prior.upper]).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
  });

  it("reads a flat row-major covariance the same, and a diagonal one is a product of normals", () => {
    const flat = multivariateNormal(Float64Array.of(m1, m2), Float64Array.from(cov.flat()));
    const theta = prior.sample(hostKey(4), 20);
    expect(flat.logProb(theta)).toEqual(prior.logProb(theta));
    const diag = multivariateNormal([0, 1, 2], [4, 0, 0, 0, 1, 0, 0, 0, 0.25]);
    const product = independent([normal(0, 2), normal(1, 1), normal(2, 0.5)]);
    const x = product.sample(hostKey(6), 50);
    const [a, b] = [diag.logProb(x), product.logProb(x)];
    for (let i = 0; i < 50; i++) relClose(a[i]!, b[i]!, 1e-14);
  });

  it("samples reproduce the mean and covariance (within Monte Carlo error), per key", () => {
    const n = 20000;
    const key = hostKey(2024);
    const x = prior.sample(key, n);
    expect(x).toHaveLength(2 * n);
    expect(prior.sample(key, n)).toEqual(x);
    expect(prior.sample(hostKey(7), n)).not.toEqual(x);
    expect(prior.sample(key, 0)).toHaveLength(0);
    const mean = [0, 1].map((j) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[2 * i + j]!;
      return s / n;
    });
    const sampleCov = [0, 1].map((j) =>
      [0, 1].map((k) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += (x[2 * i + j]! - mean[j]!) * (x[2 * i + k]! - mean[k]!);
        return s / (n - 1);
      }),
    );
    const sd = [s1, s2];
    [m1, m2].forEach((m, j) => {
      expect(Math.abs(mean[j]! - m)).toBeLessThan((5 * sd[j]!) / Math.sqrt(n));
    });
    for (let j = 0; j < 2; j++) {
      for (let k = 0; k < 2; k++) {
        // Var of a sample covariance: (Σ_jk² + Σ_jj Σ_kk) / n.
        const se = Math.sqrt((cov[j]![k]! ** 2 + cov[j]![j]! * cov[k]![k]!) / n);
        expect(Math.abs(sampleCov[j]![k]! - cov[j]![k]!)).toBeLessThan(5 * se);
      }
    }
    expect([...prior.mean()]).toEqual([m1, m2]);
    expect([...prior.std()]).toEqual([s1, s2]);
  });

  it("round-trips through JSON text and fromSpec with identical logProb, with labels", () => {
    const spec = JSON.parse(JSON.stringify(prior.toJSON()));
    expect(spec).toEqual({ type: "multivariateNormal", mean: [m1, m2], cov });
    const back = fromSpec(spec);
    const theta = prior.sample(hostKey(5), 100);
    expect(back.logProb(theta)).toEqual(prior.logProb(theta));
    expect(back.sample(hostKey(5), 100)).toEqual(theta);
    expect(String(back)).toBe(String(prior));
    expect(String(prior)).toBe("multivariateNormal([1, -2], [[0.25, 1.05], [1.05, 9]])");
    const labelled = resolvePriors(prior, ["x", "y"]);
    const again = fromSpec(JSON.parse(JSON.stringify(labelled.toJSON())));
    expect(again.labels).toEqual(["x", "y"]);
    expect(again.logProb(theta)).toEqual(prior.logProb(theta));
  });

  it("composes in independent products (flattened, labelled, round-tripped)", () => {
    const product = independent({ pos: prior, flux: logUniform(1, 100) });
    expect(product.dim).toBe(3);
    expect(product.labels).toEqual(["pos[0]", "pos[1]", "flux"]);
    expect(String(product)).toBe(
      "independent{[pos[0], pos[1]]: multivariateNormal([1, -2], [[0.25, 1.05], [1.05, 9]]), flux: logUniform(1, 100)}",
    );
    const theta = product.sample(hostKey(8), 200);
    const lp = product.logProb(theta);
    for (let i = 0; i < 200; i++) {
      const want =
        closedForm(theta[3 * i]!, theta[3 * i + 1]!) +
        logUniform(1, 100).logProb(Float64Array.of(theta[3 * i + 2]!))[0]!;
      relClose(lp[i]!, want, 1e-13);
    }
    expect(product.inSupport(theta).every((s) => s === 1)).toBe(true);
    expect([...product.mean()]).toEqual([m1, m2, product.mean()[2]]);
    const nested = independent([
      product,
      multivariateNormal([0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]),
    ]);
    expect(nested.dim).toBe(6);
    expect(nested.labels).toEqual(["pos[0]", "pos[1]", "flux", "θ3", "θ4", "θ5"]);
    const back = fromSpec(JSON.parse(JSON.stringify(nested.toJSON())));
    const x = nested.sample(hostKey(9), 20);
    expect(back.logProb(x)).toEqual(nested.logProb(x));
    expect(back.labels).toEqual(nested.labels);
    // A single block under a name keeps its type when relabelled.
    const single = independent({ pos: prior });
    expect(single.labels).toEqual(["pos[0]", "pos[1]"]);
    expect(single.toJSON()).toEqual({ ...prior.toJSON(), labels: ["pos[0]", "pos[1]"] });
  });

  it("describes larger ones by mean and standard deviation", () => {
    const big = multivariateNormal([0, 0, 0, 0], [4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect(String(big)).toBe("multivariateNormal(mean [0, 0, 0, 0], std [2, 1, 1, 1], 4×4 cov)");
  });

  it("refuses bad input with errors naming mean or cov", () => {
    expectNbiError(
      () => multivariateNormal([], []),
      /multivariateNormal: mean expected an array of at least 1 number/,
    );
    expectNbiError(
      () => multivariateNormal([0, Number.NaN], [1, 0, 0, 1]),
      /multivariateNormal: mean\[1\] expected a finite number, got NaN/,
    );
    expectNbiError(
      () => multivariateNormal([0, 0], [1, 0, 0]),
      /multivariateNormal: cov.length expected 2 rows of 2 numbers \(or 4 numbers, row-major\), got 3/,
    );
    expectNbiError(
      () => multivariateNormal([0, 0], [[1, 0]]),
      /multivariateNormal: cov.length expected 2 rows/,
    );
    expectNbiError(
      () => multivariateNormal([0, 0], [[1, 0], [0]]),
      /multivariateNormal: cov\[1\].length expected 2/,
    );
    expectNbiError(
      () => multivariateNormal([0, 0], 3 as unknown as number[]),
      /multivariateNormal: cov expected a covariance matrix/,
    );
    expectNbiError(
      () =>
        multivariateNormal(
          [0, 0],
          [
            [1, 0.5],
            [0.4, 1],
          ],
        ),
      /multivariateNormal: cov expected a symmetric matrix, got cov\[1\]\[0\] = 0.4 but cov\[0\]\[1\] = 0.5/,
    );
    expectNbiError(
      () =>
        multivariateNormal(
          [0, 0],
          [
            [1, 2],
            [2, 1],
          ],
        ),
      /multivariateNormal: cov expected a positive definite matrix .*leading 2×2 block/,
    );
    expectNbiError(
      () =>
        multivariateNormal(
          [0, 0],
          [
            [1, 1],
            [1, 1],
          ],
        ),
      /multivariateNormal: cov expected a positive definite matrix/,
    );
    expectNbiError(
      () =>
        multivariateNormal(
          [0, 0],
          [
            [0, 0],
            [0, 1],
          ],
        ),
      /multivariateNormal: cov\[0\]\[0\] expected a variance greater than 0, got 0/,
    );
    expectNbiError(
      () =>
        multivariateNormal(
          [0, 0],
          [
            [1, Number.POSITIVE_INFINITY],
            [0, 1],
          ],
        ),
      /multivariateNormal: cov\[0\]\[1\] expected a finite number, got Infinity/,
    );
    expectNbiError(
      () => fromSpec({ type: "multivariateNormal", mean: [0], cov: [[-1]] }),
      /multivariateNormal: cov\[0\]\[0\] expected a variance greater than 0/,
    );
    expectNbiError(
      () => prior.logProb(new Float64Array(3)),
      /multivariateNormal.logProb: theta.length expected a multiple of dim \(2\), got 3/,
    );
    expectNbiError(
      () => prior.sample(hostKey(0), -1),
      /multivariateNormal.sample: n expected a non-negative integer, got -1/,
    );
    // Rounding-level asymmetry (as from A·Aᵀ in floats) is accepted and averaged away.
    const nearly = multivariateNormal(
      [0, 0],
      [
        [2, 0.3 + 1e-16],
        [0.3, 1],
      ],
    );
    expect(nearly.toJSON()).toMatchObject({ type: "multivariateNormal" });
  });
});
