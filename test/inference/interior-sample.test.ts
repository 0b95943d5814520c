/**
 * `NBI.sample`'s leakage correction: draws in the float64 band at a two-sided bound are rejected
 * and drawn again; a surrogate that does not leak gives exactly its own draws.
 */
import { describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { hostKey, uniforms } from "../../src/inference/host.js";
import { interiorRows, interiorSample, LEAK_BAND } from "../../src/inference/interior-sample.js";
import type { Array as Key } from "../../src/trace/array.js";

const lower = Float64Array.of(-3, 0, Number.NEGATIVE_INFINITY);
const upper = Float64Array.of(3, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);

/** m rows of 3: uniform inside the box, a share `leak` of them put 1e-12 of the width from θ0's lower bound. */
function sampler(leak: number, calls: number[]) {
  return async (key: Key, m: number) => {
    calls.push(m);
    const u = uniforms(key, 4 * m);
    const out = new Float64Array(3 * m);
    for (let i = 0; i < m; i++) {
      out[3 * i] = u[4 * i + 3]! < leak ? -3 + 6e-12 : -3 + 6 * u[4 * i]!;
      out[3 * i + 1] = 5 * u[4 * i + 1]!;
      out[3 * i + 2] = 10 * (u[4 * i + 2]! - 0.5);
    }
    return out;
  };
}

describe("interiorRows", () => {
  it("rejects rows within LEAK_BAND of a two-sided interval's width from a bound, and only those", () => {
    const w = 6;
    const theta = Float64Array.of(
      -3 + 0.5 * LEAK_BAND * w,
      1,
      0, // in θ0's lower band
      3 - 0.5 * LEAK_BAND * w,
      1,
      0, // in θ0's upper band
      -3 + 2 * LEAK_BAND * w,
      1,
      0, // just outside the band
      0,
      1e-15,
      -1e300, // θ1 one-sided, θ2 unbounded: never rejected
    );
    expect(Array.from(interiorRows(theta, lower, upper))).toEqual([0, 0, 1, 1]);
  });
});

describe("interiorSample", () => {
  it("a surrogate that leaks 90% of its draws: n interior draws, acceptance about 10%", async () => {
    const calls: number[] = [];
    const { theta, acceptance } = await interiorSample(
      sampler(0.9, calls),
      lower,
      upper,
      hostKey(1),
      2000,
    );
    expect(theta.length).toBe(6000);
    expect(interiorRows(theta, lower, upper).every((v) => v === 1)).toBe(true);
    expect(acceptance).toBeGreaterThan(0.07);
    expect(acceptance).toBeLessThan(0.13);
    expect(calls.length).toBeGreaterThan(1);
  });

  it("a surrogate that does not leak: exactly its own first batch, drawn once", async () => {
    const calls: number[] = [];
    const draw = sampler(0, calls);
    const { theta, acceptance } = await interiorSample(draw, lower, upper, hostKey(2), 500);
    expect(calls).toEqual([500]);
    expect(acceptance).toBe(1);
    expect(theta).toEqual(await draw(hostKey(2), 500));
  });

  it("a surrogate whose draws all lie on a bound: a clear error, not an endless loop", async () => {
    await expect(interiorSample(sampler(1, []), lower, upper, hostKey(3), 10)).rejects.toThrow(
      NbiError,
    );
    await expect(interiorSample(sampler(1, []), lower, upper, hostKey(3), 10)).rejects.toThrow(
      /sample: the surrogate put almost all its draws on the prior's bounds \(0 of 10 inside/,
    );
  });
});
