import { describe, expect, expectTypeOf, it } from "vitest";
import { type Array, grad, jit, np } from "../../src/index.js";
import * as optim from "../../src/optim/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";

const close = (a: number, b: number, tol: number): void => {
  expect(Math.abs(a - b)).toBeLessThan(tol);
};
type P = { w: Array; b: Array };

describe.each(testBackends())("optim (%s)", (backend) => {
  useTestBackend(backend);
  const loss = (p: P) =>
    np.add(np.sum(np.square(np.sub(p.w, np.array([1, -2, 3])))), np.square(np.sub(p.b, 0.5)));
  const start = (): P => ({ w: np.zeros([3]), b: np.array(0) });

  /**
   * `steps` optimiser steps from `start()`. Eager on the CPU; on WebGPU the step runs under jit,
   * since 300 eager steps of four optimisers cost about 5 s of kernel dispatches on lavapipe (a
   * test below checks that the jitted step equals the eager one on each backend).
   */
  function run(opt: optim.GradientTransformation, steps: number): P {
    const eager = (p: P, s: unknown) => {
      const r = opt.update(grad(loss)(p) as P, s, p, { value: loss(p) });
      return [optim.applyUpdates(p, r.updates), r.state] as const;
    };
    const step = backend === "webgpu" ? jit(eager) : eager;
    let p = start();
    let s: unknown = opt.init(p);
    for (let i = 0; i < steps; i++) [p, s] = step(p, s);
    return p;
  }

  it("sgd, sgd with momentum, adam and adamw minimise a quadratic", async () => {
    for (const opt of [
      optim.sgd(0.1),
      optim.sgd(0.05, { momentum: 0.9 }),
      optim.adam(0.1),
      optim.adamw(0.1, { weightDecay: 1e-4 }),
    ]) {
      const p = run(opt, 300);
      const w = await p.w.data();
      [1, -2, 3].forEach((v, i) => {
        close(w[i]!, v, 0.02);
      });
      close((await p.b.data())[0]!, 0.5, 0.02);
    }
  });

  it("adam's first step is −lr·sign(g) (bias correction)", async () => {
    const opt = optim.adam(0.01);
    const p = { w: np.array([1, 2]), b: np.array(0) };
    const g = { w: np.array([0.3, -4]), b: np.array(2e-3) };
    const { updates } = opt.update(g, opt.init(p), p);
    const u = await updates.w.data();
    close(u[0]!, -0.01, 1e-6);
    close(u[1]!, 0.01, 1e-6);
  });

  it("adamw decays weights even with zero gradients", async () => {
    const opt = optim.adamw(0.1, { weightDecay: 0.5 });
    const p = { w: np.array([2]), b: np.array(0) };
    const { updates } = opt.update({ w: np.zeros([1]), b: np.array(0) }, opt.init(p), p);
    close((await updates.w.data())[0]!, -0.1 * 0.5 * 2, 1e-6);
  });

  it("clipByGlobalNorm caps the global norm and leaves small gradients alone", async () => {
    const clip = optim.clipByGlobalNorm(1);
    const big = { w: np.array([3, 4]), b: np.array(12) }; // norm 13
    const { updates } = clip.update(big, clip.init(big));
    close((await optim.globalNorm(updates).data())[0]!, 1, 1e-5);
    close((await updates.b.data())[0]!, 12 / 13, 1e-5);
    const small = { w: np.array([0.3]), b: np.array(0.4) };
    expect(await clip.update(small, clip.init(small)).updates.w.data()).toEqual(
      Float32Array.from([0.3]),
    );
  });

  it("adaptiveClip clips to the percentile of the recent norms", async () => {
    const clip = optim.adaptiveClip({ percentile: 50, window: 4 });
    let s = clip.init({});
    const norms = [5, 1, 3, 8, 2, 7];
    for (let i = 0; i < norms.length; i++) {
      const g = { w: np.array([norms[i]!]) };
      const r = clip.update(g, s);
      s = r.state;
      const recent = norms.slice(Math.max(0, i - 3), i + 1).sort((a, b) => a - b);
      const threshold = recent[Math.floor(0.5 * (recent.length - 1))]!;
      close((await r.updates.w.data())[0]!, Math.min(norms[i]!, threshold), 1e-5);
    }
  });

  it("reduceOnPlateau scales updates by factor after patience steps without improvement", async () => {
    const t = optim.reduceOnPlateau({ factor: 0.5, patience: 2 });
    let s = t.init({});
    const losses = [3, 2, 2, 2, 2, 1, 1, 1, 1];
    const scales: number[] = [];
    for (const l of losses) {
      const r = t.update({ w: np.array([1]) }, s, undefined, { value: l });
      s = r.state;
      scales.push((await r.updates.w.data())[0]!);
    }
    expect(scales).toEqual([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]);
  });

  it("schedules: cosine warm restarts and step decay match their definitions", async () => {
    const sgdr = optim.cosineWarmRestarts({ init: 1, period: 4, mult: 2, min: 0.1 });
    // Reference by walking the cycles in JS.
    let start = 0;
    let len = 4;
    for (let t = 0; t < 30; t++) {
      while (t >= start + len) {
        start += len;
        len *= 2;
      }
      const want = 0.1 + 0.45 * (1 + Math.cos((Math.PI * (t - start)) / len));
      close((await np.asArray(sgdr(np.array(t, { dtype: "int32" }))).data())[0]!, want, 1e-5);
    }
    const flat = optim.cosineWarmRestarts({ init: 2, period: 5 });
    close(
      (await np.asArray(flat(np.array(7, { dtype: "int32" }))).data())[0]!,
      1 + Math.cos((Math.PI * 2) / 5),
      1e-5,
    );
    const decay = optim.stepDecay({ init: 1, stepSize: 3, gamma: 0.5 });
    for (const [t, v] of [
      [0, 1],
      [2, 1],
      [3, 0.5],
      [7, 0.25],
    ] as const) {
      close((await np.asArray(decay(np.array(t, { dtype: "int32" }))).data())[0]!, v, 1e-7);
    }
  });

  it("a whole step under jit equals the eager step", async () => {
    const opt = optim.chain(
      optim.clipByGlobalNorm(2),
      optim.adam(optim.cosineWarmRestarts({ init: 0.1, period: 10 })),
    );
    const step = (p: P, s: optim.OptimizerState<typeof opt, P>) => {
      const r = opt.update(grad(loss)(p) as P, s, p);
      return [optim.applyUpdates(p, r.updates), r.state] as const;
    };
    const jitted = jit(step);
    let pe = start();
    let se = opt.init(pe);
    let pj = start();
    let sj = opt.init(pj);
    for (let i = 0; i < 5; i++) {
      [pe, se] = step(pe, se);
      [pj, sj] = jitted(pj, sj);
    }
    const a = await pe.w.data();
    const b = await pj.w.data();
    a.forEach((v, i) => {
      close(v, b[i]!, 1e-6);
    });
  });

  it.each([false, true])(
    "paramAverage passes updates through and averages the parameters (fromStart: %s)",
    async (fromStart) => {
      const decay = 0.75;
      const opt = optim.chain(optim.sgd(0.1), optim.paramAverage({ decay, fromStart }));
      let p = { w: np.array([0.5, 0.5, 0.5]), b: np.array(0) };
      let s = opt.init(p);
      // Without fromStart the mean of the steps so far while fewer than 1/(1 − decay) = 4, then
      // a ← β·a + (1 − β)·p with β = decay; with it β = decay from the start, a beginning at p.
      let expected = [0.5, 0.5, 0.5];
      for (let i = 0; i < 7; i++) {
        const g = grad(loss)(p) as P;
        const plain = optim.sgd(0.1).update(g, optim.sgd(0.1).init(p)).updates;
        const r = opt.update(g, s, p);
        expect(await r.updates.w.data()).toEqual(await plain.w.data());
        p = optim.applyUpdates(p, r.updates);
        s = r.state;
        const now = [...(await p.w.data())];
        const beta = fromStart ? decay : Math.min(decay, i / (i + 1));
        expected = expected.map((a, j) => beta * a + (1 - beta) * now[j]!);
        const avg = await s[1].average.w.data();
        for (let j = 0; j < 3; j++) close(avg[j]!, expected[j]!, 1e-6);
      }
      // Lagging behind: the average of an approach to w* = (1, −2, 3) is nearer the start.
      const w = await p.w.data();
      const avg = await s[1].average.w.data();
      for (let j = 0; j < 3; j++)
        expect(Math.abs(avg[j]! - 0.5)).toBeLessThan(Math.abs(w[j]! - 0.5));
      expect(() => optim.paramAverage({ decay: 1 })).toThrow(
        /paramAverage: options.decay expected a number in \[0, 1\)/,
      );
      expect(() => opt.update(p, s)).toThrow(/paramAverage: params expected the parameters/);
    },
  );

  it("types each state from the parameters' type (checked by tsc)", () => {
    const p = start();
    expectTypeOf(optim.sgd(0.1).init(p)).toEqualTypeOf<optim.SgdState<P>>();
    expectTypeOf(optim.adam(0.1).init(p)).toEqualTypeOf<optim.AdamState<P>>();
    expectTypeOf(optim.adam(0.1).init(p).mu).toEqualTypeOf<P>();
    const opt = optim.chain(optim.adaptiveClip(), optim.adamw(0.1), optim.reduceOnPlateau());
    const s = opt.init(p);
    expectTypeOf(s).toEqualTypeOf<
      [optim.AdaptiveClipState, optim.AdamState<P>, optim.PlateauState]
    >();
    expectTypeOf(opt.update(p, s, p, { value: loss(p) }).updates).toEqualTypeOf<P>();
    expectTypeOf<optim.OptimizerState<typeof opt, P>>().toEqualTypeOf(s);
  });

  it("validates arguments", () => {
    expect(() => optim.adam(-1)).toThrow(
      /adam: learningRate expected a positive number or a schedule/,
    );
    expect(() => optim.clipByGlobalNorm(0)).toThrow(/clipByGlobalNorm: maxNorm/);
    const t = optim.reduceOnPlateau();
    expect(() => t.update({}, t.init({}))).toThrow(/extra.value expected the current loss/);
  });
});
