/**
 * The cost of the atomic APT loss against NLL: one training epoch of the sbibm-sized surrogate
 * (MAF 64×5 over 10-D θ, MLP featurizer 10 → 32) at batch 64 on 2,000 rows, for atoms 1 (NLL),
 * 2, 5, 10 and 20. APT evaluates the flow at batch × atoms (θ, context) pairs, the featurizer once
 * per example: O(B·atoms) flow work. Prints seconds per epoch (the second epoch: no compiling).
 * Usage: npx tsx bench/apt.ts [--atoms 1,2,5,10,20] [--rows 2000]
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { hostKey, normals } from "../src/inference/host.js";
import { fitScales, initPosterior, posteriorNetwork } from "../src/inference/posterior.js";
import { trainPosterior } from "../src/inference/train.js";

const { values } = parseArgs({
  options: {
    atoms: { type: "string", default: "1,2,5,10,20" },
    rows: { type: "string", default: "2000" },
  },
});
const d = 10;
const n = Number(values.rows);
const net = posteriorNetwork(
  { nDims: d, flowHidden: 64, numBlocks: 5 },
  { type: "mlp", dimIn: d, dimOut: 32 },
  [d],
);
const theta = Float64Array.from(normals(hostKey(0), n * d));
const eps = normals(hostKey(1), n * d);
const x = Float32Array.from(theta, (t, i) => t + 0.3 * eps[i]!);
const logPrior = new Float64Array(n);
const scales = fitScales(x, theta, net.inputShape, d);
const params = await initPosterior(net, hostKey(2));
console.log(
  `APT vs NLL — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}`,
);
console.log("atoms  loss  s/epoch  × NLL");
let base = Number.NaN;
for (const atoms of values.atoms.split(",").map(Number)) {
  const r = await trainPosterior(
    net,
    params,
    scales,
    { x, theta, logPrior },
    {
      nEpochs: 2,
      batchSize: 64,
      lr: 1e-3,
      minLr: 1e-4,
      key: hostKey(3),
      loss: atoms > 1 ? "apt" : "nll",
      atoms,
    },
  );
  const s = r.epochs[1]!.seconds;
  if (atoms === 1) base = s;
  console.log(
    `${String(atoms).padStart(5)}  ${(atoms > 1 ? "apt" : "nll").padEnd(4)}  ${s.toFixed(3).padStart(7)}  ${(s / base).toFixed(2).padStart(5)}`,
  );
}
