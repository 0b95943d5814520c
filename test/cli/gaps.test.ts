/**
 * The CLI on light curves as they come (issue 18): `nbi predict` reads missing points ("nan",
 * empty cells) and per-point error bars (--xerr-column) from the observation's CSV, weighs and
 * plots a gapped observation, and says clearly what is wrong with the error bars; a run without
 * the gapped model refuses NaN with the engine's message; `nbi calibrate` on a gapped run applies
 * the model's gaps without warning that no noise is recorded.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDirs } from "../helpers/temp-dirs.js";
import { FIXTURES, hasStackTrace, lines, nbi } from "./run-cli.js";

const root = tempDirs("nbi-cli-gaps-")();
const gapped = join(root, "gapped");
const plain = join(root, "plain");

/** a + b·t at the line simulator's 8 times, a = 0.3, b = 1.1, with points 2 and 5 missing. */
const T = Array.from({ length: 8 }, (_, i) => i / 7);
const flux = T.map((t) => 0.3 + 1.1 * t + 0.05 * Math.cos(7 * t));
const csv = (cells: (t: number, i: number) => string, head = "t,flux,err") =>
  `${head}\n${T.map((t, i) => `${t.toFixed(6)},${cells(t, i)}`).join("\n")}\n`;
const file = (name: string, text: string) => {
  const path = join(root, name);
  writeFileSync(path, text);
  return path;
};

/** `nbi predict RUN --obs OBS` on the "flux" column with the "err" column as its error bars. */
const withErrorBars = (run: string, obs: string, ...extra: string[]) =>
  nbi([
    "predict",
    run,
    "--obs",
    obs,
    "--column",
    "flux",
    "--xerr-column",
    "err",
    "--trust-run-dir",
    ...extra,
  ]);

describe("nbi predict and calibrate on light curves with gaps", () => {
  // Missing as "nan", as an empty cell, with the sigma NaN or empty there too.
  const lc = file(
    "lc.csv",
    csv((_, i) =>
      i === 2
        ? "nan,"
        : i === 5
          ? ",NaN"
          : `${flux[i]!.toFixed(6)},${(0.15 + 0.01 * i).toFixed(3)}`,
    ),
  );

  beforeAll(async () => {
    const raw = JSON.parse(readFileSync(join(FIXTURES, "line.json"), "utf8"));
    const { observation: _, ...rest } = raw;
    const config = (name: string, fit: object, featurizer: object) => {
      const path = join(root, `${name}.json`);
      writeFileSync(
        path,
        JSON.stringify({
          ...rest,
          simulator: { ...raw.simulator, module: join(FIXTURES, "line.mjs") },
          featurizer,
          fit,
          path: join(root, name),
        }),
      );
      return path;
    };
    const fits = await Promise.all([
      nbi([
        "fit",
        config(
          "gapped",
          {
            nSims: 600,
            nRounds: 1,
            nEpochs: 6,
            batchSize: 32,
            lr: 3e-3,
            noise: { missing: [0, 0.4], sigma: [0.1, 0.3] },
          },
          { type: "mlp", dimIn: 24, dimOut: 8, hidden: [32] },
        ),
        "--quiet",
      ]),
      nbi([
        "fit",
        config(
          "plain",
          { nSims: 100, nRounds: 1, nEpochs: 1, batchSize: 32, noise: 0.2 },
          raw.featurizer,
        ),
        "--quiet",
      ]),
    ]);
    for (const r of fits) {
      expect(r.stderr.split("\n").filter((l) => l && !l.startsWith("warning:"))).toEqual([]);
      expect(r.code).toBe(0);
    }
  }, 120_000);

  it("weighs a gapped light curve with its own error bars and plots its predictive check", async () => {
    const r = await withErrorBars(
      gapped,
      lc,
      "--n",
      "300",
      "--plots",
      "--ppc-draws",
      "40",
      "--json",
    );
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.code).toBe(0);
    const events = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const obs = events.find((e) => e.event === "observation")!;
    expect(obs.surrogateOnly).toBe(false);
    expect(obs.ess as number).toBeGreaterThan(10);
    const ppc = obs.ppc as { nDraws: number; pValue: number; plot: { svg: string } };
    expect(ppc.nDraws).toBe(40);
    const svg = readFileSync(ppc.plot.svg, "utf8");
    expect(svg).toContain("over 6 observed points (2 missing)");
    expect(svg).toContain(">missing</text>"); // the legend of the crosses at missing points
    // The same as text: the check's line names the observed points.
    const text = await nbi([
      "predict",
      gapped,
      "--obs",
      lc,
      "--column",
      "1",
      "--xerr-column",
      "2",
      "--trust-run-dir",
      "--n",
      "100",
      "--plots",
      "--ppc-draws",
      "30",
      "--out",
      join(root, "text.csv"),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /posterior predictive check (passes|is marginal|fails) \(T = [\d.e+]+ over 6 observed points \(2 missing\), p [=<] /,
    );
  });

  it("says what is wrong with the error bars, in one line, before anything runs", async () => {
    const predict = (obs: string, ...extra: string[]) =>
      nbi(["predict", gapped, "--obs", obs, "--trust-run-dir", "--n", "20", ...extra]);
    const unknown = await predict(lc, "--column", "flux", "--xerr-column", "sigma");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      `${lc}: column "sigma" not found; the file has columns "t", "flux", "err"`,
    );
    // A headerless file of "flux err" rows taken whole: 16 values, 8 sigmas.
    const bare = file("bare.csv", T.map((_, i) => `${flux[i]} 0.2`).join("\n"));
    const mismatch = await predict(bare, "--xerr-column", "1");
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain(
      `${bare}: --xerr-column "1" expected one sigma per data value (16), got 8: the data are 8 rows × 2 columns; pick the data column with --column`,
    );
    const zero = file(
      "zero.csv",
      csv((_, i) => `${i === 3 ? "nan" : flux[i]},${i === 4 ? 0 : i === 3 ? "" : 0.2}`),
    );
    const bad = await predict(zero, "--column", "flux", "--xerr-column", "err");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      new RegExp(
        `${zero}:6: --xerr-column "err" expected a finite sigma > 0 where "flux" is observed, got 0\\n$`,
      ),
    );
    const empty = file(
      "empty.csv",
      csv((_, i) => `${flux[i]},${i === 1 ? "" : 0.2}`),
    );
    expect((await predict(empty, "--column", "flux", "--xerr-column", "err")).stderr).toContain(
      `${empty}:3: --xerr-column "err" expected a finite sigma > 0 where "flux" is observed, got a missing value`,
    );
    // The gapped network needs the error bars (they are a channel of its input).
    const none = await predict(lc, "--column", "flux");
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(
      /the model in .*gapped was fitted to light curves with gaps and error bars \(missing \[0,0\.4\], sigma \[0\.1,0\.3\]\): give each point's sigma, --xerr-column NAME/,
    );
    const both = await predict(lc, "--column", "flux", "--xerr-column", "err", "--xerr", "0.2");
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("give either --xerr or --xerr-column, not both");
    for (const r of [unknown, mismatch, bad, none, both])
      expect(hasStackTrace(r.stderr)).toBe(false);
  });

  it("a run without the gapped model refuses missing points with the engine's message", async () => {
    const r = await withErrorBars(plain, lc);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^nbi predict: predict: xObs expected finite values \(or fit with the gapped observation model, noise: gappedLightCurves\(\{ missing, sigma \}\), to leave missing points NaN\), got NaN at index 2\n$/,
    );
    // Without gaps the same column gives it per-point sigmas.
    const full = file(
      "full.csv",
      csv((_, i) => `${flux[i]},${0.2 + 0.01 * i}`),
    );
    const ok = await withErrorBars(
      plain,
      full,
      "--n",
      "40",
      "--out",
      join(root, "plain.csv"),
      "--quiet",
    );
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/n_eff [\d.]+ of \d+ simulations/);
  });

  it("nbi calibrate applies the gapped model model.json records, without a no-noise warning", async () => {
    const r = await nbi([
      "calibrate",
      gapped,
      "--trust-run-dir",
      "--n-test",
      "20",
      "--n-samples",
      "20",
      "--seed",
      "3",
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("no noise is recorded");
    expect(r.stdout).toMatch(/^calibration: 20 test pairs × 20 posterior draws\n/);
  });
});
