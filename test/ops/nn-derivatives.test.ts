import { describe, expect, it } from "vitest";
import { type Array, grad, np } from "../../src/index.js";

describe("derivatives of the neural-network helpers at their kinks and extremes", () => {
  const at = (f: (x: Array) => Array, xs: number[]) =>
    grad((x: Array) => np.sum(f(x)))(np.array(xs, { dtype: "float64" })).tolist() as number[];

  it("softplus' = sigmoid everywhere, including exactly 0 and large |x|", () => {
    const xs = [0, 1e-7, -1e-7, -50, 50, 800, -800];
    const got = at(np.softplus, xs);
    for (const [i, x] of xs.entries()) expect(got[i]).toBeCloseTo(1 / (1 + Math.exp(-x)), 12);
  });

  it("logSigmoid' = 1 - sigmoid, including exactly 0", () => {
    const xs = [0, 2, -2, 800, -800];
    const got = at(np.logSigmoid, xs);
    for (const [i, x] of xs.entries()) expect(got[i]).toBeCloseTo(1 - 1 / (1 + Math.exp(-x)), 12);
  });

  it("relu' is 0 at 0 (as JAX) and 1 above", () => {
    expect(at(np.relu, [0, 1, -1])).toEqual([0, 1, 0]);
  });
});
