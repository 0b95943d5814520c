import { describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import {
  gaussianLogLike,
  type LogLike,
  logLikelihoods,
  needsSimulation,
  thetaLogLike,
} from "../../src/inference/likelihood.js";

const expectNbiError = (f: () => unknown, message: RegExp): void => {
  expect(f).toThrow(NbiError);
  expect(f).toThrow(message);
};

const xObs = Float64Array.of(1, 2, 3);
const theta = Float64Array.of(0.5, -1, 2, 0.25); // two rows of 2 parameters
const xSim = Float32Array.of(1, 2, 3, 0, 2, 4); // two rows of 3 values

describe("gaussianLogLike", () => {
  it("is log N(xObs; xSim, diag σ²) and needs the simulation", () => {
    const logLike = gaussianLogLike([0.5, 1, 2], 3);
    expect(needsSimulation(logLike)).toBe(true);
    const norm = Math.log(0.5) + Math.log(1) + Math.log(2) + 1.5 * Math.log(2 * Math.PI);
    const ll = logLikelihoods(logLike, xObs, xSim, theta, 2);
    expect(ll[0]).toBeCloseTo(-norm, 14);
    expect(ll[1]).toBeCloseTo(-0.5 * ((1 / 0.5) ** 2 + 0 + (1 / 2) ** 2) - norm, 14);
  });

  it("logLikelihoods refuses a missing or wrongly sized xSim for it", () => {
    const logLike = gaussianLogLike(1, 3);
    expectNbiError(
      () => logLikelihoods(logLike, xObs, undefined, theta, 2),
      /logLikelihoods: xSim expected the simulations at theta .*thetaLogLike.*, got undefined/,
    );
    expectNbiError(
      () => logLikelihoods(logLike, xObs, xSim.subarray(0, 5), theta, 2),
      /logLikelihoods: xSim expected 2 × 3 values .*, got 5 values/,
    );
    expectNbiError(
      () => logLikelihoods(logLike, xObs, xSim, theta.subarray(0, 3), 2),
      /logLikelihoods: theta expected a multiple of nDims \(2\) values, got 3 values/,
    );
  });
});

describe("thetaLogLike: a likelihood of θ alone", () => {
  const seen: number[] = [];
  const fn = (x: Float32Array | Float64Array, t: Float64Array): number => {
    seen.push(t.length);
    let q = 0;
    for (const v of x) q += (v - t[0]!) ** 2;
    return -0.5 * q - t[1]!;
  };
  const logLike = thetaLogLike(fn);
  const want = [0, 1].map((i) => fn(xObs, theta.subarray(2 * i, 2 * i + 2)));

  it("declares needsSimulation false and ignores xSim", () => {
    expect(logLike.needsSimulation).toBe(false);
    expect(needsSimulation(logLike)).toBe(false);
    expect(logLike(xObs, new Float32Array(0), theta.subarray(0, 2))).toBe(want[0]);
    expect(logLike(xObs, Float32Array.of(9, 9, 9), theta.subarray(0, 2))).toBe(want[0]);
  });

  it("logLikelihoods evaluates it per row of θ without simulations, or with them", () => {
    seen.length = 0;
    expect([...logLikelihoods(logLike, xObs, undefined, theta, 2)]).toEqual(want);
    expect(seen).toEqual([2, 2]); // one call per row, with that row's θ
    expect([...logLikelihoods(logLike, xObs, xSim, theta, 2)]).toEqual(want);
    // A stale or partial xSim is not read for it, so it is no error either.
    expect([...logLikelihoods(logLike, xObs, xSim.subarray(0, 1), theta, 2)]).toEqual(want);
  });

  it("a hand-marked likelihood gets an empty xSim when none is given", () => {
    const lengths: number[] = [];
    const marked: LogLike = Object.assign(
      (_x: Float32Array | Float64Array, sim: Float32Array) => {
        lengths.push(sim.length);
        return 0;
      },
      { needsSimulation: false },
    );
    logLikelihoods(marked, xObs, undefined, theta, 2);
    expect(lengths).toEqual([0, 0]);
    // A plain function, unmarked, is taken to read the simulation.
    const plain: LogLike = () => 0;
    expect(needsSimulation(plain)).toBe(true);
    expect(needsSimulation(Object.assign(() => 0, { needsSimulation: true }))).toBe(true);
  });

  it("non-numbers become NaN (invalid); bad arguments are refused", () => {
    const bad = thetaLogLike(() => "x" as unknown as number);
    expect(Number.isNaN(logLikelihoods(bad, xObs, undefined, theta, 2)[0])).toBe(true);
    expectNbiError(
      () => thetaLogLike(3 as unknown as () => number),
      /thetaLogLike: fn expected a function \(xObs, θ\) → log p, got 3/,
    );
    expectNbiError(
      () => needsSimulation(null as unknown as LogLike),
      /needsSimulation: logLike expected a likelihood function/,
    );
  });
});
