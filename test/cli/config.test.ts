/**
 * Config validation of `nbi fit`, called directly (no subprocess): the options of sequential
 * rounds and the multivariate-normal prior spec.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/cli/config.js";
import { fitOptions } from "../../src/cli/run.js";
import { NbiError } from "../../src/errors.js";

const file = join(process.cwd(), "virtual-config.json");
const base = {
  simulator: (theta: Float64Array) => Array.from({ length: 4 }, (_, i) => theta[0]! * i),
  priors: { a: { type: "normal", mu: 0, sigma: 1 }, b: { type: "uniform", lo: -1, hi: 1 } },
  featurizer: { type: "mlp", dimIn: 4, dimOut: 8 },
  observation: [0, 1, 2, 3],
};
const withFit = (fit: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  resolveConfig({ ...base, ...extra, fit: { nSims: 100, nRounds: 3, ...fit } }, file, {});

describe("config: fit options of sequential rounds", () => {
  it("passes loss, atoms, proposal and truncationEps through to the engine's fit options", async () => {
    const fit = { loss: "apt", atoms: 5, proposal: "truncated", truncationEps: 1e-3 };
    const run = await withFit(fit);
    expect(run.fit).toMatchObject(fit);
    expect(fitOptions(run, {})).toMatchObject({ ...fit, nSims: 100, nRounds: 3 });
    for (const loss of ["auto", "nll", "weighted-nll"]) {
      expect((await withFit({ loss })).fit.loss).toBe(loss);
    }
    for (const proposal of ["auto", "surrogate", "mixture"]) {
      expect((await withFit({ proposal })).fit.proposal).toBe(proposal);
    }
  });

  it("refuses bad values, naming each option and its allowed values in one error", async () => {
    const error = await withFit({
      loss: "kl",
      atoms: 0,
      proposal: "prior",
      truncationEps: 1,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NbiError);
    const message = (error as Error).message;
    expect(message).toContain(
      'fit.loss expected "auto", "nll", "apt", "gated", "select" or "weighted-nll", got "kl"',
    );
    expect(message).toContain("fit.atoms expected an integer ≥ 1, got 0");
    expect(message).toContain(
      'fit.proposal expected "auto", "surrogate", "truncated" or "mixture", got "prior"',
    );
    expect(message).toContain("fit.truncationEps expected a number in (0, 1), e.g. 1e-4, got 1");
    await expect(withFit({ loss: 3 })).rejects.toThrow(/fit\.loss expected "auto".*got 3/);
    await expect(withFit({ atoms: 2.5 })).rejects.toThrow(/fit\.atoms expected an integer ≥ 1/);
    await expect(withFit({ truncationEps: 0 })).rejects.toThrow(/fit\.truncationEps/);
    await expect(withFit({ nReuse: -2 })).rejects.toThrow(
      /fit\.nReuse expected an integer ≥ −1 \(−1: all rounds\) or "auto", got -2/,
    );
    for (const nReuse of ["auto", 0, -1])
      expect((await withFit({ nReuse })).fit.nReuse).toBe(nReuse);
  });
});

describe("config: a multivariate-normal prior", () => {
  it("builds a correlated block from its spec, labelled by its key", async () => {
    const run = await withFit(
      {},
      {
        priors: {
          pos: {
            type: "multivariateNormal",
            mean: [0, 1],
            cov: [
              [1, 0.5],
              [0.5, 2],
            ],
          },
          b: { type: "uniform", lo: -1, hi: 1 },
        },
      },
    );
    expect(run.prior.dim).toBe(3);
    expect(run.prior.labels).toEqual(["pos[0]", "pos[1]", "b"]);
    expect(run.flow.nDims).toBe(3);
  });

  it("says which prior's covariance is wrong", async () => {
    await expect(
      withFit(
        {},
        {
          priors: {
            pos: {
              type: "multivariateNormal",
              mean: [0, 1],
              cov: [
                [1, 2],
                [2, 1],
              ],
            },
          },
        },
      ),
    ).rejects.toThrow(/priors\.pos: multivariateNormal: cov expected a positive definite matrix/);
  });
});
