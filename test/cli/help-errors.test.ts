/**
 * The command line's surface: help texts, and errors as one line on stderr with a non-zero exit
 * code and no stack trace (unless --verbose).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../helpers/temp-dirs.js";
import { FIXTURES, hasStackTrace, lines, nbi } from "./run-cli.js";

const root = tempDirs("nbi-cli-errors-")();

describe("nbi --help", () => {
  it("lists the commands, and each command has its own help", async () => {
    const [main, fit, simulate] = await Promise.all([
      nbi(["--help"]),
      nbi(["fit", "--help"]),
      nbi(["help", "simulate"]),
    ]);
    expect(main.code).toBe(0);
    for (const command of ["fit CONFIG", "predict RUN_DIR", "simulate CONFIG", "demo sine"]) {
      expect(main.stdout).toContain(command);
    }
    expect(fit.code).toBe(0);
    expect(fit.stdout).toMatch(/^Usage: nbi fit CONFIG/);
    expect(fit.stdout).toContain("--json");
    expect(simulate.code).toBe(0);
    expect(simulate.stdout).toContain("--shard i/N");
    expect(main.stderr + fit.stderr + simulate.stderr).toBe("");
  });
});

describe("errors", () => {
  it("reports every problem of a bad config in one line, exit code 1, no stack trace", async () => {
    const config = join(root, "bad.json");
    writeFileSync(
      config,
      JSON.stringify({
        simulator: "./missing.mjs",
        priors: { a: { type: "uniform", lo: 0, hi: 1 }, b: { type: "gaussian", mu: 0 } },
        featurizer: { type: "mlp", dimIn: 8, dimOut: 8 },
        fit: { nSims: "many", nEpoch: 3 },
      }),
    );
    const r = await nbi(["fit", config, "--path", join(root, "run")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(lines(r.stderr)).toHaveLength(1);
    expect(hasStackTrace(r.stderr)).toBe(false);
    const line = r.stderr.trim();
    expect(line.startsWith(`nbi fit: ${config}: `)).toBe(true);
    expect(line).toContain(`simulator: no module at ${join(root, "missing.mjs")}`);
    expect(line).toContain('priors.b: spec.type expected "uniform", "normal"');
    expect(line).toContain('fit.nSims expected an integer ≥ 2, got "many"');
    expect(line).toContain("unknown key fit.nEpoch (known: nSims, nRounds, nEpochs");
  });

  it("says which flag is wrong (exit code 2) and shows the stack only with --verbose", async () => {
    const config = join(FIXTURES, "line.json");
    const [unknown, shard, verbose, missing] = await Promise.all([
      nbi(["fit", config, "--epochs", "3"]),
      nbi(["simulate", config, "--shard", "4/4"]),
      nbi([
        "simulate",
        config,
        "--round",
        "0",
        "--shard",
        "0/2",
        "--path",
        join(root, "none"),
        "--verbose",
      ]),
      nbi(["simulate", config, "--round", "0", "--shard", "0/2", "--path", join(root, "none")]),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("nbi fit: Unknown option '--epochs' (see 'nbi fit --help')\n");
    expect(shard.code).toBe(2);
    expect(shard.stderr).toContain("--shard expected i/N with 0 ≤ i < N");
    // A shard before its round is prepared: what is missing and the command that fixes it.
    expect(missing.code).toBe(1);
    expect(lines(missing.stderr)).toEqual([
      `nbi simulate: no simulation store in ${join(root, "none", "store")}: run 'nbi simulate ${config} --round 0 --prepare' first`,
    ]);
    expect(verbose.code).toBe(1);
    expect(hasStackTrace(verbose.stderr)).toBe(true);
  });
});
