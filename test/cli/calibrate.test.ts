/**
 * `nbi calibrate RUN_DIR` on the CLI tests' line problem: an amortized fit (no observation, one
 * round) is calibrated with --json and --plots, as text with --simulator, and a sequential run
 * folder is refused; the folder's simulator runs only when asked.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDirs } from "../helpers/temp-dirs.js";
import { FIXTURES, hasStackTrace, lines, nbi } from "./run-cli.js";

const root = tempDirs("nbi-cli-calibrate-")();
const amortized = join(root, "amortized");
const sequential = join(root, "sequential");
const simulator = `${join(FIXTURES, "line.mjs")}#line`;

describe("nbi calibrate", () => {
  beforeAll(async () => {
    const raw = JSON.parse(readFileSync(join(FIXTURES, "line.json"), "utf8"));
    const config = join(root, "amortized.json");
    // The line problem without an observation: one round from the prior, an amortized fit.
    const { observation: _, ...rest } = raw;
    writeFileSync(
      config,
      JSON.stringify({
        ...rest,
        simulator: { ...raw.simulator, module: join(FIXTURES, "line.mjs") },
        fit: { nSims: 400, nRounds: 1, nEpochs: 8, batchSize: 32, lr: 3e-3, noise: 0.2 },
        path: amortized,
      }),
    );
    const fits = await Promise.all([
      nbi(["fit", config, "--quiet"]),
      nbi(["fit", join(FIXTURES, "line.json"), "--path", sequential, "--quiet"]),
    ]);
    for (const r of fits) {
      expect(r.stderr.split("\n").filter((l) => l && !l.startsWith("warning:"))).toEqual([]);
      expect(r.code).toBe(0);
    }
  }, 120_000);

  it("runs the folder's simulator only when asked", async () => {
    const r = await nbi(["calibrate", amortized]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^nbi calibrate: .*nbi-config\.json names the simulator module .*line\.mjs \(export line\); .*pass --simulator .*, or --trust-run-dir/,
    );
    expect(hasStackTrace(r.stderr)).toBe(false);
  });

  it("reports SBC, coverage, TARP and a verdict as JSON lines, and draws the plots", async () => {
    const plots = join(root, "plots");
    const r = await nbi([
      "calibrate",
      amortized,
      "--trust-run-dir",
      "--n-test",
      "60",
      "--n-samples",
      "50",
      "--plots",
      plots,
      "--json",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const events = lines(r.stdout).map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ event: "start", command: "calibrate", nTest: 60 });
    const summary = events.at(-1);
    expect(summary).toMatchObject({
      event: "summary",
      command: "calibrate",
      labels: ["a", "b"],
      nRequested: 60,
      nTest: 60,
      nSamples: 50,
      failed: { total: 0 },
    });
    expect(summary.sbc.parameters).toHaveLength(2);
    expect(summary.sbc.parameters[0].ranks).toHaveLength(60);
    expect(summary.coverage.levels).toHaveLength(101);
    expect(summary.coverage.atLevels.map((c: { level: number }) => c.level)).toEqual([
      0.5, 0.68, 0.9, 0.95,
    ]);
    expect(typeof summary.tarp.pValue).toBe("number");
    expect(summary.verdict.summary).toMatch(/60 test pairs$/);
    expect(typeof summary.verdict.calibrated).toBe("boolean");
    for (const name of ["ranks", "coverage"]) {
      expect(existsSync(join(plots, `${name}.svg`))).toBe(true);
      const png = readFileSync(join(plots, `${name}.png`));
      expect([...png.subarray(0, 4)]).toEqual([137, 80, 78, 71]);
      expect(summary.plots[name]).toBe(join(plots, `${name}.png`));
    }
    expect(readFileSync(join(plots, "ranks.svg"), "utf8")).toContain("rank of θ* among 50 draws");
  });

  it("prints a table and the verdict; the same seed gives the same numbers", async () => {
    const args = ["calibrate", amortized, "--simulator", simulator, "--n-test", "30"];
    const [a, b] = await Promise.all([
      nbi([...args, "--n-samples", "40", "--seed", "5", "--quiet"]),
      nbi([...args, "--n-samples", "40", "--seed", "5", "--quiet"]),
    ]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^calibration: 30 test pairs × 40 posterior draws\n/);
    expect(a.stdout).toMatch(/parameter +SBC χ² +p +mean rank +rank variance\na +[\d.]+\/\d+ /);
    expect(a.stdout).toMatch(/\nHPD coverage: 50% → [\d.]+% ± [\d.]+%, 68% → /);
    expect(a.stdout).toMatch(/\nTARP: largest gap [\d.]+, p = /);
    expect(a.stdout).toMatch(
      /\nverdict: (calibrated: .*30 test pairs|not calibrated, \d+ findings?:(\n {2}- .+)+)\n/,
    );
    // Fewer than 50 pairs: said, as a warning on stderr.
    expect(a.stderr).toMatch(/^warning: only 30 test pairs/m);
    expect(b.stdout).toBe(a.stdout);
  });

  it("refuses a sequential run and wrong flags, in one line each", async () => {
    const seq = await nbi(["calibrate", sequential, "--trust-run-dir", "--n-test", "20"]);
    expect(seq.code).toBe(1);
    expect(seq.stderr).toMatch(
      /^nbi calibrate: calibrate: the engine expected an amortized fit \(one round from the prior\), got a sequential fit of 2 rounds/,
    );
    expect(hasStackTrace(seq.stderr)).toBe(false);
    const few = await nbi(["calibrate", amortized, "--n-test", "3"]);
    expect(few.code).toBe(2);
    expect(few.stderr).toContain('--n-test expected an integer ≥ 10, got "3"');
    const help = await nbi(["--help"]);
    expect(help.stdout).toMatch(/\n {2}calibrate RUN_DIR +check an amortized fit's calibration/);
  });
});
