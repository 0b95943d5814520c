/**
 * The conditional-MAF training-step benchmark of the jit issue, with the same math and the same
 * deterministic data and initial weights as the peer scripts in ../shared/anchors (ported here:
 * a 32-bit LCG + Box–Muller; nothing is imported from there). θ dim 3, context dim 32, 5 MADE
 * blocks, loss = mean NLL, one step = loss + gradient + Adam. Prints steps/s (median step time)
 * eager and with `jit(step)`, and the held-out NLL after the timed steps as a correctness check.
 * Usage: npx tsx bench/maf.ts [--steps N] [--sizes small,big] [--modes eager,jit] [--backend cpu|webgpu]
 */
import os from "node:os";
import { type Array, jit, np, tree, valueAndGrad } from "../src/index.js";

const D = 3;
const C = 32;
const BLOCKS = 5;
const N_TRAIN = 16384;
const N_TEST = 4096;
const [LR, B1, B2, EPS] = [1e-3, 0.9, 0.999, 1e-8];

class Lcg {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  uniform(): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s / 4294967296;
  }
  normal(): number {
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

function makeData() {
  const r = new Lcg(12345);
  const w = Float64Array.from({ length: D * C }, () => r.normal());
  const gen = (n: number) => {
    const th = Float64Array.from({ length: n * D }, () => r.normal());
    const noise = Float64Array.from({ length: n * C }, () => r.normal());
    const ctx = new Float32Array(n * C);
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < C; j++) {
        let s = noise[k * C + j]!;
        for (let i = 0; i < D; i++) s += th[k * D + i]! * w[i * C + j]!;
        ctx[k * C + j] = s;
      }
    }
    return { theta: Float32Array.from(th), ctx };
  };
  return { train: gen(N_TRAIN), test: gen(N_TEST) };
}

type Block = Record<"W1" | "Wc" | "b1" | "W2" | "b2" | "W3" | "b3", Array>;

function makeParams(h: number): Block[] {
  const r = new Lcg(777);
  const u = (shape: number[], lim: number) =>
    np.fromTypedArray(
      Float32Array.from(
        { length: shape.reduce((a, b) => a * b, 1) },
        () => (2 * r.uniform() - 1) * lim,
      ),
      shape,
    );
  return globalThis.Array.from({ length: BLOCKS }, () => ({
    W1: u([D, h], 1 / Math.sqrt(D)),
    Wc: u([C, h], 1 / Math.sqrt(C)),
    b1: np.zeros([h]),
    W2: u([h, h], 1 / Math.sqrt(h)),
    b2: np.zeros([h]),
    W3: u([h, 2 * D], 0.01),
    b3: np.zeros([2 * D]),
  }));
}

function makeMasks(h: number) {
  const inDeg = (i: number) => i + 1;
  const hDeg = (k: number) => (k % (D - 1)) + 1;
  const mask = (rows: number, cols: number, f: (i: number, j: number) => boolean) =>
    np.fromTypedArray(
      Float32Array.from({ length: rows * cols }, (_, t) =>
        f(Math.floor(t / cols), t % cols) ? 1 : 0,
      ),
      [rows, cols],
    );
  return {
    M1: mask(D, h, (i, k) => hDeg(k) >= inDeg(i)),
    M2: mask(h, h, (k, l) => hDeg(l) >= hDeg(k)),
    M3: mask(h, 2 * D, (k, j) => inDeg(j % D) > hDeg(k)),
  };
}

function nll(
  params: Block[],
  masks: ReturnType<typeof makeMasks>,
  theta: Array,
  ctx: Array,
): Array {
  let x = theta;
  let logdet: Array = np.zeros([theta.shape[0]!]);
  params.forEach((p, k) => {
    const h1 = np.relu(x.matmul(p.W1.mul(masks.M1)).add(ctx.matmul(p.Wc)).add(p.b1));
    const h2 = np.relu(h1.matmul(p.W2.mul(masks.M2)).add(p.b2));
    const o = h2.matmul(p.W3.mul(masks.M3)).add(p.b3);
    const m = np.slice(o, null, [0, D]);
    const a = np.clip(np.slice(o, null, [D, 2 * D]), -1, 1);
    x = x.sub(m).mul(np.exp(a.neg()));
    logdet = logdet.sub(a.sum({ axis: 1 }));
    if (k < params.length - 1) x = np.take(x, [2, 1, 0], 1);
  });
  const logp = x
    .square()
    .sum({ axis: 1 })
    .mul(-0.5)
    .sub(0.5 * D * Math.log(2 * Math.PI));
  return np.mean(logp.add(logdet).neg());
}

interface State {
  params: Block[];
  m: Block[];
  v: Block[];
  t: Array;
}

function makeStep(masks: ReturnType<typeof makeMasks>) {
  const lossAndGrad = valueAndGrad((p: Block[], th: Array, c: Array) => nll(p, masks, th, c));
  return (s: State, theta: Array, ctx: Array): [Array, State] => {
    const [loss, g] = lossAndGrad(s.params, theta, ctx);
    const t = s.t.add(1);
    const m = tree.map((mi: Array, gi: Array) => mi.mul(B1).add(gi.mul(1 - B1)), s.m, g) as Block[];
    const v = tree.map(
      (vi: Array, gi: Array) => vi.mul(B2).add(gi.square().mul(1 - B2)),
      s.v,
      g,
    ) as Block[];
    const c1 = np.sub(1, np.pow(B1, t));
    const c2 = np.sub(1, np.pow(B2, t));
    const params = tree.map(
      (p: Array, mi: Array, vi: Array) =>
        p.sub(
          mi
            .div(c1)
            .mul(LR)
            .div(np.sqrt(vi.div(c2)).add(EPS)),
        ),
      s.params,
      m,
      v,
    ) as Block[];
    return [loss, { params, m, v, t }];
  };
}

async function run(
  size: "small" | "big",
  mode: "eager" | "jit",
  steps: number,
  data: ReturnType<typeof makeData>,
) {
  const [batch, h] = size === "small" ? [256, 64] : [1024, 256];
  const masks = makeMasks(h);
  const params = makeParams(h);
  const zeros = () => tree.map((p: Array) => np.zerosLike(p), params) as Block[];
  let state: State = { params, m: zeros(), v: zeros(), t: np.array(0) };
  const step = mode === "jit" ? jit(makeStep(masks)) : makeStep(masks);
  const theta = np.fromTypedArray(data.train.theta, [N_TRAIN, D]);
  const ctx = np.fromTypedArray(data.train.ctx, [N_TRAIN, C]);
  const batches = globalThis.Array.from({ length: N_TRAIN / batch }, (_, s) => [
    np.slice(theta, [s * batch, (s + 1) * batch]),
    np.slice(ctx, [s * batch, (s + 1) * batch]),
  ]);
  const warmup = Math.min(20, Math.ceil(steps / 4));
  const times: number[] = [];
  let firstMs = 0;
  for (let i = 0; i < warmup + steps; i++) {
    const [th, c] = batches[i % batches.length]!;
    const t0 = performance.now();
    const [loss, next] = step(state, th!, c!);
    await loss.data(); // synchronise, as the peers do
    const dt = performance.now() - t0;
    if (i === 0) firstMs = dt;
    if (i >= warmup) times.push(dt);
    state = next;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const testNll = (
    await nll(
      state.params,
      masks,
      np.fromTypedArray(data.test.theta, [N_TEST, D]),
      np.fromTypedArray(data.test.ctx, [N_TEST, C]),
    ).data()
  )[0]!;
  return { median, firstMs, testNll };
}

const args = process.argv.slice(2);
const stepsArg = args.indexOf("--steps");
const sizesArg = args.indexOf("--sizes");
const sizes = (sizesArg >= 0 ? args[sizesArg + 1]! : "small,big").split(",") as ("small" | "big")[];
const backendArg = args.indexOf("--backend");
const backend = (backendArg >= 0 ? args[backendArg + 1]! : "cpu") as "cpu" | "webgpu";
const modesArg = args.indexOf("--modes");
const modes = (modesArg >= 0 ? args[modesArg + 1]! : "eager,jit").split(",") as ("eager" | "jit")[];
await np.useBackend(backend);
const data = makeData();
console.log(
  `conditional-MAF step on ${backend} — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}`,
);
for (const size of sizes) {
  const steps = stepsArg >= 0 ? Number(args[stepsArg + 1]) : size === "small" ? 200 : 30;
  for (const mode of modes) {
    const r = await run(size, mode, steps, data);
    console.log(
      `${size.padEnd(5)} ${mode.padEnd(5)} ${(1000 / r.median).toFixed(1).padStart(7)} steps/s  ` +
        `(median ${r.median.toFixed(2)} ms, first step ${r.firstMs.toFixed(0)} ms, held-out NLL after ${steps + Math.min(20, Math.ceil(steps / 4))} steps ${r.testNll.toFixed(4)})`,
    );
  }
}
