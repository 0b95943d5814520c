/**
 * Featurizers, MADE and the flows are one module shape: `ParamModule<P, In, Out>`
 * (`transforms/module.ts`), instantiated, not declared again. The type checks run under
 * `tsc --noEmit` (expectTypeOf is a no-op at run time); the run-time checks init and apply each
 * kind through one generic function that sees only the shared interface.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import * as bijectors from "../../src/bijectors/index.js";
import * as featurizers from "../../src/featurizers/index.js";
import { type Array, random } from "../../src/index.js";
import type { InitOptions, ParamModule } from "../../src/transforms/module.js";
import { useTestBackend } from "../helpers/backends.js";

describe("one module shape", () => {
  it("featurizers' Module, Featurizer, Made and Flow are ParamModule instances", () => {
    // The public re-exports are the one declaration.
    expectTypeOf<featurizers.ParamModule<unknown>>().toEqualTypeOf<ParamModule<unknown>>();
    expectTypeOf<bijectors.ParamModule<unknown>>().toEqualTypeOf<ParamModule<unknown>>();
    expectTypeOf<featurizers.InitOptions>().toEqualTypeOf<InitOptions>();
    expectTypeOf<bijectors.InitOptions>().toEqualTypeOf<InitOptions>();

    // featurizers.Module<P, X, Y> is the one-input ParamModule, exactly.
    expectTypeOf<featurizers.Module<featurizers.LinearParams>>().toEqualTypeOf<
      ParamModule<featurizers.LinearParams, [x: Array], Array>
    >();
    expectTypeOf<featurizers.Module<number, string, boolean>>().toEqualTypeOf<
      ParamModule<number, [x: string], boolean>
    >();
    expectTypeOf<featurizers.Featurizer<featurizers.MlpParams>>().toExtend<
      ParamModule<featurizers.MlpParams>
    >();

    // MADE and the flows: init and apply are the shared members, not parallel declarations.
    type MadeModule = ParamModule<bijectors.MadeParams, [y: Array, context?: Array], Array>;
    type FlowModule = ParamModule<bijectors.FlowParams, [theta: Array, context?: Array], Array>;
    expectTypeOf<bijectors.Made>().toExtend<MadeModule>();
    expectTypeOf<bijectors.Flow>().toExtend<FlowModule>();
    expectTypeOf<Pick<bijectors.Made, "init" | "apply">>().toEqualTypeOf<
      Pick<MadeModule, "init" | "apply">
    >();
    expectTypeOf<Pick<bijectors.Flow, "init" | "apply">>().toEqualTypeOf<
      Pick<FlowModule, "init" | "apply">
    >();
    // The checks are not vacuous: a MADE's apply takes arrays, not a string.
    type StringModule = ParamModule<bijectors.MadeParams, [x: string], Array>;
    // @ts-expect-error: Made does not extend a module over strings.
    expectTypeOf<bijectors.Made>().toExtend<StringModule>();
    // A flow's apply is its log density.
    expectTypeOf<bijectors.Flow["apply"]>().toEqualTypeOf<bijectors.Flow["logProb"]>();
  });

  describe("init and apply through the generic interface (cpu)", () => {
    useTestBackend("cpu");

    /** Sees only ParamModule: fresh parameters from `seed`, then apply. */
    function initApply<P, In extends readonly unknown[], Out>(
      m: ParamModule<P, In, Out>,
      seed: number,
      ...input: In
    ): { params: P; out: Out } {
      const params = m.init(random.key(seed), { dtype: "float32" });
      return { params, out: m.apply(params, ...input) };
    }

    it("a featurizer, a MADE and a flow each init and apply, as their own calls do", async () => {
      const x = random.normal(random.key(1), [4, 2, 10]);
      const theta = random.normal(random.key(2), [4, 3]);

      const fz = featurizers.fromConfig({ type: "mlp", dimIn: 20, dimOut: 5 });
      const f = initApply(fz, 0, x);
      expect(f.out.shape).toEqual([4, 5]);
      expect(await f.out.data()).toEqual(await fz.apply(fz.init(random.key(0)), x).data());

      const context = f.out;
      const m = bijectors.made({ nDims: 3, hidden: [8], nParams: 2, contextDim: 5 });
      const made = initApply(m, 3, theta, context);
      expect(made.out.shape).toEqual([4, 3, 2]);
      expect(await made.out.data()).toEqual(
        await m.apply(m.init(random.key(3)), theta, context).data(),
      );

      const flow = bijectors.maf({ nDims: 3, flowHidden: 8, numBlocks: 2, contextDim: 5 });
      const q = initApply(flow, 4, theta, context);
      expect(q.out.shape).toEqual([4]);
      expect(await q.out.data()).toEqual(await flow.logProb(q.params, theta, context).data());
      expect(globalThis.Array.from(await q.out.data()).every(Number.isFinite)).toBe(true);

      // An unconditional MADE: the optional context is left out, as the tuple allows.
      const u = bijectors.made({ nDims: 3, nParams: 2 });
      expect(initApply(u, 5, theta).out.shape).toEqual([4, 3, 2]);
    });
  });
});
