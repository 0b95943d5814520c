/**
 * Killing the process during fit loses no finished simulation: a child process fits into a store
 * and is SIGKILLed in the middle of round 1's simulations; fitting again resumes from the store,
 * never re-runs a stored simulation, and ends with exactly the result of an uninterrupted run.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { NBI } from "../../src/inference/engine.js";
import { normal, uniform } from "../../src/inference/priors.js";
import { openStore } from "../../src/inference/store.js";
import { resumeEngine, resumeFit } from "../fixtures/engine/resume-run.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const root = tempDirs("nbi-resume-")();

const logged = (file: string) =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.length > 0)
    : [];

const chunksIn = (dir: string) =>
  existsSync(dir) ? readdirSync(dir).filter((f) => /^chunk-\d+\.index\.npy$/.test(f)).length : 0;

/**
 * The line problem in-process (seed 21): its simulator logs each θ it runs into `ran` and aborts
 * `stopAt.ctl` at the n-th simulation.
 */
function lineEngine(path: string, ran: string[], stopAt?: { n: number; ctl: AbortController }) {
  const T = Array.from({ length: 8 }, (_, i) => i / 7);
  return new NBI({
    flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
    featurizer: { type: "mlp", dimIn: 8, dimOut: 8, hidden: [16] },
    simulator: (theta: Float64Array) => {
      ran.push(`${theta[0]},${theta[1]}`);
      if (stopAt && ran.length === stopAt.n) stopAt.ctl.abort();
      return Float64Array.from(T, (t) => theta[0]! + theta[1]! * t);
    },
    priors: { a: normal(0, 1), b: uniform(-2, 2) },
    path,
    seed: 21,
  });
}

describe("fit resumes after a kill", () => {
  it("re-runs no stored simulation and reproduces the uninterrupted result", async () => {
    const store = join(root, "killed");
    const childLog = join(root, "child.log");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", resolve("test/fixtures/engine/resume-run.ts"), store, childLog],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // Kill once round 1 has a few chunks on disk (round 0 is trained and checkpointed by then).
    const deadline = Date.now() + 120_000;
    while (chunksIn(join(store, "round-001")) < 3) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`child did not reach round 1: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    await exited;

    // What the store holds at the kill: those simulations must never run again.
    const meta = { paramDim: 2, dataShape: [8], labels: ["a", "b"] };
    const atKill = await (await openStore(store, meta)).readRound(1);
    const stored = new Set<string>();
    for (let i = 0; i < atKill.n; i++)
      if (atKill.done[i]) stored.add(`${atKill.theta[2 * i]},${atKill.theta[2 * i + 1]}`);
    expect(stored.size).toBeGreaterThanOrEqual(3);
    expect(stored.size).toBeLessThan(60);
    expect(existsSync(join(store, "round-000", "record.json"))).toBe(true);

    const resumeLog = join(root, "resume.log");
    const resumed = await resumeEngine(store, resumeLog, 0).fit(resumeFit);
    const rerun = logged(resumeLog);
    expect(rerun.filter((t) => stored.has(t))).toEqual([]);
    // Round 0 was finished and checkpointed: nothing of it ran again; round 1's rest and round 2 did.
    expect(rerun.length).toBe(60 - stored.size + 60);

    const fresh = await resumeEngine(join(root, "fresh"), join(root, "fresh.log"), 0).fit(
      resumeFit,
    );
    expect(Array.from(resumed.samples)).toEqual(Array.from(fresh.samples));
    expect(Array.from(resumed.weights)).toEqual(Array.from(fresh.weights));
    expect(resumed.essHistory).toEqual(fresh.essHistory);
  }, 180_000);

  it("a round drawn in stages, stopped mid-round, reruns no finished stage and ends as an uninterrupted run", async () => {
    // 2 rounds of 60: round 1 is a pilot of 15 and one stage of 45 (roundStages). Stop in the stage.
    const fit = { ...resumeFit, nRounds: 2, adaptRounds: true };
    const path = join(root, "staged");
    const first: string[] = [];
    const ctl = new AbortController();
    await expect(
      lineEngine(path, first, { n: 60 + 15 + 10, ctl }).fit({ ...fit, signal: ctl.signal }),
    ).rejects.toThrow(/abort/i);
    const pilot = new Set(first.slice(60, 75));
    expect(pilot.size).toBe(15);
    const again: string[] = [];
    const resumed = await lineEngine(path, again).fit(fit);
    expect(again.filter((t) => pilot.has(t))).toEqual([]);
    expect(again.length).toBe(45);
    const fresh = await lineEngine(join(root, "staged-fresh"), []).fit(fit);
    expect(Array.from(resumed.samples)).toEqual(Array.from(fresh.samples));
    expect(Array.from(resumed.weights)).toEqual(Array.from(fresh.weights));
    expect(resumed.essHistory).toEqual(fresh.essHistory);
  }, 120_000);

  it("a staged round's estimates come from the stages in its draws record; a record whose stages do not match its draws is said and falls back to the stages' mixture", async () => {
    const fit = { ...resumeFit, nRounds: 2, adaptRounds: true };
    const path = join(root, "stages-record");
    const fresh = await lineEngine(path, []).fit(fit);
    const file = join(path, "round-001", "draws.json");
    const record = JSON.parse(readFileSync(file, "utf8"));
    expect(record.stages.reduce((a: number, st: { size: number }) => a + st.size, 0)).toBe(60);
    // Fitting the finished run again rebuilds every round from the store: the same estimates.
    const again = await lineEngine(path, []).fit(fit);
    expect(again.essHistory).toEqual(fresh.essHistory);
    expect(again.history[1]!.warnings.some((w) => /stages/.test(w))).toBe(false);
    record.stages[0].size += 1;
    writeFileSync(file, JSON.stringify(record));
    const damaged = await lineEngine(path, []).fit(fit);
    expect(
      damaged.history[1]!.warnings.some((w) =>
        /the store's stages hold 61 draws, the round 60/.test(w),
      ),
    ).toBe(true);
    expect(damaged.essHistory[0]).toBe(fresh.essHistory[0]);
    expect(damaged.essHistory[1]).not.toBe(fresh.essHistory[1]);
  }, 120_000);

  it("a round's challenger is kept in the store: a run stopped in the next round's pilot resumes to the uninterrupted result", async () => {
    // Rounds of 240 at noise 0.05: at this seed round 1 finds the posterior but its 24 held-out
    // rows cannot judge its own draws' candidate, so it keeps it as a challenger; round 2's
    // pilot (60 draws, 30 from each network) judges it. Stop in the challenger's half.
    const fit = {
      ...resumeFit,
      nSims: 240,
      nRounds: 3,
      nEpochs: 4,
      noise: 0.05,
      adaptRounds: true,
    };
    const path = join(root, "duel");
    const first: string[] = [];
    const ctl = new AbortController();
    await expect(
      lineEngine(path, first, { n: 480 + 45, ctl }).fit({ ...fit, signal: ctl.signal }),
    ).rejects.toThrow(/abort/i);
    expect(existsSync(join(path, "round-001", "challenger.safetensors"))).toBe(true);
    const earlier = new Set(first.slice(0, 480));
    const again: string[] = [];
    const resumed = await lineEngine(path, again).fit(fit);
    expect(again.filter((t) => earlier.has(t))).toEqual([]);
    const fresh = await lineEngine(join(root, "duel-fresh"), []).fit(fit);
    expect(fresh.history[1]!.challenger).toBe(true);
    expect(fresh.history[2]!.duel).toBeDefined();
    expect(resumed.history[2]!.duel).toEqual(fresh.history[2]!.duel);
    expect(Array.from(resumed.samples)).toEqual(Array.from(fresh.samples));
    expect(Array.from(resumed.weights)).toEqual(Array.from(fresh.weights));
    expect(resumed.essHistory).toEqual(fresh.essHistory);
  }, 180_000);
});
