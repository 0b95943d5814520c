/**
 * fusedChunks (ops/webgpu/fused-chunks.ts) on random programs, no GPU needed: every chunk binds
 * at most the allowed buffers, and evaluating the chunks in order — each from the group's inputs
 * and the values earlier chunks wrote — gives the whole program's outputs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fusedChunks } from "../../src/ops/webgpu/fused-chunks.js";
import type { FusedOperand, FusedProgram, FusedStep } from "../../src/trace/backend.js";

const OPS: Record<string, (...a: number[]) => number> = {
  add: (a, b) => a + b,
  mul: (a, b) => a * b,
  sub: (a, b) => a - b,
  neg: (a) => -a,
  select: (c, a, b) => (c > 0 ? a : b),
};
const ARITY: Record<string, number> = { add: 2, mul: 2, sub: 2, neg: 1, select: 3 };

/** Evaluates a program on one element: input k is `inputs[k]`. */
function evaluate(p: FusedProgram, inputs: readonly number[]): number[] {
  const v: number[] = [];
  const read = (o: FusedOperand) => ("input" in o ? inputs[o.input]! : v[o.step]!);
  for (const s of p.steps) v.push(OPS[s.op]!(...s.args.map(read)));
  return p.outputs.map((j) => v[j]!);
}

/** A random program: nIn inputs, steps reading inputs or earlier steps, some outputs. */
const programs = fc
  .record({
    nIn: fc.integer({ min: 1, max: 14 }),
    picks: fc.array(
      fc.record({
        op: fc.constantFrom(...Object.keys(OPS)),
        args: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
        out: fc.boolean(),
      }),
      { minLength: 1, maxLength: 30 },
    ),
  })
  .map(({ nIn, picks }) => {
    const steps: FusedStep[] = [];
    const outputs: number[] = [];
    picks.forEach((pk, j) => {
      const args = pk.args.slice(0, ARITY[pk.op]).map((r): FusedOperand => {
        const k = r % (nIn + j);
        return k < nIn ? { input: k } : { step: k - nIn };
      });
      steps.push({ op: pk.op, args, dtype: "float32" });
      if (pk.out || j === picks.length - 1) outputs.push(j);
    });
    const inputs = Array.from({ length: nIn }, () => ({ shape: [4], dtype: "float32" as const }));
    return { shape: [4], inputs, steps, outputs } satisfies FusedProgram;
  });

describe("fused programs cut into chunks within a binding limit", () => {
  it("each chunk fits, and the chunks in order compute the whole program's outputs", () => {
    fc.assert(
      fc.property(
        programs,
        fc.integer({ min: 4, max: 15 }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 14, maxLength: 14 }),
        (p, maxBuffers, values) => {
          const chunks = fusedChunks(p, maxBuffers);
          // A step reads at most 3 values and writes 1: it always fits 4 buffers.
          expect(chunks).not.toBeNull();
          const inputs = values.slice(0, p.inputs.length);
          const written = new Map<number, number>();
          for (const c of chunks!) {
            expect(c.program.inputs.length + c.program.outputs.length).toBeLessThanOrEqual(
              maxBuffers,
            );
            const ins = c.sources.map((o) => {
              if ("input" in o) return inputs[o.input]!;
              // A chunk reads only values an earlier chunk wrote.
              expect(written.has(o.step)).toBe(true);
              return written.get(o.step)!;
            });
            for (const [j, x] of evaluate(c.program, ins).entries()) written.set(c.writes[j]!, x);
          }
          const got = p.outputs.map((j) => written.get(j));
          expect(got).toEqual(evaluate(p, inputs));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a program within the limit stays one chunk; a step that cannot fit gives null", () => {
    const p: FusedProgram = {
      shape: [2],
      inputs: [
        { shape: [2], dtype: "float32" },
        { shape: [2], dtype: "float32" },
      ],
      steps: [
        { op: "add", args: [{ input: 0 }, { input: 1 }], dtype: "float32" },
        { op: "mul", args: [{ step: 0 }, { input: 0 }], dtype: "float32" },
      ],
      outputs: [0, 1],
    };
    expect(fusedChunks(p, 4)).toHaveLength(1);
    expect(fusedChunks(p, 2)).toBeNull();
  });
});
