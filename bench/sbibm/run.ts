/**
 * The sbibm benchmark (issue 13): for each task × simulation budget × method, fit the NBI engine
 * with the README's defaults (MAF 64×5, MLP featurizer → 32 features, batch 64, lr 1e-3, early-stop
 * patience 20, up to 200 epochs; sequential methods in 10 rounds of budget/10, sbibm's protocol),
 * then measure against this project's exact reference posterior:
 *
 * - C2ST of the raw surrogate (`engine.sample`, no likelihood: comparable to sbi's numbers),
 * - the weighted posterior of `predict` with the exact likelihood (10,000 draws): its ESS (nbi's
 *   n_eff), efficiency and Pareto k̂; the largest error of a weighted mean in reference σ and of a
 *   weighted sd relative to the reference's; mode weights (two_moons' arms, SLCP's four sign
 *   modes) against the reference's; C2ST of the weights resampled (only when ≥ 90% of the
 *   resampled rows are distinct: duplicates alone push C2ST up),
 * - likelihood calls per effective sample: (fit simulations + predict draws) / ESS,
 * - wall time of fit + predict,
 *
 * beside the published sbi C2ST (sbi-benchmark/results, main_paper.csv, mean over observations
 * 1–10, as quoted in issue 13); with `--obs` naming several observations, a second table gives
 * each method's means over them (`observationMeans`), the published figures' basis.
 *
 * Usage: npm run bench:sbibm -- --tasks two_moons,slcp --budgets 1000,10000 --obs 1
 *   --methods anpe,nll/surrogate,apt/surrogate,weighted-nll/mixture,nll/truncated,auto/auto
 *             (a ":logit" or ":theta" suffix sets the flow space, e.g. auto/auto:logit)
 *   --seed 0 --out results.json [--c2st-n 10000] [--c2st-epochs 300] [--epochs 200] [--patience 20]
 *   [--no-adapt-rounds] [--flow nsf] [--featurizer linear] [--ema-half-life H] [--n-reuse N]
 *   [--keep DIR] [--run-dir DIR] [--predict-n N]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NBI } from "../../src/inference/engine.js";
import {
  FLOW_SPACES,
  PROPOSAL_KINDS,
  SEQUENTIAL_LOSSES,
} from "../../src/inference/fit-settings.js";
import { type LogLike, thetaLogLike } from "../../src/inference/likelihood.js";
import type { FlowSpace, ProposalKind, SequentialLoss } from "../../src/inference/snpe.js";
import { flagValue } from "./args.js";
import { c2st } from "./c2st.js";
import { closedFormLogEvidence, klToReference } from "./kl.js";
import { loadReference, type Reference, resampleIndices } from "./reference.js";
import { Rng } from "./rng.js";
import { getTask, TASK_NAMES, type Task } from "./tasks.js";

/** Published C2ST of sbi (mean over observations 1–10): NPE and SNPE-C at 10³ and 10⁴. */
export const PUBLISHED: Record<string, { npe: [number, number]; snpe: [number, number] }> = {
  two_moons: { npe: [0.725, 0.606], snpe: [0.643, 0.554] },
  slcp: { npe: [0.975, 0.901], snpe: [0.965, 0.845] },
  gaussian_linear_uniform: { npe: [0.696, 0.553], snpe: [0.631, 0.527] },
  gaussian_mixture: { npe: [0.731, 0.661], snpe: [0.697, 0.583] },
  bernoulli_glm: { npe: [0.863, 0.678], snpe: [0.855, 0.614] },
};

/** A method: one amortized round, or a sequential loss with a proposal. */
export interface Method {
  /** As given on the command line. */
  readonly label: string;
  /** Rounds (1 for "anpe"). */
  readonly nRounds: number;
  /** Sequential loss (absent for "anpe"). */
  readonly loss?: SequentialLoss;
  /** Sequential proposal (absent for "anpe"). */
  readonly proposal?: ProposalKind;
  /** Where the flow lives (a ":logit" or ":theta" suffix; absent: the default). */
  readonly flowSpace?: FlowSpace;
}

// The fit's own lists, so a new loss or proposal is benchmarkable as soon as fit takes it.
const LOSSES: readonly SequentialLoss[] = SEQUENTIAL_LOSSES;
const PROPOSALS: readonly ProposalKind[] = PROPOSAL_KINDS;

/** Parses "anpe" or "loss/proposal", either with an optional ":flowSpace" suffix. */
export function parseMethod(label: string): Method {
  const [name = "", space] = label.split(":");
  if (space !== undefined && !FLOW_SPACES.includes(space as FlowSpace))
    throw new Error(`method "${label}": flow space must be one of ${FLOW_SPACES.join(", ")}`);
  const flowSpace = space === undefined ? {} : { flowSpace: space as FlowSpace };
  if (name === "anpe") return { label, nRounds: 1, ...flowSpace };
  const [loss, proposal = "auto"] = name.split("/");
  if (!LOSSES.includes(loss as SequentialLoss))
    throw new Error(`method "${label}": loss must be one of ${LOSSES.join(", ")}`);
  if (!PROPOSALS.includes(proposal as ProposalKind))
    throw new Error(`method "${label}": proposal must be one of ${PROPOSALS.join(", ")}`);
  return {
    label,
    nRounds: 10,
    loss: loss as SequentialLoss,
    proposal: proposal as ProposalKind,
    ...flowSpace,
  };
}

/** One row of the benchmark. */
export interface Row {
  task: string;
  obs: number;
  budget: number;
  method: string;
  /** Simulations run by fit. */
  fitSims: number;
  /** Draws weighted by predict (likelihood calls). */
  predictDraws: number;
  /** Simulations predict ran (0 when the likelihood reads θ alone). */
  predictSims: number;
  /** n_eff of the fit's weighed draws that predict pooled into its result (0: none). */
  pooledEss?: number;
  /** The flow's transformer and the featurizer (`--flow`, `--featurizer`). */
  flowType: "maf" | "nsf";
  featurizer: "mlp" | "linear";
  /** C2ST of 10,000 raw surrogate draws against the reference. */
  c2stRaw: number | null;
  /** KL(reference ‖ raw surrogate) in nats and its standard error (kl.ts). */
  klRaw: number;
  klRawSe: number;
  /**
   * predict's log evidence (adapted stages), the surrogate-only predict's (the KL's, where the
   * task has no closed form), and the closed form where it has one (a check of both).
   */
  logEvidence: number;
  logEvidenceSurrogate: number;
  logEvidenceExact: number | null;
  /** predict's n_eff, Kish ESS, efficiency and Pareto k̂. */
  ess: number;
  /** predict's n_eff with every draw from the surrogate (adapt: false). */
  essSurrogate: number;
  kishEss: number;
  efficiency: number;
  paretoK: number;
  /** Largest |weighted mean − reference mean| / reference sd over parameters. */
  meanErrSigma: number;
  /** Largest |weighted sd / reference sd − 1| over parameters. */
  sdErrRel: number;
  /** Same two for the raw surrogate's draws. */
  rawMeanErrSigma: number;
  rawSdErrRel: number;
  /**
   * Share of the raw surrogate's draws beyond SPILL_SDS reference sds of the reference mean in
   * some parameter (the reference's own share is printed beside it): mass spread where the
   * posterior has none, which moves the raw sds far more than the C2ST.
   */
  rawSpill: number;
  refSpill: number;
  /** Weighted mode weights and the reference's (tasks with modes). */
  modeWeights?: number[];
  refModeWeights?: number[];
  /** Largest |mode weight − reference's|. */
  modeErr?: number;
  /** Distinct rows among 10,000 resampled weighted draws. */
  weightedDistinct: number;
  /** C2ST of the resampled weighted draws (null when under 90% distinct). */
  c2stWeighted: number | null;
  /** (fit simulations + predict draws) / ESS. */
  callsPerEss: number;
  /** Why the fit stopped, and per-round n_eff. */
  stopped: string;
  essHistory: number[];
  /** Sequential rounds that trained with NLL (a "select" round's choice, or the loss itself). */
  nllRounds: number[];
  /** Rounds that kept a candidate trained on their own simulations alone (nReuse "auto"). */
  ownRounds: number[];
  /** Rounds whose pilot judged the previous round's challenger: "r✓" it drew the round, "r✗" not. */
  duels: string[];
  /** Rounds whose kept surrogate's spread was calibrated at held-out draws: "r×τ". */
  spreads: string[];
  /** Wall time of fit and predict, and of the C2STs. */
  fitSeconds: number;
  predictSeconds: number;
  c2stSeconds: number;
  /** sbi's published C2ST at this budget: NPE and SNPE-C (null off 10³/10⁴). */
  sbiNpe: number | null;
  sbiSnpe: number | null;
  /** predict's warnings. */
  warnings: string[];
}

/** Per-parameter mean and sd of the rows of θ (n × d), weighted by w when given. */
export function moments(theta: Float64Array, w: Float64Array | null, d: number) {
  const n = theta.length / d;
  const mean = new Float64Array(d);
  const v = new Float64Array(d);
  let tot = 0;
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i]! : 1;
    tot += wi;
    for (let j = 0; j < d; j++) mean[j]! += wi * theta[i * d + j]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= tot;
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i]! : 1;
    for (let j = 0; j < d; j++) v[j]! += wi * (theta[i * d + j]! - mean[j]!) ** 2;
  }
  return { mean, sd: v.map((x) => Math.sqrt(x / tot)) };
}

/** How far from the reference mean, in reference sds, a draw counts as spilled. */
export const SPILL_SDS = 6;

/** Share of the rows of `theta` beyond SPILL_SDS reference sds of its mean in some parameter. */
export function spillFraction(ref: Reference, theta: Float64Array): number {
  const d = ref.dim;
  const n = theta.length / d;
  let out = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      if (Math.abs(theta[i * d + j]! - ref.mean[j]!) > SPILL_SDS * ref.sd[j]!) {
        out++;
        break;
      }
    }
  }
  return n > 0 ? out / n : 0;
}

/** Largest |mean − reference mean| / reference sd and largest |sd / reference sd − 1| over parameters. */
export function errors(ref: Reference, m: { mean: Float64Array; sd: Float64Array }) {
  let meanErr = 0;
  let sdErr = 0;
  for (let j = 0; j < ref.dim; j++) {
    meanErr = Math.max(meanErr, Math.abs(m.mean[j]! - ref.mean[j]!) / ref.sd[j]!);
    sdErr = Math.max(sdErr, Math.abs(m.sd[j]! / ref.sd[j]! - 1));
  }
  return { meanErr, sdErr };
}

export function modeWeightsOf(task: Task, theta: Float64Array, w: Float64Array): number[] {
  const d = task.dim;
  const out = new Array(task.modes!.count).fill(0);
  let tot = 0;
  for (let i = 0; i < w.length; i++) {
    out[task.modes!.of(theta.subarray(i * d, (i + 1) * d))] += w[i]!;
    tot += w[i]!;
  }
  return out.map((v) => v / tot);
}

/** Runs one task × budget × method × observation. */
export async function runOne(
  task: Task,
  ref: Reference,
  budget: number,
  method: Method,
  options: {
    seed: number;
    c2st: boolean;
    c2stN: number;
    c2stEpochs: number;
    nEpochs: number;
    /** Early-stopping patience (sbibm's protocol here: 20). */
    patience: number;
    nPredict: number;
    adaptRounds: boolean;
    /** The flow's transformer: "maf" (the README's default) or "nsf" (sbi's choice). */
    flowType: "maf" | "nsf";
    /** The featurizer: the README's MLP (hidden [64, 64] → 32) or a linear map to 32 features. */
    featurizer: "mlp" | "linear";
    /** The parameters' moving average (fit's emaHalfLife); undefined: the library's default. */
    emaHalfLife?: number;
    /** Earlier rounds' simulations each round trains on (fit's nReuse); undefined: the default. */
    nReuse?: number | "auto";
    /** A folder to save each fitted engine in (one subfolder per run), for later predicts. */
    keep?: string;
    /** A folder to keep each run's folder in (store, round checkpoints) instead of a deleted temp. */
    runDir?: string;
  },
): Promise<Row> {
  const d = task.dim;
  const xObs = task.observation(ref.obs).x;
  const logLike: LogLike = thetaLogLike((x, theta) => task.logLike(x, theta));
  if (options.runDir) mkdirSync(options.runDir, { recursive: true });
  const path = mkdtempSync(join(options.runDir ?? tmpdir(), `nbi-sbibm-${task.name}-`));
  try {
    const engine = new NBI({
      flow: { nDims: d, flowHidden: 64, numBlocks: 5, type: options.flowType },
      featurizer: {
        type: "mlp",
        dimIn: task.dataSize,
        dimOut: 32,
        ...(options.featurizer === "linear" ? { hidden: [] } : {}),
      },
      simulator: (theta: Float64Array, info: { seed: number }) => task.simulator(theta, info),
      priors: task.prior,
      path,
      seed: options.seed,
    });
    const t0 = performance.now();
    const fit = await engine.fit({
      xObs,
      nSims: method.nRounds === 1 ? budget : Math.round(budget / method.nRounds),
      nRounds: method.nRounds,
      nEpochs: options.nEpochs,
      batchSize: 64,
      lr: 1e-3,
      earlyStopPatience: options.patience,
      ...(options.emaHalfLife !== undefined ? { emaHalfLife: options.emaHalfLife } : {}),
      ...(options.nReuse !== undefined ? { nReuse: options.nReuse } : {}),
      logLike,
      adaptRounds: options.adaptRounds,
      ...(method.loss ? { loss: method.loss } : {}),
      ...(method.proposal ? { proposal: method.proposal } : {}),
      ...(method.flowSpace ? { flowSpace: method.flowSpace } : {}),
      progress: false,
    });
    const t1 = performance.now();
    if (options.keep) {
      const run = `${task.name}-obs${ref.obs}-${budget}-${method.label.replace(/[/:]/g, "_")}`;
      await engine.save(join(options.keep, `${run}-seed${options.seed}`));
    }
    const pred = await engine.predict(xObs, { logLike, nSamples: options.nPredict });
    const t2 = performance.now();
    // The same draws' budget from the surrogate alone (no adapted stages), for comparison.
    const plain = await engine.predict(xObs, {
      logLike,
      nSamples: options.nPredict,
      adapt: false,
      pool: false,
    });
    const raw = await engine.sample(xObs, options.nPredict);
    const logQRef = await engine.logProb(xObs, ref.samples);
    const exactZ = closedFormLogEvidence(task, xObs);
    // The evidence from the surrogate-only predict: the adapted stages' recycled weights
    // estimate it low (bench/RESULTS.md, 2026-12-05), which would raise the KL.
    const kl =
      exactZ === null
        ? klToReference(task, ref, xObs, logQRef, plain.logEvidence, plain.logEvidenceSe)
        : klToReference(task, ref, xObs, logQRef, exactZ);

    const fitSims = fit.history.reduce((s, r) => s + r.nDrawn, 0);
    // predict's own draws: the rows pooled from the fit are its simulations, counted in fitSims.
    const predictDraws = pred.samples.length / d - pred.pooled.rows;
    const weighted = moments(pred.samples, pred.weights, d);
    const { meanErr, sdErr } = errors(ref, weighted);
    const rawErr = errors(ref, moments(raw, null, d));

    // Resample the weighted draws and keep the C2ST only when the rows are mostly distinct.
    const logW = Float64Array.from(pred.weights, (w) => (w > 0 ? Math.log(w) : -Infinity));
    const idx = resampleIndices(logW, options.nPredict, new Rng(options.seed, 99));
    const distinct = new Set(idx).size / idx.length;
    const resampled = new Float64Array(idx.length * d);
    idx.forEach((k, s) => {
      resampled.set(pred.samples.subarray(k * d, (k + 1) * d), s * d);
    });
    const c0 = performance.now();
    const c2stOpts = { n: options.c2stN, maxEpochs: options.c2stEpochs, seed: options.seed + 1 };
    const c2stRaw = options.c2st ? (await c2st(ref.samples, raw, d, c2stOpts)).accuracy : null;
    const c2stWeighted =
      options.c2st && distinct >= 0.9
        ? (await c2st(ref.samples, resampled, d, c2stOpts)).accuracy
        : null;
    const c1 = performance.now();

    const bi: 0 | 1 | null = budget === 1000 ? 0 : budget === 10000 ? 1 : null;
    const pub = PUBLISHED[task.name]!;
    const row: Row = {
      task: task.name,
      obs: ref.obs,
      budget,
      method: method.label,
      fitSims,
      predictDraws,
      predictSims: pred.nSimulations,
      pooledEss: pred.pooled.nEff,
      flowType: options.flowType,
      featurizer: options.featurizer,
      c2stRaw,
      klRaw: kl.kl,
      klRawSe: kl.se,
      logEvidence: pred.logEvidence,
      logEvidenceSurrogate: plain.logEvidence,
      logEvidenceExact: exactZ,
      ess: pred.ess,
      essSurrogate: plain.ess,
      kishEss: pred.kishEss,
      efficiency: pred.efficiency,
      paretoK: pred.paretoK,
      meanErrSigma: meanErr,
      sdErrRel: sdErr,
      rawMeanErrSigma: rawErr.meanErr,
      rawSdErrRel: rawErr.sdErr,
      rawSpill: spillFraction(ref, raw),
      refSpill: spillFraction(ref, ref.samples),
      weightedDistinct: distinct,
      c2stWeighted,
      callsPerEss: (fitSims + predictDraws) / pred.ess,
      stopped: fit.stopped,
      essHistory: [...fit.essHistory],
      nllRounds: fit.history.filter((h) => h.round > 0 && h.loss === "nll").map((h) => h.round),
      ownRounds: fit.history
        .filter((h) => h.round > 0 && h.trainedFrom === h.round)
        .map((h) => h.round),
      duels: fit.history.flatMap((h) =>
        h.duel ? [`${h.round}${h.duel.winner === "challenger" ? "✓" : "✗"}`] : [],
      ),
      spreads: fit.history.flatMap((h) =>
        h.spread?.applied ? [`${h.round}×${h.spread.tau!.toFixed(2)}`] : [],
      ),
      fitSeconds: (t1 - t0) / 1000,
      predictSeconds: (t2 - t1) / 1000,
      c2stSeconds: (c1 - c0) / 1000,
      sbiNpe: bi === null ? null : pub.npe[bi],
      sbiSnpe: bi === null ? null : pub.snpe[bi],
      warnings: [...pred.warnings],
    };
    if (task.modes && ref.modeWeights) {
      const mw = modeWeightsOf(task, pred.samples, pred.weights);
      row.modeWeights = mw;
      row.refModeWeights = ref.modeWeights;
      row.modeErr = Math.max(...mw.map((w, k) => Math.abs(w - ref.modeWeights![k]!)));
    }
    return row;
  } finally {
    if (options.runDir) console.log(`run folder kept: ${path}`);
    else rmSync(path, { recursive: true, force: true });
  }
}

const f = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);

/** The Markdown table of rows. */
export function markdownTable(rows: readonly Row[]): string {
  const head = [
    "task",
    "obs",
    "budget",
    "method",
    "C2ST raw",
    "KL raw (nats)",
    "sbi NPE / SNPE-C",
    "ESS (fit's draws pooled)",
    "ESS surrogate only",
    "eff.",
    "k̂",
    "mean err (σ)",
    "sd err",
    "raw: mean err (σ), sd err, spill (ref)",
    "mode w (ref)",
    "C2ST weighted",
    "calls/ESS",
    "NLL rounds",
    "own rounds",
    "fit s",
    "predict s",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    lines.push(
      `| ${[
        r.task,
        r.obs,
        r.budget,
        methodName(r),
        f(r.c2stRaw, 3),
        `${f(r.klRaw, 3)} ± ${f(r.klRawSe, 3)}`,
        r.sbiNpe === null ? "—" : `${f(r.sbiNpe, 3)} / ${f(r.sbiSnpe, 3)}`,
        r.pooledEss ? `${f(r.ess, 0)} (${f(r.pooledEss, 0)})` : f(r.ess, 0),
        f(r.essSurrogate, 0),
        f(r.efficiency, 3),
        f(r.paretoK, 2),
        f(r.meanErrSigma, 3),
        f(r.sdErrRel, 3),
        `${f(r.rawMeanErrSigma, 2)}, ${f(r.rawSdErrRel, 2)}, ${(100 * r.rawSpill).toFixed(1)}% (${(100 * r.refSpill).toFixed(2)}%)`,
        r.modeWeights
          ? `${r.modeWeights.map((w) => w.toFixed(3)).join("/")} (${r.refModeWeights!.map((w) => w.toFixed(2)).join("/")})`
          : "—",
        r.c2stWeighted === null
          ? `— (${(100 * r.weightedDistinct).toFixed(0)}% distinct)`
          : f(r.c2stWeighted, 3),
        f(r.callsPerEss, 1),
        r.nllRounds.length > 0 ? r.nllRounds.join(",") : "—",
        [
          r.ownRounds.join(","),
          r.duels.length > 0 ? `duel ${r.duels.join(",")}` : "",
          r.spreads.length > 0 ? `spread ${r.spreads.join(",")}` : "",
        ]
          .filter((v) => v.length > 0)
          .join(" · ") || "—",
        f(r.fitSeconds, 0),
        f(r.predictSeconds, 1),
      ].join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

/** A row's method as the tables name it: the flow and featurizer when not the default. */
const methodName = (r: Row) =>
  r.flowType === "maf" && r.featurizer === "mlp"
    ? r.method
    : `${r.method} (${r.flowType}, ${r.featurizer} featurizer)`;

/**
 * Means over observations, the published sbi figures' basis (a mean over observations 1–10):
 * one line per task × budget × method run on two observations or more — the raw surrogate's
 * C2ST and KL averaged, the weighted posterior's ESS range and largest mean error — beside sbi's
 * published NPE / SNPE-C. Empty when no method ran on two observations.
 */
export function observationMeans(rows: readonly Row[]): string {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${r.task}\u0000${r.budget}\u0000${methodName(r)}`;
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  const mean = (v: (number | null)[]) => {
    const xs = v.filter((x): x is number => x !== null && Number.isFinite(x));
    return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const lines: string[] = [];
  for (const g of groups.values()) {
    const obs = [...new Set(g.map((r) => r.obs))].sort((a, b) => a - b);
    if (obs.length < 2) continue;
    const r0 = g[0]!;
    const ess = g.map((r) => r.ess);
    lines.push(
      `| ${[
        r0.task,
        r0.budget,
        methodName(r0),
        obs.join(","),
        f(mean(g.map((r) => r.c2stRaw)), 3),
        f(mean(g.map((r) => r.klRaw)), 3),
        `${f(Math.min(...ess), 0)}–${f(Math.max(...ess), 0)}`,
        f(Math.max(...g.map((r) => r.meanErrSigma)), 3),
        r0.sbiNpe === null ? "—" : `${f(r0.sbiNpe, 3)} / ${f(r0.sbiSnpe, 3)}`,
      ].join(" | ")} |`,
    );
  }
  if (lines.length === 0) return "";
  const head = [
    "task",
    "budget",
    "method",
    "observations",
    "mean C2ST raw",
    "mean KL raw (nats)",
    "ESS range",
    "largest mean err (σ)",
    "sbi NPE / SNPE-C (mean over obs 1–10)",
  ];
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...lines].join("\n");
}

function featurizerOf(v: string): "mlp" | "linear" {
  if (v !== "mlp" && v !== "linear") throw new Error(`--featurizer: "mlp" or "linear", got ${v}`);
  return v;
}

function flowTypeOf(v: string): "maf" | "nsf" {
  if (v !== "maf" && v !== "nsf") throw new Error(`--flow: "maf" or "nsf", got ${v}`);
  return v;
}

function parseArgs(argv: readonly string[]) {
  const get = (name: string, def: string) => flagValue(argv, name, def);
  const list = (s: string) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x !== "");
  const tasks = get("tasks", "all") === "all" ? [...TASK_NAMES] : list(get("tasks", ""));
  const num = (name: string, def: string) => {
    const v = Number(get(name, def));
    if (!Number.isFinite(v)) throw new Error(`--${name}: a number, got ${get(name, def)}`);
    return v;
  };
  return {
    tasks,
    budgets: list(get("budgets", "1000,10000")).map(Number),
    obs: list(get("obs", "1")).map(Number),
    methods: list(get("methods", "anpe,auto/auto")).map(parseMethod),
    seed: num("seed", "0"),
    out: get("out", ""),
    // --no-c2st: skip the classifier tests (their columns print "—").
    c2st: !argv.includes("--no-c2st"),
    // --no-adapt-rounds: every round drawn from the surrogate in one batch (fit's adaptRounds).
    adaptRounds: !argv.includes("--no-adapt-rounds"),
    c2stN: num("c2st-n", "10000"),
    c2stEpochs: num("c2st-epochs", "300"),
    nEpochs: num("epochs", "200"),
    // Early-stopping patience (sbibm's protocol here: 20).
    patience: num("patience", "20"),
    nPredict: num("predict-n", "10000"),
    // --keep DIR: save each fitted engine under DIR (NBI.load it to predict again).
    ...(argv.includes("--keep") ? { keep: get("keep", "") } : {}),
    // --run-dir DIR: keep each run's folder (store, every round's checkpoint) under DIR.
    ...(argv.includes("--run-dir") ? { runDir: get("run-dir", "") } : {}),
    // --flow nsf: rational-quadratic spline blocks (sbi's SNPE-C uses a neural spline flow).
    flowType: flowTypeOf(get("flow", "maf")),
    // --featurizer linear: sbi's NPE conditions on the (z-scored) data itself, no embedding net.
    featurizer: featurizerOf(get("featurizer", "mlp")),
    // --ema-half-life H: fit's emaHalfLife (0: validate and keep the raw parameters, as nbi).
    ...(argv.includes("--ema-half-life") ? { emaHalfLife: num("ema-half-life", "") } : {}),
    // --n-reuse N: fit's nReuse (0: each round trains on its own simulations, as nbi's default;
    // −1 all rounds; unset: the library's "auto").
    ...(argv.includes("--n-reuse")
      ? { nReuse: get("n-reuse", "auto") === "auto" ? ("auto" as const) : num("n-reuse", "") }
      : {}),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  for (const t of args.tasks) getTask(t); // fail early on a bad name
  const rows: Row[] = [];
  const writeOut = () => {
    if (args.out) writeFileSync(args.out, `${JSON.stringify({ args, rows }, null, 1)}\n`);
  };
  for (const name of args.tasks) {
    const task = getTask(name);
    for (const obs of args.obs) {
      const ref = loadReference(name, obs);
      for (const budget of args.budgets) {
        for (const method of args.methods) {
          const label = `${name} obs ${obs} budget ${budget} ${method.label}`;
          console.error(`running ${label} ...`);
          try {
            const row = await runOne(task, ref, budget, method, args);
            rows.push(row);
            console.error(
              `  ESS ${f(row.ess, 0)}, C2ST raw ${f(row.c2stRaw, 3)}, KL raw ${f(row.klRaw, 3)} ± ${f(row.klRawSe, 3)} (log evidence: predict ${f(row.logEvidence, 3)}, surrogate only ${f(row.logEvidenceSurrogate, 3)}${row.logEvidenceExact === null ? "" : `, closed form ${f(row.logEvidenceExact, 3)}`}), weighted ${f(row.c2stWeighted, 3)}, fit ${f(row.fitSeconds, 0)} s`,
            );
          } catch (err) {
            console.error(`  failed: ${(err as Error).stack ?? err}`);
          }
          writeOut();
        }
      }
    }
  }
  console.log(markdownTable(rows));
  const means = observationMeans(rows);
  if (means !== "") console.log(`\nMeans over observations:\n\n${means}`);
  console.log(
    `\nC2ST raw: the surrogate's own draws (no likelihood), comparable to sbi. KL raw: KL(reference ‖ raw surrogate) from the reference's exact draws, log q there and the evidence (the surrogate-only predict's, or the closed form on gaussian_linear_uniform and gaussian_mixture), ± its standard error (bench/sbibm/kl.ts). ESS: predict's n_eff with the exact likelihood, 10,000 draws (adaptive stages on) and the fit's weighed draws pooled in (their own n_eff in brackets; surrogate only: the same budget with adapt: false and pool: false). mean err: max over parameters of |weighted mean − reference mean| / reference sd; sd err: max |weighted sd / reference sd − 1|. raw: the same two for the raw surrogate's draws, and the share of them beyond ${SPILL_SDS} reference sds of the reference mean in some parameter (the reference's own share in brackets). calls/ESS: (fit simulations + predict draws) / ESS. NLL rounds: sequential rounds that trained with NLL (a select round's choice). own rounds: rounds that kept the candidate trained on their own simulations alone (nReuse "auto"), and "duel r✓" / "r✗" where round r's pilot chose / did not choose the previous round's challenger (that candidate, kept when its held-out draws could not judge it); "spread r×τ": round r's surrogate kept the base scale τ fitted at its held-out draws. sbi: published C2ST, mean over observations 1–10.`,
  );
  writeOut();
}

if (process.argv[1]?.endsWith("run.ts")) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
