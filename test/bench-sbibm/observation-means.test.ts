import { describe, expect, it } from "vitest";
import { observationMeans, type Row } from "../../bench/sbibm/run.js";

/** A row with the fields the means read; the rest are not looked at. */
const row = (
  obs: number,
  c2st: number | null,
  kl: number,
  ess: number,
  meanErr: number,
  method = "auto/auto",
) =>
  ({
    task: "gaussian_linear_uniform",
    obs,
    budget: 10000,
    method,
    flowType: "maf",
    featurizer: "mlp",
    c2stRaw: c2st,
    klRaw: kl,
    ess,
    meanErrSigma: meanErr,
    sbiNpe: 0.553,
    sbiSnpe: 0.527,
  }) as unknown as Row;

describe("bench:sbibm's means over observations", () => {
  it("averages the raw surrogate's C2ST and KL per task × budget × method over its observations", () => {
    const table = observationMeans([
      row(1, 0.6, 1.0, 5000, 0.04),
      row(2, 0.64, 0.5, 4000, 0.06),
      row(3, null, 0.9, 4500, 0.05), // a run without the C2ST: left out of its mean only
      row(1, 0.7, 2.0, 100, 0.3, "anpe"), // one observation: no line
    ]);
    const lines = table.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe(
      "| gaussian_linear_uniform | 10000 | auto/auto | 1,2,3 | 0.620 | 0.800 | 4000–5000 | 0.060 | 0.553 / 0.527 |",
    );
  });

  it("is empty when no method ran on two observations", () => {
    expect(observationMeans([row(1, 0.6, 1, 5000, 0.04)])).toBe("");
  });
});
