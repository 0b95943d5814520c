/**
 * Runs you can trust (issue 16), where the behaviour is the process's: two `nbi fit`s on one run
 * folder (lock), Ctrl-C during training, per-simulation timeouts in shards, a run folder that is
 * data and not code for `nbi predict`, a changed simulator refused on resume, --json kept clean of
 * a simulator's prints, and clear messages for a folder given as CONFIG or a misspelt prior key.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/cli/config.js";
import { BIN, type CliResult, FIXTURES, hasStackTrace, lines, nbi, ROOT } from "./run-cli.js";

const INTEGRITY = join(FIXTURES, "..", "integrity");
const SIMULATORS = join(INTEGRITY, "simulators.mjs");
const OBS = join(FIXTURES, "obs.csv");
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "nbi-cli-integrity-"));
  dirs.push(d);
  return d;
};

/** The CLI tests' line problem as a config object, with the given changes. */
function lineConfig(changes: Record<string, unknown> = {}, fit: Record<string, unknown> = {}) {
  return {
    simulator: { module: join(FIXTURES, "line.mjs"), exportName: "line" },
    priors: { a: { type: "normal", mu: 0, sigma: 1 }, b: { type: "uniform", lo: -2, hi: 2 } },
    flow: { flowHidden: 16, numBlocks: 2 },
    featurizer: { type: "mlp", dimIn: 8, dimOut: 8, hidden: [16] },
    fit: { nSims: 64, nRounds: 1, nEpochs: 1, batchSize: 16, noise: 0.2, ...fit },
    observation: { file: OBS, column: "flux" },
    seed: 21,
    workers: 1,
    ...changes,
  };
}

async function writeConfig(dir: string, name: string, config: object): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** Starts `nbi ARGS` and returns the child with its output so far and its end. */
function start(args: readonly string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  const out = { stdout: "", stderr: "" };
  child.stdout!.on("data", (d) => {
    out.stdout += d;
  });
  child.stderr!.on("data", (d) => {
    out.stderr += d;
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, ...out }));
  });
  return { child, out, done };
}

async function until(condition: () => boolean, what: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const events = (stdout: string) =>
  lines(stdout).map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });

describe("one writer per run folder", () => {
  it("refuses a second nbi fit on a folder in use, naming the holder; the first finishes", async () => {
    const dir = await tempDir();
    const run = join(dir, "run");
    const config = await writeConfig(
      dir,
      "slow.json",
      lineConfig({ simulator: { module: SIMULATORS, exportName: "slowLine" } }, { nSims: 40 }),
    );
    const first = start(["fit", config, "--path", run, "--quiet"]);
    await until(() => existsSync(join(run, "nbi.lock")), "the first fit's lock");
    const second = await nbi(["fit", config, "--path", run, "--quiet"]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(
      /nbi fit: .*nbi\.lock: the run folder is in use by nbi fit \(pid \d+ on .*, since .*\); one writer at a time/,
    );
    const done = await first.done;
    expect(done.stderr).toBe("");
    expect(done.code).toBe(0);
    expect(existsSync(join(run, "nbi.lock"))).toBe(false);
    expect(existsSync(join(run, "store", "nbi.lock"))).toBe(false);
  }, 180_000);

  it("gives each shard its own lock: a shard cannot run twice at once, other shards can", async () => {
    const dir = await tempDir();
    const run = join(dir, "run");
    const config = await writeConfig(
      dir,
      "slow.json",
      lineConfig({ simulator: { module: SIMULATORS, exportName: "slowLine" } }, { nSims: 60 }),
    );
    const at = ["--path", run, "--quiet", "--round", "0"];
    expect((await nbi(["simulate", config, ...at, "--prepare"])).code).toBe(0);
    const shard0 = start(["simulate", config, ...at, "--shard", "0/2"]);
    await until(() => existsSync(join(run, "store", "nbi-s000.lock")), "shard 0's lock");
    const [again, shard1] = await Promise.all([
      nbi(["simulate", config, ...at, "--shard", "0/2"]),
      nbi(["simulate", config, ...at, "--shard", "1/2"]),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /nbi-s000\.lock: the run folder is in use by nbi simulate shard 0\/2/,
    );
    expect(shard1.code).toBe(0);
    const first = await shard0.done;
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("round 0 shard 0/2: 30 simulated");
  }, 180_000);
});

describe("Ctrl-C during training", () => {
  it("stops within a step, exits 130 with a message, and finished rounds resume", async () => {
    const dir = await tempDir();
    const run = join(dir, "run");
    const nEpochs = 100;
    const config = await writeConfig(dir, "line.json", lineConfig({}, { nRounds: 2, nEpochs }));
    const fit = start(["fit", config, "--path", run, "--json"]);
    // Round 0 is trained and checkpointed once round 1's training has begun.
    await until(
      () => events(fit.out.stdout).some((e) => e.event === "epoch" && e.round === 1),
      "round 1's first epoch",
    );
    fit.child.kill("SIGINT");
    const result = await fit.done;
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/nbi fit: interrupted by SIGINT; .*run the same command again/);
    expect(hasStackTrace(result.stderr)).toBe(false);
    const epochs = events(result.stdout).filter((e) => e.event === "epoch" && e.round === 1);
    expect(epochs.length).toBeLessThan(nEpochs);
    expect(events(result.stdout).at(-1)).toMatchObject({ event: "error", exitCode: 130 });
    expect(existsSync(join(run, "nbi.lock"))).toBe(false);
    expect(existsSync(join(run, "store", "nbi.lock"))).toBe(false);
    // Round 1's training is kept at its last finished epoch.
    expect(existsSync(join(run, "store", "round-001", "training.safetensors"))).toBe(true);

    // The finished round is replayed, not rerun (--rounds 1: no round 1 to train again).
    const again = await nbi(["fit", config, "--path", run, "--json", "--rounds", "1"]);
    expect(again.code).toBe(0);
    const resumed = events(again.stdout).find((e) => e.event === "resume");
    expect(resumed).toMatchObject({ rounds: 1 });
    expect(resumed!.message).toBe(
      `resumed 1 round from ${join(run, "store")}; round 1: 64 of 64 simulations stored, ` +
        `training resumes at epoch ${epochs.length}`,
    );
    expect(events(again.stdout).some((e) => e.event === "simulate")).toBe(false);
  }, 180_000);

  it("exits at once with 130 on a second signal while the first is handled, releasing the lock", async () => {
    const dir = await tempDir();
    const run = join(dir, "run");
    const fit = start(["fit", join(INTEGRITY, "stuck-config.mjs"), "--path", run, "--quiet"]);
    try {
      await until(() => fit.out.stderr.includes("stuck in a simulation"), "the stuck simulation");
      expect(existsSync(join(run, "nbi.lock"))).toBe(true);
      fit.child.kill("SIGINT");
      // The first signal waits for the simulation in progress, which does not end.
      await new Promise((r) => setTimeout(r, 500));
      expect(fit.child.exitCode).toBe(null);
      const sent = Date.now();
      fit.child.kill("SIGINT");
      const result = await fit.done;
      expect(Date.now() - sent).toBeLessThan(5_000);
      expect(result.code).toBe(130);
      expect(existsSync(join(run, "nbi.lock"))).toBe(false);
      expect(existsSync(join(run, "store", "nbi.lock"))).toBe(false);
    } finally {
      fit.child.kill("SIGKILL");
    }
  }, 180_000);
});

describe("a run folder is data, not code", () => {
  it("nbi predict runs no module the folder names unless asked, and never resolves it against the cwd", async () => {
    const dir = await tempDir();
    const run = join(dir, "run");
    const config = await writeConfig(dir, "line.json", lineConfig({}, { nSims: 32 }));
    expect((await nbi(["fit", config, "--path", run, "--quiet"])).code).toBe(0);
    const marker = join(dir, "evil-marker");
    const env = { NBI_EVIL_MARKER: marker };
    const savedPath = join(run, "nbi-config.json");
    const saved = JSON.parse(await readFile(savedPath, "utf8"));
    const predict = (args: string[], cwd = ROOT) =>
      nbi(["predict", run, "--obs", OBS, "--column", "flux", "--n", "20", ...args], { cwd, env });

    // A module the folder names: not run; the message says how to allow it.
    await writeFile(
      savedPath,
      JSON.stringify({
        ...saved,
        simulator: { module: join(INTEGRITY, "evil.mjs"), exportName: "line" },
      }),
    );
    const refused = await predict([]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /names the simulator module .*evil\.mjs \(export line\); a run folder is data, not code.*pass --simulator .*evil\.mjs#line.*--trust-run-dir/,
    );
    // A config module it names (an in-process simulator): not imported either.
    await writeFile(
      savedPath,
      JSON.stringify({
        ...saved,
        simulator: "function",
        configFile: join(INTEGRITY, "evil-config.mjs"),
      }),
    );
    const config2 = await predict([]);
    expect(config2.code).toBe(2);
    expect(config2.stderr).toMatch(/names the simulator function of the config .*evil-config\.mjs/);
    expect(existsSync(marker)).toBe(false);

    // Asked to run the folder's simulator: a relative path is the folder's, not the cwd's.
    await copyFile(join(FIXTURES, "line.mjs"), join(run, "sim.mjs"));
    const elsewhere = join(dir, "elsewhere");
    await mkdir(elsewhere);
    await copyFile(join(INTEGRITY, "evil.mjs"), join(elsewhere, "sim.mjs"));
    await writeFile(
      savedPath,
      JSON.stringify({ ...saved, simulator: { module: "./sim.mjs", exportName: "line" } }),
    );
    const trusted = await predict(["--trust-run-dir", "--quiet"], elsewhere);
    // (A one-epoch surrogate gives poor weights: predict's warnings say so.)
    expect(lines(trusted.stderr).filter((l) => !l.startsWith("warning:"))).toEqual([]);
    expect(trusted.code).toBe(0);
    expect(trusted.stdout).toMatch(/n_eff [\d.]+ of 20 simulations/);
    // Named on the command line, the simulator runs; the folder's own entry is not consulted.
    const named = await predict(["--simulator", `${join(FIXTURES, "line.mjs")}#line`, "--quiet"]);
    expect(named.code).toBe(0);
    expect(existsSync(marker)).toBe(false);
  }, 180_000);
});

describe("a resumed nbi fit is the same fit", () => {
  it("refuses a changed simulator module, naming it; --force-resume and --fresh decide", async () => {
    const dir = await tempDir();
    const run = join(dir, "run");
    const module = join(dir, "line.mjs");
    await copyFile(join(FIXTURES, "line.mjs"), module);
    const config = await writeConfig(
      dir,
      "line.json",
      lineConfig({ simulator: { module, exportName: "line" } }, { nSims: 32 }),
    );
    const at = ["--path", run, "--json"];
    expect((await nbi(["fit", config, ...at])).code).toBe(0);
    const same = await nbi(["fit", config, ...at]);
    expect(same.code).toBe(0);
    expect(events(same.stdout).find((e) => e.event === "resume")?.message).toBe(
      `resumed 1 round from ${join(run, "store")}`,
    );

    await writeFile(
      module,
      (await readFile(module, "utf8")).replace("theta[0] +", "100 + theta[0] +"),
    );
    const changed = await nbi(["fit", config, ...at]);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(
      /simulator module .*line\.mjs changed \(content hash .*\).*CLI --fresh.*CLI --force-resume/,
    );
    const forced = await nbi(["fit", config, ...at, "--force-resume"]);
    expect(forced.code).toBe(0);
    const warnings = events(forced.stdout).filter((e) => e.event === "warning");
    expect(
      warnings.some((w) => /despite a changed setup.*line\.mjs changed/.test(String(w.message))),
    ).toBe(true);
    const fresh = await nbi(["fit", config, ...at, "--fresh"]);
    expect(fresh.code).toBe(0);
    expect(events(fresh.stdout).some((e) => e.event === "resume")).toBe(false);
    expect(events(fresh.stdout).some((e) => e.event === "simulate")).toBe(true);
  }, 180_000);
});

describe("hung simulations time out", () => {
  it("--sim-timeout stops a hung simulation in a shard, counts it, and the rest go on", async () => {
    const dir = await tempDir();
    const run = join(dir, "run");
    const config = await writeConfig(
      dir,
      "hangs.json",
      lineConfig(
        { simulator: { module: SIMULATORS, exportName: "lineHangs" }, workers: 2 },
        { nSims: 32 },
      ),
    );
    const at = ["--path", run, "--quiet", "--round", "0"];
    expect((await nbi(["simulate", config, ...at, "--prepare"])).code).toBe(0);
    const shard = await nbi(["simulate", config, ...at, "--shard", "0/1", "--sim-timeout", "0.3"]);
    expect(shard.code).toBe(0);
    expect(shard.stdout).toMatch(
      /28 simulated, 4 failed \(0 non-finite, 0 threw, 0 crashed, 4 timed out\)/,
    );
  }, 180_000);
});

describe("messages", () => {
  it("--json keeps a simulator's prints (worker or in-process) off stdout", async () => {
    const dir = await tempDir();
    const worker = await writeConfig(
      dir,
      "chatty.json",
      lineConfig({ simulator: { module: SIMULATORS, exportName: "chattyLine" } }, { nSims: 32 }),
    );
    for (const config of [worker, join(INTEGRITY, "chatty-config.mjs")]) {
      const r = await nbi(["fit", config, "--path", join(dir, `run-${config.length}`), "--json"]);
      expect(r.code).toBe(0);
      for (const line of lines(r.stdout)) expect(() => JSON.parse(line), line).not.toThrow();
      expect(r.stderr).toMatch(/simulating θ = /);
    }
  }, 180_000);

  it("says a folder is not a config (no EISDIR)", async () => {
    const dir = await tempDir();
    const r = await nbi(["fit", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /CONFIG expected a config file \(\.json, \.mjs or \.ts\), got a folder/,
    );
    expect(r.stderr).not.toMatch(/EISDIR/);
  });

  it("names unknown prior keys with the key probably meant", async () => {
    const raw = {
      ...lineConfig(),
      priors: {
        a: { type: "uniform", low: 0, high: 1 },
        b: { type: "normal", mean: 0, std: 1 },
        c: { type: "independent", parts: [{ type: "uniform", lo: 0, hi: 1, hgh: 2 }] },
      },
    };
    const error = await resolveConfig(raw, join(ROOT, "x.json"), {}).catch((e: Error) => e);
    const message = (error as Error).message;
    expect(message).toMatch(
      /priors\.a expected the keys of a "uniform" prior .*got unknown "low" \(did you mean "lo"\?\), "high" \(did you mean "hi"\?\)/,
    );
    expect(message).toMatch(
      /priors\.b .*"mean" \(did you mean "mu"\?\), "std" \(did you mean "sigma"\?\)/,
    );
    expect(message).toMatch(/priors\.c\.parts\[0\] .*"hgh" \(did you mean "hi"\?\)/);
  });
});
