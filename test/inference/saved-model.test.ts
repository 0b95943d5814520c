/**
 * Models saved by earlier versions keep loading: test/fixtures/engine/saved-model was written by
 * `NBI.save` before the model folder's format moved to src/io/model-file.ts (see its README.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { NBI } from "../../src/inference/engine.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const SAVED = fileURLToPath(new URL("../fixtures/engine/saved-model", import.meta.url));
const T = globalThis.Array.from({ length: 8 }, (_, i) => i / 7);
const line = (theta: ArrayLike<number>) => Float64Array.from(T, (t) => theta[0]! + theta[1]! * t);

const tempDir = tempDirs("nbi-saved-model-");

describe("NBI.load: a model saved by an earlier version", () => {
  it("loads with its configs, labels and history, and gives the densities it gave when saved", async () => {
    const engine = await NBI.load(SAVED, { simulator: line, path: tempDir() });
    expect(engine.labels).toEqual(["a", "b"]);
    expect(engine.history).toHaveLength(1);
    // log q(θ | x) at the observation it was fitted to, as the saving engine computed it.
    const xObs = line([0.3, 1.1]);
    const logProb = await engine.logProb(xObs, Float64Array.from([0.3, 1.1, 0, 0]));
    expect(logProb[0]).toBeCloseTo(-2.6047478484776514, 3);
    expect(logProb[1]).toBeCloseTo(-1.8304178285267847, 3);
    const draws = await engine.sample(xObs, 16);
    expect(draws).toHaveLength(32);
    expect(draws.every(Number.isFinite)).toBe(true);
  });

  it("saves again what it loaded, and that loads to the same network", async () => {
    const engine = await NBI.load(SAVED, { simulator: line, path: tempDir() });
    const out = join(tempDir(), "again");
    await engine.save(out);
    const json = (dir: string) => JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    expect(json(out)).toMatchObject(json(SAVED));
    const again = await NBI.load(out, { simulator: line, path: tempDir() });
    const xObs = line([0.3, 1.1]);
    const theta = Float64Array.from([0.3, 1.1, -0.5, 0.5]);
    expect(globalThis.Array.from(await again.logProb(xObs, theta))).toEqual(
      globalThis.Array.from(await engine.logProb(xObs, theta)),
    );
  });
});
