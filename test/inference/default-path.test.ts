/**
 * `new NBI` without `path` writes its run to ./nbi-run, relative to the working directory: `fit`
 * says so, naming the absolute folder (through onWarning when given, else one line on stderr),
 * and says nothing of the kind when a path was given. The working directory is changed to a
 * temporary folder for these tests (vitest runs each file in a process of its own).
 */
import { existsSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { NBI } from "../../src/inference/engine.js";
import { normal, uniform } from "../../src/inference/priors.js";

const T = Array.from({ length: 6 }, (_, i) => i / 5);
const line = (theta: ArrayLike<number>) => Float64Array.from(T, (t) => theta[0]! + theta[1]! * t);
const setup = {
  flow: { nDims: 2, flowHidden: 8, numBlocks: 1 },
  featurizer: { type: "mlp" as const, dimIn: 6, dimOut: 4, hidden: [8] },
  simulator: line,
  priors: { a: normal(0, 1), b: uniform(-2, 2) },
};
const tiny = { nSims: 32, nEpochs: 1, batchSize: 16, noise: 0.2, progress: false };

describe("NBI without a path", () => {
  const cwd = process.cwd();
  let tmp = "";
  beforeAll(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), "nbi-default-path-")));
    process.chdir(tmp);
  });
  afterAll(() => {
    process.chdir(cwd);
    rmSync(tmp, { recursive: true, force: true });
  });

  it("names the absolute ./nbi-run folder through onWarning, and writes the run there", async () => {
    const engine = new NBI(setup);
    const expected = join(tmp, "nbi-run");
    expect(engine.path).toBe(expected);
    const warnings: string[] = [];
    const stderr = vi.spyOn(process.stderr, "write");
    try {
      await engine.fit({ ...tiny, onWarning: (m) => warnings.push(m) });
    } finally {
      stderr.mockRestore();
    }
    const notices = warnings.filter((m) => m.includes("no path given"));
    expect(notices).toEqual([
      `no path given to new NBI: this run's simulations and checkpoints go to ${expected}`,
    ]);
    // Given a hook, the engine leaves stderr alone.
    expect(stderr.mock.calls.map((c) => String(c[0])).join("")).not.toContain("no path given");
    expect(existsSync(join(expected, "manifest.json"))).toBe(true);
  });

  it("prints one line on stderr without onWarning, and nothing when a path is given", async () => {
    const lines: string[] = [];
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      await new NBI(setup).fit({ ...tiny, resume: "never" });
      const named = lines.filter((l) => l.includes("no path given"));
      expect(named).toEqual([
        `nbi: no path given to new NBI: this run's simulations and checkpoints go to ${join(tmp, "nbi-run")}\n`,
      ]);
      lines.length = 0;
      await new NBI({ ...setup, path: join(tmp, "chosen") }).fit(tiny);
      expect(lines.join("")).not.toContain("no path given");
    } finally {
      stderr.mockRestore();
    }
    expect(existsSync(join(tmp, "chosen", "manifest.json"))).toBe(true);
  });
});
