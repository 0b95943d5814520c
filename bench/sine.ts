/**
 * The whole sine run (nbi's example and budget: 3 rounds × 320 simulations, batch 32).
 *
 * First, nbi's own test exactly as nbi 0.4.1's test_engine.py runs it (ResNet-GRU {dimOut 32,
 * dimConvMax 256, depth 3}, MAF 32 × 4, lr = minLr = 1e-3, up to 100 epochs, patience 1,
 * earlyStopTrain, nbi's seed-0 observation from bench/fixtures), ours beside nbi 0.4.1 run in the
 * same process tree (`--peer`, Debian's /usr/bin/python3 with python3-torch and the anchor in
 * ../shared/anchors/nbi), one thread each by default (`--threads`): fit time, epochs per round,
 * seconds per training epoch, efficiency per round, predict's n_eff of 1,000 and KL(ref‖q) against
 * the exact quadrature posterior (bench/sine-reference.ts). `--anpe` adds the amortized rows
 * (10,000 prior simulations, 20 epochs, patience 1).
 *
 * Then the table: fit and predict wall time, final-round efficiency, predict's n_eff and
 * KL(ref‖q) of the final surrogate against each observation's exact posterior, medians over seeds,
 * per backend, featurizer and loss/proposal, at our defaults.
 *
 * Usage: npm run bench:sine [-- --nbi-settings --peer --anpe --threads 1 --seeds 0,1,2
 *        --featurizers mlp,resnet-gru --backends cpu,webgpu --epochs 60 --gpu-epochs 5]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  flow,
  mlpFeaturizer,
  NOISE_SIGMA,
  observation,
  priors,
  resnetGruFeaturizer,
  sine,
  times,
} from "../examples/sine-model.js";
import { NBI, np } from "../src/index.js";
import type { ProposalKind, SequentialLoss } from "../src/inference/snpe.js";
import { setThreads } from "../src/ops/cpu/threads.js";
import { klFromReference, sineReference } from "./sine-reference.js";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "0,1,2" },
    featurizers: { type: "string", default: "mlp" },
    backends: { type: "string", default: "cpu,webgpu" },
    epochs: { type: "string", default: "60" },
    // lavapipe emulates a GPU on the CPU: a full run there takes many minutes, so fewer epochs.
    "gpu-epochs": { type: "string", default: "5" },
    // Sequential loss/proposal[/flowSpace] to compare (RoundOptions), e.g. nll/surrogate/theta.
    methods: { type: "string", default: "auto/auto" },
    // nbi's own test, ours and (with --peer) nbi 0.4.1's, printed before the table.
    "nbi-settings": { type: "boolean", default: true },
    "no-nbi-settings": { type: "boolean", default: false },
    peer: { type: "boolean", default: false },
    anpe: { type: "boolean", default: false },
    // Only the amortized rows (with --anpe), and their epoch budget (nbi's ANPE test: 20).
    "anpe-only": { type: "boolean", default: false },
    "anpe-epochs": { type: "string", default: "20" },
    "anpe-patience": { type: "string", default: "1" },
    // Threads for both sides of the nbi comparison (ours: the kernel pool; PyTorch: set_num_threads).
    threads: { type: "string", default: "1" },
    "peer-seeds": { type: "string", default: "0" },
    // loss/proposal of our rows at nbi's settings (RoundOptions), e.g. auto/adaptive.
    "nbi-methods": { type: "string", default: "auto/auto" },
    // Earlier rounds' simulations our rows at nbi's settings train on (RoundOptions.nReuse):
    // "auto" (ours by default), −1 all, 0 only the round's own as nbi's default n_reuse = 0 does.
    "nbi-reuse": { type: "string", default: "auto" },
    // Epochs per round and early-stopping patience of our sequential rows at nbi's settings
    // (nbi's test: 100 and 1; a patience above the epochs trains every one), for diagnostics.
    "nbi-epochs": { type: "string", default: "100" },
    "nbi-patience": { type: "string", default: "1" },
    // fit's emaHalfLife for every row of ours (unset: the library's default; 0: nbi's raw
    // parameters).
    "ema-half-life": { type: "string" },
    // fit's calibrateSpread for every row of ours (unset: the library's default, on; "false":
    // the surrogate as trained).
    "calibrate-spread": { type: "string" },
    // Our featurizer at nbi's settings: nbi's ResNet-GRU, or "mlp" (the demo's), a diagnostic
    // (nbi's peer keeps its ResNet-GRU).
    "nbi-featurizer": { type: "string", default: "resnet-gru" },
    // Skip the default table (only the nbi comparison).
    "nbi-only": { type: "boolean", default: false },
  },
});

const rowOptions = {
  ...(values["ema-half-life"] !== undefined
    ? { emaHalfLife: Number(values["ema-half-life"]) }
    : {}),
  ...(values["calibrate-spread"] !== undefined
    ? { calibrateSpread: values["calibrate-spread"] !== "false" }
    : {}),
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function runOnce(
  seed: number,
  featurizer: string,
  backend: "cpu" | "webgpu",
  nEpochs: number,
  method: string,
) {
  const [loss, proposal, flowSpace = "unbounded"] = method.split("/") as [
    SequentialLoss,
    ProposalKind,
    "unbounded" | "theta",
  ];
  const xObs = observation(seed);
  const path = mkdtempSync(join(os.tmpdir(), "nbi-bench-sine-"));
  try {
    const engine = new NBI({
      flow,
      featurizer: featurizer === "resnet-gru" ? resnetGruFeaturizer : mlpFeaturizer,
      simulator: sine,
      priors,
      path,
      seed,
      backend,
    });
    const t0 = performance.now();
    const fit = await engine.fit({
      xObs,
      nSims: 320,
      nRounds: 3,
      nEpochs,
      batchSize: 32,
      noise: NOISE_SIGMA,
      progress: false,
      loss,
      proposal,
      flowSpace,
      ...rowOptions,
    });
    const fitS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    // predict's own 1,000 draws (the n_eff of earlier rows), then with the fit's pooled in.
    const post = await engine.predict(xObs, { xErr: NOISE_SIGMA, nSamples: 1000, pool: false });
    const predictS = (performance.now() - t1) / 1000;
    const pooled = await engine.predict(xObs, { xErr: NOISE_SIGMA, nSamples: 1000 });
    // KL(ref‖q) of the final surrogate against this observation's exact posterior (quadrature).
    const ref = referenceFor(`demo seed ${seed}`, xObs);
    const draws = ref.draw(10_000, 11);
    const kl = klFromReference(ref, draws, await engine.logProb(xObs, draws.theta)).kl;
    const spread = fit.history.flatMap((h) =>
      h.spread?.applied ? [`r${h.round}×${h.spread.tau!.toFixed(2)}`] : [],
    );
    return {
      fitS,
      predictS,
      efficiency: fit.history.at(-1)!.efficiency!,
      ess: post.ess,
      essPooled: pooled.ess,
      kl,
      seed,
      spread,
    };
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

const HERE = dirname(fileURLToPath(import.meta.url));
const PEER = join(HERE, "..", "..", "shared", "anchors", "nbi", "run_nbi_sine.py");
/** What nbi 0.4.1 needs from Debian to run here. */
const PEER_PACKAGES =
  "apt-get install -y python3-torch python3-multiprocess python3-tqdm python3-matplotlib python3-scipy";
const nbiProblem = JSON.parse(
  readFileSync(join(HERE, "fixtures", "nbi-sine-observation.json"), "utf8"),
) as { thetaTrue: number[]; xObs: number[] };
/** nbi's test_engine.py networks. */
const NBI_FEATURIZER = {
  type: "resnet-gru",
  dimIn: 1,
  dimOut: 32,
  dimConvMax: 256,
  depth: 3,
} as const;
const NBI_FLOW = { nDims: 3, flowHidden: 32, numBlocks: 4 };

interface NbiSettingsRow {
  fitS: number;
  epochs: number[];
  sPerEpoch: number;
  efficiency: number[];
  predictEss?: number;
  /** The same with the fit's weighed draws pooled in (predict's default). */
  predictEssPooled?: number;
  kl?: number;
  /** Epochs trained in all, candidates not kept included (ours only). */
  epochsTrained?: number;
  /** The loss each trained sequential round used (a select round's choice). */
  losses?: string[];
}

const ANPE_EPOCHS = Number(values["anpe-epochs"]);

/** Ours on nbi's test (or its amortized variant), at nbi's settings and observation. */
async function oursAtNbiSettings(
  seed: number,
  anpe: boolean,
  method: string,
): Promise<NbiSettingsRow> {
  const [loss, proposal] = method.split("/") as [SequentialLoss, ProposalKind];
  const xObs = nbiProblem.xObs;
  const path = mkdtempSync(join(os.tmpdir(), "nbi-bench-sine-nbi-"));
  try {
    const engine = new NBI({
      flow: NBI_FLOW,
      featurizer: values["nbi-featurizer"] === "mlp" ? mlpFeaturizer : NBI_FEATURIZER,
      simulator: sine,
      priors,
      path,
      seed,
    });
    const epochSeconds: number[] = [];
    const onEpoch = (_: number, e: { seconds: number }) => epochSeconds.push(e.seconds);
    const t0 = performance.now();
    // nbi's automatic min_lr when none is given: min(lr, lr / (steps per round) · 10).
    const fit = anpe
      ? await engine.fit({
          nSims: 10_000,
          nRounds: 1,
          nEpochs: ANPE_EPOCHS,
          batchSize: 32,
          lr: 1e-3,
          minLr: Math.min(1e-3, (1e-3 / ((10_000 / 32) * ANPE_EPOCHS)) * 10),
          earlyStopPatience: Number(values["anpe-patience"]),
          ...rowOptions,
          noise: NOISE_SIGMA,
          progress: false,
          onEpoch,
        })
      : await engine.fit({
          xObs,
          nSims: 320,
          nRounds: 3,
          nEpochs: Number(values["nbi-epochs"]),
          batchSize: 32,
          lr: 1e-3,
          minLr: 1e-3,
          earlyStopPatience: Number(values["nbi-patience"]),
          ...rowOptions,
          earlyStopTrain: true,
          noise: NOISE_SIGMA,
          progress: false,
          onEpoch,
          loss,
          proposal,
          nReuse: values["nbi-reuse"] === "auto" ? "auto" : Number(values["nbi-reuse"]),
        });
    const fitS = (performance.now() - t0) / 1000;
    const post = await engine.predict(xObs, { xErr: NOISE_SIGMA, nSamples: 1000, pool: false });
    const pooled = await engine.predict(xObs, { xErr: NOISE_SIGMA, nSamples: 1000 });
    const draws = reference().draw(10_000, 11);
    const logQ = await engine.logProb(xObs, draws.theta);
    return {
      fitS,
      epochs: fit.history.filter((h) => h.trained).map((h) => h.epochs.length),
      // Every epoch trained, the candidates a select round did not keep included.
      epochsTrained: epochSeconds.length,
      sPerEpoch: median(epochSeconds),
      efficiency: fit.history.flatMap((h) => (h.efficiency === undefined ? [] : [h.efficiency])),
      predictEss: post.ess,
      predictEssPooled: pooled.ess,
      kl: klFromReference(reference(), draws, logQ).kl,
      // A round that kept the candidate trained on its own simulations (nReuse "auto"): "nll·own";
      // one that kept it as a challenger: "·ch"; the next round's pilot chose it: "ch✓", or not: "ch✗";
      // a surrogate whose spread was calibrated at held-out draws: "·τ" and its base scale.
      losses: fit.history
        .filter((h) => h.round > 0 && h.trained)
        .map(
          (h) =>
            `${h.duel ? (h.duel.winner === "challenger" ? "ch✓ " : "ch✗ ") : ""}${h.loss ?? "—"}` +
            `${h.trainedFrom === h.round ? "·own" : ""}${h.challenger ? "·ch" : ""}` +
            `${h.spread?.applied ? `·τ${h.spread.tau!.toFixed(2)}` : ""}`,
        ),
    };
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

/** Each observation's quadrature reference, computed once however many rows read it. */
const references = new Map<string, ReturnType<typeof sineReference>>();
function referenceFor(name: string, xObs: ArrayLike<number>) {
  let ref = references.get(name);
  if (!ref) {
    ref = sineReference(times, xObs, NOISE_SIGMA);
    references.set(name, ref);
  }
  return ref;
}
const reference = () => referenceFor("nbi's observation", nbiProblem.xObs);

/**
 * nbi 0.4.1 on the same test, as a child process (its own JSON line). OpenBLAS gets the same
 * thread count as PyTorch, so neither side runs a second pool the other lacks.
 */
function peerAtNbiSettings(seed: number, anpe: boolean, threads: number): NbiSettingsRow | string {
  if (!existsSync(PEER)) return `peer skipped: ${PEER} not found`;
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  const run = spawnSync(
    "/usr/bin/python3",
    [PEER, "--seed", String(seed), "--threads", String(threads), ...(anpe ? ["--anpe"] : [])],
    { cwd: dirname(PEER), env, encoding: "utf8", maxBuffer: 64 << 20 },
  );
  const line = run.stdout?.trim().split("\n").at(-1);
  if (run.status !== 0 || !line?.startsWith("{")) {
    const last = (run.stderr ?? "").trim().split("\n").at(-1) ?? "";
    // nbi's Python dependencies, as ../shared/anchors/nbi/README.md lists them.
    const hint = last.includes("ModuleNotFoundError") ? ` (${PEER_PACKAGES})` : "";
    return `peer failed (exit ${run.status}): ${last}${hint}`;
  }
  const r = JSON.parse(line) as {
    t_fit_s: number;
    epochs_per_round: number[];
    train_s_per_epoch_median: number;
    efficiency_per_round?: number[];
  };
  return {
    fitS: r.t_fit_s,
    epochs: r.epochs_per_round,
    sPerEpoch: r.train_s_per_epoch_median,
    efficiency: r.efficiency_per_round ?? [],
  };
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
/** Epochs per round kept, and in brackets all epochs trained where candidates were dropped. */
function epochsText(r: NbiSettingsRow): string {
  const kept = r.epochs.reduce((a, b) => a + b, 0);
  const all = r.epochsTrained ?? kept;
  return `${r.epochs.join("/")}${all > kept ? ` (${all})` : ""}`;
}
function printNbiRow(name: string, r: NbiSettingsRow | string) {
  if (typeof r === "string") {
    console.log(`${name.padEnd(34)} ${r}`);
    return;
  }
  console.log(
    `${name.padEnd(34)} ${r.fitS.toFixed(1).padStart(7)} ${epochsText(r).padStart(14)} ${r.sPerEpoch
      .toFixed(3)
      .padStart(
        8,
      )} ${r.efficiency.map(pct).join(" ").padStart(28)} ${(r.predictEss?.toFixed(0) ?? "—").padStart(8)} ${(r.predictEssPooled?.toFixed(0) ?? "—").padStart(8)} ${(r.kl?.toFixed(2) ?? "—").padStart(6)}  ${r.losses?.join("/") ?? "—"}`,
  );
}

if (values["nbi-settings"] && !values["no-nbi-settings"]) {
  const threads = Number(values.threads);
  setThreads(threads);
  console.log(
    `nbi's sine test at nbi's settings — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}, ${threads} thread(s) each, load ${os.loadavg()[0]!.toFixed(1)}`,
  );
  const ref = reference();
  console.log(
    `exact posterior (quadrature): mean ${ref.mean.map((v) => v.toFixed(3)).join(", ")}, sd ${ref.std.map((v) => v.toFixed(3)).join(", ")}`,
  );
  console.log(
    `${"run".padEnd(34)} ${"fit s".padStart(7)} ${"epochs (all)".padStart(14)} ${"s/epoch".padStart(8)} ${"efficiency per round".padStart(28)} ${"n_eff/1k".padStart(8)} ${"+pooled".padStart(8)} ${"KL".padStart(6)}  later rounds' losses`,
  );
  const kinds = values.anpe ? (values["anpe-only"] ? [true] : [false, true]) : [false];
  for (const anpe of kinds) {
    for (const seed of values["peer-seeds"].split(",").map(Number)) {
      const what = anpe
        ? `ANPE 10⁴${ANPE_EPOCHS === 20 ? "" : ` ${ANPE_EPOCHS} ep`}`
        : "SNPE 3×320";
      for (const method of anpe ? ["auto/auto"] : values["nbi-methods"].split(","))
        printNbiRow(
          `ours${method === "auto/auto" ? "" : ` ${method}`}, ${what}, seed ${seed}`,
          await oursAtNbiSettings(seed, anpe, method),
        );
      if (values.peer)
        printNbiRow(`nbi 0.4.1, ${what}, seed ${seed}`, peerAtNbiSettings(seed, anpe, threads));
    }
  }
  console.log("");
}
if (values["nbi-only"]) process.exit(0);

console.log(
  `sine run (fit + predict) — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}`,
);
console.log(
  "nbi 0.4.1 reference (PyTorch 1.13, 2 threads): fit 14.8 s, predict 0.25 s, final-round efficiency ≈ 5%\n",
);
console.log(
  `${"backend".padEnd(8)} ${"featurizer".padEnd(11)} ${"loss/proposal".padEnd(22)} ${"epochs".padStart(6)} ${"seeds".padStart(5)} ${"fit s".padStart(7)} ${"predict s".padStart(9)} ${"final eff".padStart(9)} ${"predict n_eff/1000".padStart(18)} ${"KL nats".padStart(8)}`,
);
const seeds = values.seeds.split(",").map(Number);
for (const backend of values.backends.split(",") as ("cpu" | "webgpu")[]) {
  if (backend === "webgpu") {
    try {
      await np.useBackend("webgpu");
    } catch (e) {
      console.log(`webgpu skipped: ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
  }
  for (const [featurizer, method] of values.featurizers
    .split(",")
    .flatMap((f) => values.methods.split(",").map((m) => [f, m] as const))) {
    const nEpochs = Number(backend === "webgpu" ? values["gpu-epochs"] : values.epochs);
    const runSeeds = backend === "webgpu" ? seeds.slice(0, 1) : seeds;
    const runs = [];
    for (const seed of runSeeds)
      runs.push(await runOnce(seed, featurizer, backend, nEpochs, method));
    console.log(
      `${backend.padEnd(8)} ${featurizer.padEnd(11)} ${method.padEnd(22)} ${String(nEpochs).padStart(6)} ${String(runSeeds.length).padStart(5)} ` +
        `${median(runs.map((r) => r.fitS))
          .toFixed(2)
          .padStart(7)} ${median(runs.map((r) => r.predictS))
          .toFixed(2)
          .padStart(9)} ` +
        `${`${(100 * median(runs.map((r) => r.efficiency))).toFixed(1)}%`.padStart(9)} ${median(
          runs.map((r) => r.ess),
        )
          .toFixed(0)
          .padStart(18)} ${median(runs.map((r) => r.kl))
          .toFixed(2)
          .padStart(8)}`,
    );
    // Each seed's figures, and the rounds whose surrogate's spread was calibrated.
    if (runs.length > 1)
      for (const r of runs)
        console.log(
          `  seed ${r.seed}: final eff ${(100 * r.efficiency).toFixed(1)}%, n_eff ${r.ess.toFixed(0)} (${r.essPooled.toFixed(0)} with the fit's draws pooled), KL ${r.kl.toFixed(2)}` +
            `${r.spread.length > 0 ? `, spread ${r.spread.join(" ")}` : ""}`,
        );
  }
}
