/**
 * The CLI end to end on a tiny problem (a 2-parameter line, 60 simulations, 2 rounds, 2 epochs):
 * fit with --json, predict to CSV and NPY, and the sharded path (prepare, two shards running at
 * once, prepare the next round, shards, fit) reproducing the unsharded fit exactly.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readNpy } from "../../src/io/npy.js";
import { tempDirs } from "../helpers/temp-dirs.js";
import { FIXTURES, hasStackTrace, lines, nbi } from "./run-cli.js";

const root = tempDirs("nbi-cli-")();
// Rounds drawn in one batch (adaptRounds: false): what shards can reproduce (see src/cli/simulate.ts).
const config = join(root, "line.json");
{
  const raw = JSON.parse(readFileSync(join(FIXTURES, "line.json"), "utf8"));
  raw.simulator.module = join(FIXTURES, "line.mjs");
  raw.observation.file = join(FIXTURES, "obs.csv");
  raw.fit.adaptRounds = false;
  writeFileSync(config, JSON.stringify(raw));
}
const plain = join(root, "plain");
const sharded = join(root, "sharded");

describe("nbi fit and nbi predict", () => {
  let events: { event: string; [k: string]: unknown }[] = [];
  beforeAll(async () => {
    const r = await nbi(["fit", config, "--path", plain, "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // --json: every stdout line is one JSON object.
    events = lines(r.stdout).map((l) => JSON.parse(l));
  });

  it("writes JSON lines: start, simulations, epochs, rounds and a summary", () => {
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe("start");
    expect(kinds.at(-1)).toBe("summary");
    expect(kinds.filter((k) => k === "round")).toHaveLength(2);
    expect(kinds.filter((k) => k === "epoch")).toHaveLength(4);
    expect(kinds).toContain("simulate");
    const rounds = events.filter((e) => e.event === "round");
    expect(rounds.map((r) => r.round)).toEqual([0, 1]);
    expect(rounds[1]).toMatchObject({ nDrawn: 60, nSimulated: 60, trained: true });
    expect(typeof rounds[1]!.nEff).toBe("number");
    const summary = events.at(-1)!;
    expect(summary).toMatchObject({
      command: "fit",
      stopped: "completed all rounds",
      labels: ["a", "b"],
    });
    expect((summary.posterior as unknown[]).length).toBe(2);
  });

  it("saves the model, the run's config and the weighted draws in the run folder", () => {
    for (const f of ["model.json", "weights.safetensors", "nbi-config.json", "fit-posterior.csv"]) {
      expect(existsSync(join(plain, f))).toBe(true);
    }
    const csv = readFileSync(join(plain, "fit-posterior.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe("a,b,weight");
    expect(csv.length - 1).toBeGreaterThan(100);
    const saved = JSON.parse(readFileSync(join(plain, "nbi-config.json"), "utf8"));
    expect(saved.simulator).toEqual({ module: join(FIXTURES, "line.mjs"), exportName: "line" });
    expect(saved.noise).toBe(0.2);
  });

  it("predicts from the saved model: a summary table, draws and weights as CSV or NPY", async () => {
    const obs = join(FIXTURES, "obs.csv");
    const out = join(root, "post.npy");
    // The run folder's simulator runs only when asked: named again, or the folder trusted.
    const simulator = `${join(FIXTURES, "line.mjs")}#line`;
    const [text, npy] = await Promise.all([
      nbi(["predict", plain, "--obs", obs, "--column", "flux", "--simulator", simulator]),
      nbi([
        "predict",
        plain,
        "--obs",
        obs,
        "--column",
        "1",
        "--n",
        "40",
        "--out",
        out,
        "--quiet",
        "--trust-run-dir",
      ]),
    ]);
    expect(text.code).toBe(0);
    // The observation is the fit's: rounds of its weighed draws may be pooled in after
    // predict's own (those whose weights and evidence pass predict's checks).
    const fitRows = csvRowsOf(join(plain, "fit-posterior.csv"));
    const said = /n_eff [\d.]+ of 50 simulations(?: and the fit's (\d+) weighed draws)?/.exec(
      text.stdout,
    );
    expect(said).not.toBeNull();
    expect(Number(said![1] ?? 0)).toBeLessThanOrEqual(fitRows);
    expect(text.stdout).toMatch(/parameter +mean +std +5% +50% +95%\n +a +/);
    expect(text.stdout).toContain(`written to ${join(plain, "posterior.csv")}`);
    expect(readFileSync(join(plain, "posterior.csv"), "utf8").split("\n")[0]).toBe("a,b,weight");
    expect(hasStackTrace(text.stderr)).toBe(false);
    expect(npy.code).toBe(0);
    const table = await readNpy(out);
    const rows = table.shape[0]!;
    expect(table.shape[1]).toBe(3);
    expect(rows).toBeGreaterThanOrEqual(40);
    expect(rows).toBeLessThanOrEqual(40 + fitRows);
    const weights = Array.from({ length: rows }, (_, i) => table.data[3 * i + 2]!);
    expect(weights.reduce((a, b) => a + b)).toBeCloseTo(1, 10);
  });

  it("reproduces the unsharded fit from shards run in separate processes", async () => {
    const at = ["--path", sharded, "--quiet"];
    const ok = (r: { code: number | null; stderr: string }) => {
      expect(r.stderr.split("\n").filter((l) => l && !l.startsWith("warning:"))).toEqual([]);
      expect(r.code).toBe(0);
    };
    for (const round of ["0", "1"]) {
      ok(await nbi(["simulate", config, "--round", round, "--prepare", ...at]));
      // Both shards at once, as an array job would run them.
      const shards = await Promise.all(
        ["0/2", "1/2"].map((s) => nbi(["simulate", config, "--round", round, "--shard", s, ...at])),
      );
      shards.forEach(ok);
      expect(shards[0]!.stdout).toContain(`round ${round} shard 0/2: 30 simulated`);
    }
    ok(await nbi(["fit", config, ...at]));
    // fit simulated nothing itself: every chunk carries a shard's name.
    for (const round of ["round-000", "round-001"]) {
      const chunks = readdirSync(join(sharded, "store", round)).filter((f) =>
        f.startsWith("chunk-"),
      );
      expect(chunks.length).toBeGreaterThan(0);
      expect(chunks.every((f) => /^chunk-s00[01]-\d{6}\./.test(f))).toBe(true);
    }
    for (const file of ["fit-posterior.csv", "weights.safetensors", "store/round-001/theta.npy"]) {
      expect(readFileSync(join(sharded, file)).equals(readFileSync(join(plain, file)))).toBe(true);
    }
    const history = (dir: string) =>
      JSON.parse(readFileSync(join(dir, "model.json"), "utf8")).history.map(
        (r: { nEff: number; bestValLoss: number }) => [r.nEff, r.bestValLoss],
      );
    expect(history(sharded)).toEqual(history(plain));
  });

  it("lets a job chain finish when the fit stops early: later steps succeed doing nothing", async () => {
    const raw = JSON.parse(readFileSync(config, "utf8"));
    const stopping = join(root, "stopping.json");
    writeFileSync(
      stopping,
      JSON.stringify({
        ...raw,
        simulator: { ...raw.simulator, module: join(FIXTURES, "line.mjs") },
        observation: { ...raw.observation, file: join(FIXTURES, "obs.csv") },
        fit: { ...raw.fit, nRounds: 3, fAcceptMin: 1e-9 }, // round 0 already stops the fit
        path: join(root, "stopping"),
      }),
    );
    const steps = [
      ["--round", "0", "--prepare"],
      ["--round", "0", "--shard", "0/1"],
      ["--round", "1", "--prepare"],
      ["--round", "1", "--shard", "0/1"],
      ["--round", "2", "--prepare"],
    ];
    const outputs: string[] = [];
    for (const step of steps) {
      const r = await nbi(["simulate", stopping, ...step, "--quiet"]);
      expect(r.code).toBe(0);
      outputs.push(r.stdout);
    }
    for (const out of outputs.slice(2)) {
      expect(out).toMatch(
        /^the fit stopped after round 0 \(the sampling efficiency .* exceeded fAcceptMin\)/,
      );
    }
    const fit = await nbi(["fit", stopping, "--json"]);
    expect(fit.code).toBe(0);
    const summary = JSON.parse(lines(fit.stdout).at(-1)!);
    expect(summary.stopped).toMatch(/exceeded fAcceptMin/);
    expect(summary.essHistory).toHaveLength(1);
  });

  it("says so when a round an unsharded fit would draw in stages is prepared for shards in one batch", async () => {
    const raw = JSON.parse(readFileSync(config, "utf8"));
    const staged = join(root, "staged.json");
    const { adaptRounds: _, ...fit } = raw.fit;
    writeFileSync(staged, JSON.stringify({ ...raw, fit, path: join(root, "staged-run") }));
    const steps = [
      ["--round", "0", "--prepare"],
      ["--round", "0", "--shard", "0/1"],
      ["--round", "1", "--prepare"],
    ];
    const stderr: string[] = [];
    for (const step of steps) {
      const r = await nbi(["simulate", staged, ...step, "--quiet"]);
      expect(r.code).toBe(0);
      stderr.push(r.stderr);
    }
    expect(stderr[0]).not.toMatch(/adaptive stages/);
    expect(stderr[2]).toMatch(
      /round 1 is drawn from the surrogate in one batch.*"adaptRounds": false/s,
    );
  });
});

/** Data rows of a CSV file (its header left out). */
function csvRowsOf(path: string): number {
  return readFileSync(path, "utf8").trim().split("\n").length - 1;
}
