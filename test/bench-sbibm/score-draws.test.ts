import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadReference } from "../../bench/sbibm/reference.js";
import { readDraws, scoreDraws } from "../../bench/sbibm/score-draws.js";
import { getTask } from "../../bench/sbibm/tasks.js";
import { encodeNpy } from "../../src/io/npy.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const dir = tempDirs("score-draws-")();

describe("scoring a peer's draws (bench/sbibm/score-draws.ts)", () => {
  const ref = loadReference("gaussian_linear_uniform", 1);

  it("reads float32 rows and names the file and the shape it expected when they do not fit", () => {
    const file = join(dir, "draws.npy");
    writeFileSync(file, encodeNpy({ data: Float32Array.of(1, 2, 3, 4, 5, 6), shape: [3, 2] }));
    expect(Array.from(readDraws(file, 2))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => readDraws(file, 10)).toThrow(
      /draws\.npy should hold rows of 10 numbers.*\[3, 2\]/,
    );
  });

  it("scores exact draws as indistinguishable and shifted ones as not", async () => {
    // The reference's second half against its first (the C2ST takes the first n rows of each).
    const d = ref.dim;
    const half = ref.samples.length / d / 2;
    const exact = ref.samples.slice(half * d);
    const shifted = exact.map((v, i) => (i % d === 0 ? v + ref.sd[0]! : v));
    const opts = { n: 1500, maxEpochs: 40 };
    const same = await scoreDraws(ref, exact, opts);
    const moved = await scoreDraws(ref, shifted, opts);
    expect(same.c2st).toBeLessThan(0.56);
    expect(same.meanErr).toBeLessThan(0.1);
    expect(moved.c2st).toBeGreaterThan(0.6);
    expect(moved.meanErr).toBeGreaterThan(0.9);
    expect(same.rows).toBe(1500);
  }, 60_000);

  it("the PyTorch peer's observations are the task's (bench/sbibm/peers/glu_observations.json)", () => {
    const path = join(__dirname, "../../bench/sbibm/peers/glu_observations.json");
    const stored = JSON.parse(readFileSync(path, "utf8")) as Record<string, number[]>;
    const task = getTask("gaussian_linear_uniform");
    for (let k = 1; k <= 10; k++) {
      expect(stored[String(k)]).toEqual(Array.from(task.observation(k).x));
    }
  });
});
