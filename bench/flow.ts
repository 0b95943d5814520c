/**
 * Flow benchmarks: log-prob and sampling throughput of `maf`/`nsf` (nbi defaults: 5 blocks, hidden
 * 64), and one training step (loss + gradient + Adam), eager and under `jit`.
 * Usage: npx tsx bench/flow.ts [--dims 3] [--batch 512]
 */
import os from "node:os";
import * as bij from "../src/bijectors/index.js";
import { type Array, jit, np, random, valueAndGrad } from "../src/index.js";
import * as optim from "../src/optim/index.js";

const args = process.argv.slice(2);
const arg = (name: string, d: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const D = arg("dims", 3);
const N = arg("batch", 512);

function time(f: () => Array, reps: number): number {
  f().dataSync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f().dataSync();
  return (performance.now() - t0) / reps;
}

console.log(
  `flows — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}, d=${D}, batch ${N}`,
);
for (const [name, flow] of [
  ["maf", bij.maf({ nDims: D })],
  ["maf nMog=3", bij.maf({ nDims: D, nMog: 3 })],
  ["nsf", bij.nsf({ nDims: D })],
] as const) {
  const params = flow.init(random.key(0));
  const x = random.normal(random.key(1), [N, D]);
  const lp = time(() => flow.logProb(params, x), 10);
  const smp = time(() => flow.sample(params, random.key(2), N), 3);
  const opt = optim.adam(1e-3);
  const loss = (p: bij.FlowParams, v: Array) => np.neg(np.mean(flow.logProb(p, v)));
  const step = (p: bij.FlowParams, s: optim.AdamState<bij.FlowParams>, v: Array) => {
    const [l, g] = valueAndGrad(loss)(p, v);
    const r = opt.update(g, s, p);
    return { p: optim.applyUpdates(p, r.updates), s: r.state, l };
  };
  const state = opt.init(params);
  const eager = time(() => step(params, state, x).l, 5);
  const jitted = jit(step);
  const jt = time(() => jitted(params, state, x).l, 20);
  console.log(
    `${name.padEnd(11)} logProb ${lp.toFixed(2)} ms  sample ${smp.toFixed(2)} ms  ` +
      `train step eager ${eager.toFixed(2)} ms, jit ${jt.toFixed(2)} ms`,
  );
}
