/**
 * Featurizer benchmarks: forward + backward (gradient w.r.t. all parameters of a mean-square
 * loss) per training step of nbi's default ResNet-GRU (weight norm, kernel 3, dimConvMin 32,
 * dimConvMax 256, 2 GRU layers, dimOut 32), float32, at the sine example's size (batch 32, length
 * 50, depth 3) and at batch 256, length 1000 (depth 5, by the rule of thumb log2 L − 5), eagerly
 * and under `jit` (the median of 10 timed steps after a warm-up step; one timed step at the large
 * size, which takes over a minute eagerly); and the same workload in PyTorch (bench/featurizers_torch.py, 2 threads,
 * OPENBLAS_NUM_THREADS=1) in the same run when Debian's python3-torch is installed.
 * Then whole training epochs at nbi's sine settings (issue 14): `trainPosterior` on 320 sine
 * curves (batch 32, 10% held out: 9 steps and a validation pass per epoch), the ResNet-GRU
 * { dimIn 1, dimOut 32, dimConvMax 256, depth 3 } feeding a MAF 32 hidden × 4 blocks, noise 1:
 * the first epoch (tracing and compiling included) and the median of the later ones, wall and
 * CPU time (CPU time is the steadier figure on a shared machine).
 * `--webgpu-only`: both sizes on WebGPU (eager and jit) and PyTorch on CUDA where it has a GPU
 * (the device machine's run, scripts/device/run.sh; NBI_PYTHON names its python).
 * Usage: npx tsx bench/featurizers.ts [--quick] [--epochs-only] [--webgpu-only [--small-only]]
 */
import { spawnSync } from "node:child_process";
import os from "node:os";
import { sine } from "../examples/sine-model.js";
import * as featurizers from "../src/featurizers/index.js";
import { type Array, np, random, tree, valueAndGrad } from "../src/index.js";
import { hostKey, uniforms } from "../src/inference/host.js";
import { fitScales, initPosterior, posteriorNetwork } from "../src/inference/posterior.js";
import { trainPosterior } from "../src/inference/train.js";
import { dispatchStats } from "../src/ops/webgpu/dispatch.js";
import { jit } from "../src/transforms/jit.js";

const quick = process.argv.includes("--quick");
const epochsOnly = process.argv.includes("--epochs-only");
const webgpuOnly = process.argv.includes("--webgpu-only");

interface Size {
  batch: number;
  length: number;
  depth: number;
  /** Timed steps (after one warm-up step). */
  steps: number;
}

const sizes: Size[] = [
  { batch: 32, length: 50, depth: 3, steps: quick ? 3 : 10 },
  { batch: 256, length: 1000, depth: 5, steps: 1 },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeSteps(step: () => unknown, steps: number): number {
  step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

const fmt = (s: number) => (s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`);

/** Training epochs at nbi's sine settings (see the header), printed. */
async function trainingEpochs(nEpochs: number): Promise<void> {
  const n = 320;
  const u = uniforms(hostKey(5), n * 3);
  const theta = new Float64Array(n * 3);
  const x = new Float32Array(n * 50);
  for (let i = 0; i < n; i++) {
    theta[3 * i] = u[3 * i]! * 2 * Math.PI;
    theta[3 * i + 1] = 1 + 4 * u[3 * i + 1]!;
    theta[3 * i + 2] = 2 * Math.PI + 10 * Math.PI * u[3 * i + 2]!;
    x.set(sine(theta.subarray(3 * i, 3 * i + 3)), i * 50);
  }
  const net = posteriorNetwork(
    { nDims: 3, flowHidden: 32, numBlocks: 4 },
    { type: "resnet-gru", dimIn: 1, dimOut: 32, dimConvMax: 256, depth: 3 },
    [50],
  );
  const scales = fitScales(x, theta, net.inputShape, 3);
  const params = await initPosterior(net, hostKey(0));
  const wall: number[] = [];
  const cpu: number[] = [];
  let c0 = process.cpuUsage();
  await trainPosterior(
    net,
    params,
    scales,
    { x, theta },
    {
      nEpochs,
      batchSize: 32,
      lr: 1e-3,
      minLr: 1e-3,
      noise: 1,
      key: hostKey(10),
      onEpoch: (e) => {
        const c = process.cpuUsage(c0);
        wall.push(e.seconds);
        cpu.push((c.user + c.system) / 1e6);
        c0 = process.cpuUsage();
      },
    },
  );
  const label = "ResNet-GRU + MAF 32×4, 320 sims, batch 32";
  console.log(
    `${`nbi epoch, first  ${label}`.padEnd(58)} ${fmt(wall[0]!).padStart(10)} (cpu ${fmt(cpu[0]!)}, tracing and compiling included)`,
  );
  console.log(
    `${`nbi epoch, later  ${label}`.padEnd(58)} ${fmt(median(wall.slice(1))).padStart(10)} (cpu ${fmt(median(cpu.slice(1)))}; median of ${wall.length - 1})`,
  );
}

if (webgpuOnly) {
  // For a machine with a real GPU (scripts/device/run.sh): both sizes on WebGPU, eager and jit,
  // then PyTorch on that machine's GPU when it has CUDA (on its CPU otherwise).
  console.log(`nbi featurizer benchmarks on WebGPU — Node ${process.version}\n`);
  // `--small-only`: the sine's size alone (the large one runs minutes on WebGPU's per-dispatch
  // cost; with `node --cpu-prof` that keeps a profile of the small one short).
  const which = process.argv.includes("--small-only") ? [sizes[0]!] : sizes;
  await webgpuSteps(which, true);
  torchSteps(which, true);
  process.exit(0);
}

if (epochsOnly) {
  console.log("Training epochs at nbi's sine settings (trainPosterior)\n");
  await trainingEpochs(quick ? 3 : 6);
  process.exit(0);
}

console.log(
  `nbi featurizer benchmarks — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}\n`,
);
console.log("ResNet-GRU (nbi default), forward+backward per step, float32\n");

for (const size of sizes) {
  const net = featurizers.resnetGru({ dimIn: 1, dimOut: 32, depth: size.depth });
  const params = net.init(random.key(0));
  const x = random.normal(random.key(1), [size.batch, 1, size.length]);
  const loss = (p: featurizers.ResNetGruParams, xx: Array) => np.mean(np.square(net.apply(p, xx)));
  const step = valueAndGrad(loss);
  const label = `batch ${size.batch}, length ${size.length}, depth ${size.depth}`;
  const eager = timeSteps(() => step(params, x)[0].dataSync(), size.steps);
  console.log(`${`nbi eager cpu    ${label}`.padEnd(58)} ${fmt(eager).padStart(10)} / step`);
  const jitted = jit(step);
  const compiled = timeSteps(() => jitted(params, x)[0].dataSync(), size.steps);
  console.log(`${`nbi jit cpu      ${label}`.padEnd(58)} ${fmt(compiled).padStart(10)} / step`);
}

console.log("\nTraining epochs at nbi's sine settings (trainPosterior)\n");
await trainingEpochs(quick ? 3 : 6);
console.log();

/** The same steps in PyTorch (bench/featurizers_torch.py), on CUDA when `onGpu` and it has one. */
function torchSteps(which: Size[], onGpu: boolean): void {
  const python = process.env.NBI_PYTHON ?? "/usr/bin/python3";
  const has = (code: string) => spawnSync(python, ["-c", code], { stdio: "ignore" }).status === 0;
  if (!has("import torch")) {
    console.log(
      `\nPyTorch: not installed for ${python} (apt-get install -y python3-torch), skipped`,
    );
    return;
  }
  const device = onGpu && has("import torch; assert torch.cuda.is_available()") ? "cuda" : "cpu";
  const specs = which.map((s) => `${s.batch}:${s.length}:${s.depth}:${s.steps}`);
  const run = spawnSync(
    python,
    [new URL("featurizers_torch.py", import.meta.url).pathname, ...specs],
    {
      encoding: "utf8",
      env: {
        ...process.env,
        OPENBLAS_NUM_THREADS: "1",
        OMP_NUM_THREADS: "2",
        MKL_NUM_THREADS: "2",
        NBI_TORCH_DEVICE: device,
      },
    },
  );
  if (run.status !== 0) {
    console.log(`\nPyTorch run failed:\n${run.stderr}`);
    return;
  }
  for (const line of run.stdout.trim().split("\n")) {
    const r = JSON.parse(line) as {
      batch: number;
      length: number;
      depth: number;
      seconds: number;
      threads: number;
      torch: string;
      device: string;
    };
    const label = `batch ${r.batch}, length ${r.length}, depth ${r.depth}`;
    const where = r.device === "cpu" ? `${r.threads}thr` : r.device;
    console.log(
      `${`torch ${r.torch} ${where} ${label}`.padEnd(58)} ${fmt(r.seconds).padStart(10)} / step`,
    );
  }
}

/**
 * Steps on WebGPU (where an adapter exists), eagerly and, with `withJit`, under `jit`; parameters
 * are initialised on the CPU and moved, since initialisation reads values on the host.
 */
async function webgpuSteps(which: Size[], withJit: boolean): Promise<void> {
  try {
    await np.useBackend("webgpu");
  } catch (e) {
    console.log(`WebGPU: skipped (${(e as Error).message.split("\n")[0]})`);
    return;
  }
  console.log(`WebGPU adapter: ${JSON.stringify(np.backendInfo())}`);
  // A kernel that fails on this adapter ends the WebGPU rows, not the run.
  try {
    for (const size of which) {
      await np.useBackend("cpu");
      const net = featurizers.resnetGru({ dimIn: 1, dimOut: 32, depth: size.depth });
      const [leaves, def] = tree.flatten<Array>(net.init(random.key(0)));
      const params = tree.unflatten(
        def,
        await Promise.all(leaves.map((l) => np.toBackend(l, "webgpu"))),
      ) as featurizers.ResNetGruParams;
      const x = await np.toBackend(
        random.normal(random.key(1), [size.batch, 1, size.length]),
        "webgpu",
      );
      await np.useBackend("webgpu");
      const loss = (p: featurizers.ResNetGruParams, xx: Array) =>
        np.mean(np.square(net.apply(p, xx)));
      const step = valueAndGrad(loss);
      const label = `batch ${size.batch}, length ${size.length}, depth ${size.depth}`;
      const modes: [string, typeof step][] = [["eager", step]];
      if (withJit) modes.push(["jit", jit(step)]);
      for (const [mode, f] of modes) {
        await f(params, x)[0].data();
        const reps = quick ? 1 : Math.max(1, Math.min(3, size.steps));
        const t0 = performance.now();
        let recording = 0;
        const d0 = dispatchStats().dispatches;
        for (let i = 0; i < reps; i++) {
          // The host's share: the time to record the step's kernels (the GPU runs them meanwhile).
          const r0 = performance.now();
          const out = f(params, x)[0];
          recording += performance.now() - r0;
          await out.data();
        }
        const seconds = (performance.now() - t0) / 1000 / reps;
        const kernels = (dispatchStats().dispatches - d0) / reps;
        console.log(
          `${`nbi ${mode} webgpu ${label}`.padEnd(58)} ${fmt(seconds).padStart(10)} / step` +
            ` (${kernels.toFixed(0)} kernels, recorded in ${(recording / reps).toFixed(1)} ms:` +
            ` ${((1000 * recording) / reps / kernels).toFixed(1)} µs each)`,
        );
      }
    }
  } catch (e) {
    console.log(`WebGPU: failed (${(e as Error).message.split("\n")[0]})`);
  }
  await np.useBackend("cpu");
}

await webgpuSteps([sizes[0]!], false);
torchSteps(sizes, false);
