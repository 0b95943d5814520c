/**
 * `nbi predict RUN_DIR --obs FILE`: the saved model of a run folder, applied to new observations:
 * surrogate draws, simulated and importance-weighted with the exact (Gaussian) likelihood.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { NbiError } from "../errors.js";
import { NBI, type PredictResult } from "../inference/engine.js";
import {
  GLOBAL_HELP,
  intOption,
  numbersOption,
  parse,
  positionals,
  stringOption,
  UsageError,
} from "./common.js";
import { loadRun, STORE_DIR } from "./config.js";
import { observations, readNumbers, samplesTable, writeTable } from "./data.js";
import { overridesOf, RUN_OPTIONS } from "./fit.js";
import { Reporter, summarize, summaryTable } from "./report.js";

export const PREDICT_HELP = `Usage: nbi predict RUN_DIR --obs FILE [options]

Loads the model that 'nbi fit' saved in RUN_DIR and samples the posterior of each observation
in FILE: surrogate draws, simulated and weighted by the exact Gaussian likelihood with sigma
--xerr. Prints a summary and writes the draws and their weights.

FILE is CSV or NPY: one observation (the simulator's output length), or several in a row
(an NPY of shape [m, ...] or a CSV with one observation per row).

Options:
      --obs FILE      the observation(s), CSV or NPY (required)
      --column C      the CSV column holding the data (a header name or a 0-based index)
      --xerr S        measurement error sigma: one number or one per value, comma-separated
                      (default: the config's predict.xErr or fit.noise; without any, the
                      surrogate's draws are returned unweighted)
      --n N           surrogate draws to simulate and weigh (default 1000)
      --neff-min N    draw and simulate more until n_eff reaches N (at most 10 × --n)
      --out FILE      where to write draws and weights: .csv or .npy
                      (default RUN_DIR/posterior.csv; columns [obs,] parameters..., weight)
      --workers N     simulator worker threads
      --backend B     cpu, webgpu or auto

${GLOBAL_HELP}`;

export async function predictCommand(argv: readonly string[]): Promise<number> {
  const args = parse("predict", argv, {
    workers: RUN_OPTIONS.workers,
    backend: RUN_OPTIONS.backend,
    obs: { type: "string" },
    column: { type: "string" },
    xerr: { type: "string" },
    n: { type: "string", short: "n" },
    "neff-min": { type: "string" },
    out: { type: "string", short: "o" },
  });
  if (args.help) {
    process.stdout.write(`${PREDICT_HELP}\n`);
    return 0;
  }
  const [runArg] = positionals("predict", args.positionals, ["RUN_DIR"]);
  const runDir = resolve(runArg!);
  const obsPath = stringOption(args.values.obs);
  if (obsPath === undefined)
    throw new UsageError("--obs FILE is required (a CSV or NPY observation)", "predict");
  const overrides = overridesOf("predict", args.values);
  const xErrFlag = numbersOption("predict", "xerr", args.values.xerr);
  const nFlag = intOption("predict", "n", args.values.n, 2);
  const neffFlag = intOption("predict", "neff-min", args.values["neff-min"], 1);
  const out = resolve(stringOption(args.values.out) ?? join(runDir, "posterior.csv"));
  const reporter = new Reporter(args.flags);

  const saved = await loadRun(runDir);
  const model = JSON.parse(
    await readFile(join(runDir, "model.json"), "utf8").catch(() => {
      throw new NbiError(`${runDir}: no saved model (model.json); run nbi fit first`);
    }),
  ) as { dataShape: number[] };
  const size = model.dataShape.reduce((a, b) => a * b, 1);
  const workers = overrides.workers ?? saved.workers;
  const backend = overrides.backend ?? saved.backend;
  const engine = await NBI.load(runDir, {
    simulator: saved.simulatorValue,
    path: join(runDir, STORE_DIR),
    ...(workers !== undefined ? { workers } : {}),
    ...(backend !== undefined ? { backend } : {}),
  });
  const column = stringOption(args.values.column);
  const xs = observations(await readNumbers(obsPath, column, "--column"), size, obsPath);
  const xErr = xErrFlag ?? saved.predict.xErr ?? saved.noise;
  const nSamples = nFlag ?? saved.predict.nSamples ?? 1000;
  const neffMin = neffFlag ?? saved.predict.neffMin;
  reporter.event("start", { command: "predict", runDir, observations: xs.length, nSamples });

  const parts: { samples: Float64Array; weights: Float64Array; obs?: number }[] = [];
  const summaries: Record<string, unknown>[] = [];
  for (let k = 0; k < xs.length; k++) {
    const t0 = performance.now();
    const bar = reporter.progress(`predict${xs.length > 1 ? ` ${k}` : ""}: simulate`, nSamples);
    const post: PredictResult = await engine.predict(xs[k]!, {
      nSamples,
      onSimulate: (done) => bar.update(done),
      ...(xErr !== undefined ? { xErr } : {}),
      ...(neffMin !== undefined ? { neffMin } : {}),
      ...(saved.predict.nMax !== undefined ? { nMax: saved.predict.nMax } : {}),
    });
    bar.stop();
    const seconds = (performance.now() - t0) / 1000;
    parts.push({
      samples: post.samples,
      weights: post.weights,
      ...(xs.length > 1 ? { obs: k } : {}),
    });
    const table = summarize(post.samples, post.weights, post.labels);
    const head = xs.length > 1 ? `observation ${k}: ` : "";
    reporter.result(
      post.surrogateOnly
        ? `${head}${post.samples.length / post.labels.length} surrogate draws (unweighted), ${seconds.toFixed(2)} s`
        : `${head}n_eff ${post.ess.toFixed(1)} of ${post.nSimulations} simulations (efficiency ${(100 * post.efficiency).toFixed(1)}%), ` +
            `Pareto k̂ ${post.paretoK.toFixed(2)}, log evidence ${post.logEvidence.toFixed(2)} ± ${post.logEvidenceSe.toFixed(2)}, ${seconds.toFixed(2)} s`,
    );
    reporter.result(summaryTable(table));
    for (const w of post.warnings) reporter.warn(xs.length > 1 ? `observation ${k}: ${w}` : w);
    const record = {
      observation: k,
      ess: post.ess,
      kishEss: post.kishEss,
      efficiency: post.efficiency,
      logEvidence: post.logEvidence,
      logEvidenceSe: post.logEvidenceSe,
      paretoK: post.paretoK,
      nSimulations: post.nSimulations,
      dropped: post.dropped,
      surrogateOnly: post.surrogateOnly,
      seconds,
      posterior: table,
    };
    summaries.push(record);
    reporter.event("observation", record);
  }
  const table = samplesTable(parts, engine.labels);
  await writeTable(out, table.columns, table.data);
  reporter.result(`draws and weights written to ${out}`);
  reporter.event("summary", {
    command: "predict",
    labels: engine.labels,
    out,
    observations: summaries,
  });
  return 0;
}
