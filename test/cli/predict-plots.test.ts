/**
 * `nbi predict --plots`: the posterior predictive check of each observation, printed and written
 * as ppc.{svg,png} into the run folder; the trust verdict in the text and JSON output.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDirs } from "../helpers/temp-dirs.js";
import { FIXTURES, hasStackTrace, lines, nbi } from "./run-cli.js";

const root = tempDirs("nbi-cli-ppc-")();
const run = join(root, "run");
const obs = join(FIXTURES, "obs.csv");

describe("nbi predict --plots", () => {
  beforeAll(async () => {
    const r = await nbi(["fit", join(FIXTURES, "line.json"), "--path", run, "--quiet"]);
    expect(hasStackTrace(r.stderr)).toBe(false); // a tiny fit may warn about its weights
    expect(r.code).toBe(0);
  });

  /** `nbi predict` of the fitted run with plots and `draws` predictive replicates. */
  const predictWithPlots = (draws: string, ...extra: string[]) => [
    "predict",
    run,
    "--obs",
    obs,
    "--column",
    "flux",
    "--trust-run-dir",
    "--plots",
    "--ppc-draws",
    draws,
    ...extra,
  ];

  it("writes the posterior predictive check plot and prints the check and the verdict", async () => {
    const r = await nbi(predictWithPlots("60"));
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /posterior predictive check (passes|is marginal|fails) \(T = [\d.e+]+ over 8 points, p [=<] [\d.e-]+ from 60 replicated datasets\)/,
    );
    expect(r.stdout).toContain(`posterior predictive plot: ${join(run, "ppc.png")}`);
    // The verdict: a line when ok, a warning naming the reasons otherwise.
    expect(`${r.stdout}\n${r.stderr}`).toMatch(
      /verdict ok: |warning: (caution|do not trust this posterior): /,
    );
    const svg = readFileSync(join(run, "ppc.svg"), "utf8");
    expect(svg).toContain("observation and posterior predictive");
    expect(svg).toContain("residuals: observed − median");
    const png = readFileSync(join(run, "ppc.png"));
    expect([...png.subarray(1, 4)]).toEqual([80, 78, 71]);
  });

  it("reports the verdict and the check in --json and refuses too few draws", async () => {
    const r = await nbi(predictWithPlots("40", "--out", join(root, "json.csv"), "--json"));
    expect(r.code).toBe(0);
    const events = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const observation = events.find((e) => e.event === "observation")!;
    const trust = observation.trust as { verdict: string; distance: number };
    expect(["ok", "caution", "do-not-trust"]).toContain(trust.verdict);
    expect(trust.distance).toBeGreaterThan(0);
    const ppc = observation.ppc as { pValue: number; nDraws: number; plot: { svg: string } };
    expect(ppc.nDraws).toBe(40);
    expect(ppc.pValue).toBeGreaterThanOrEqual(0);
    expect(ppc.pValue).toBeLessThanOrEqual(1);
    expect(existsSync(ppc.plot.svg)).toBe(true);
    const bad = await nbi(["predict", run, "--obs", obs, "--ppc-draws", "5", "--trust-run-dir"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--ppc-draws expected an integer ≥ 20, got "5"');
  });
});
