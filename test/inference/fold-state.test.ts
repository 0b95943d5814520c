/**
 * The sequential fold's state transitions (fold-state.ts): a round returns a new state and leaves
 * the old one as it was, shares what did not change, and freezes what it holds so an accidental
 * mutation throws.
 */
import { describe, expect, it } from "vitest";
import { np } from "../../src/index.js";
import { afterRound, initialFoldState } from "../../src/inference/fold-state.js";
import type { Checkpoint } from "../../src/inference/posterior.js";
import { PRIOR_PROPOSAL } from "../../src/inference/proposals.js";
import type { RoundData, RoundRecord } from "../../src/inference/snpe.js";

const checkpoint = (v: number): Checkpoint =>
  ({
    params: { flow: { w: np.array([v]) }, featurizer: { b: np.array([v]) } },
    scales: {
      xMean: Float64Array.of(0),
      xStd: Float64Array.of(1),
      thetaMean: Float64Array.of(0),
      thetaStd: Float64Array.of(1),
    },
  }) as unknown as Checkpoint;

const roundData = (): RoundData => ({
  theta: Float64Array.of(1, 2),
  x: Float32Array.of(3, 4),
  logPrior: Float64Array.of(0, 0),
  valMask: Uint8Array.of(0, 1),
  proposal: PRIOR_PROPOSAL,
});

const record = (round: number): RoundRecord =>
  ({ round, nDrawn: 2, nSimulated: 2, warnings: [] }) as unknown as RoundRecord;

describe("the fold's state", () => {
  it("one more round gives a new state, the old one unchanged and shared where unchanged", () => {
    const s0 = initialFoldState<Checkpoint, RoundData, RoundRecord>(checkpoint(0));
    const s1 = afterRound(s0, { current: checkpoint(1), data: roundData(), record: record(0) });
    const s2 = afterRound(s1, {
      current: checkpoint(2),
      data: roundData(),
      record: record(1),
      stopped: "done",
    });
    expect([s0.history.length, s1.history.length, s2.history.length]).toEqual([0, 1, 2]);
    expect(s1.stopped).toBeUndefined();
    expect(s2.stopped).toBe("done");
    expect(s2.checkpoints[0]).toBe(s1.checkpoints[0]);
    expect(s2.data[0]).toBe(s1.data[0]);
    expect(s2.current).toBe(s2.checkpoints[1]);
  });

  it("is frozen: pushing to a record list, renaming a stop or swapping a parameter throws", () => {
    const s1 = afterRound(initialFoldState<Checkpoint, RoundData, RoundRecord>(checkpoint(0)), {
      current: checkpoint(1),
      data: roundData(),
      record: record(0),
    });
    expect(() => (s1.history as RoundRecord[]).push(record(1))).toThrow(TypeError);
    expect(() => {
      (s1 as { stopped?: string }).stopped = "x";
    }).toThrow(TypeError);
    expect(() => {
      (s1.current.params as unknown as { flow: { w: unknown } }).flow.w = np.array([9]);
    }).toThrow(TypeError);
    expect(() => (s1.history[0]!.warnings as string[]).push("late")).toThrow(TypeError);
  });
});
