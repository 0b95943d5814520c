/**
 * `nbi predict RUN_DIR --obs FILE`: the saved model of a run folder, applied to new observations:
 * surrogate draws, simulated and importance-weighted with the exact (Gaussian) likelihood, one
 * trust verdict per observation, and with --plots a posterior predictive check plot of each.
 */
import { existsSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { NbiError } from "../errors.js";
import { MODEL_FORMAT, MODEL_VERSION, NBI, type PredictResult } from "../inference/engine.js";
import { MODEL_MANIFEST_FILE, readModelManifest } from "../io/model-file.js";
import {
  GLOBAL_HELP,
  intOption,
  numbersOption,
  parse,
  positionals,
  stringOption,
  UsageError,
} from "./common.js";
import { loadRun, STORE_DIR, simulatorArgument } from "./config.js";
import { type NumbersRead, observations, readNumbers, samplesTable, writeTable } from "./data.js";
import { overridesOf, RUN_OPTIONS } from "./fit.js";
import { Reporter, summarize, summaryTable } from "./report.js";

export const PREDICT_HELP = `Usage: nbi predict RUN_DIR --obs FILE [options]

Loads the model that 'nbi fit' saved in RUN_DIR and samples the posterior of each observation
in FILE: surrogate draws, simulated and weighted by the exact Gaussian likelihood with sigma
--xerr. Prints a summary and writes the draws and their weights.

Each observation gets a verdict, ok, caution or do-not-trust, from how far it lies from the
training simulations (in the featurizer's space) and from the weights' n_eff, efficiency and
Pareto k; anything but ok is printed as a warning saying why.

FILE is CSV or NPY: one observation (the simulator's output length), or several in a row
(an NPY of shape [m, ...] or a CSV with one observation per row). A missing point is NaN: in a
CSV, "nan" (any case) or an empty cell. Only a model fitted with the gapped observation model
(fit.noise { "missing": [lo, hi], "sigma": [lo, hi] }) takes missing points; it also needs each
point's error bar, e.g. --xerr-column err for a "time,flux,err" light curve.

A run folder is data, not code: the simulator it names (in RUN_DIR/nbi-config.json) is not
imported unless you say so with --simulator, --config or --trust-run-dir. Without a simulator
(and without --xerr or a noise in the fit), the surrogate's draws are returned unweighted.

Options:
      --obs FILE      the observation(s), CSV or NPY (required)
      --column C      the CSV column holding the data (a header name or a 0-based index)
      --xerr S        measurement error sigma: one number or one per value, comma-separated
                      (default: the config's predict.xErr or fit.noise; without any, the
                      surrogate's draws are returned unweighted)
      --xerr-column C the CSV column of FILE holding each point's sigma (a header name or a
                      0-based index; empty or nan where the point is missing), instead of --xerr
      --n N           surrogate draws to simulate and weigh (default 1000)
      --neff-min N    draw and simulate more until n_eff reaches N (at most 10 × --n)
      --out FILE      where to write draws and weights: .csv or .npy
                      (default RUN_DIR/posterior.csv; columns [obs,] parameters..., weight)
      --plots         also run a posterior predictive check of each observation (simulations
                      at posterior draws, noise --xerr or --xerr-column) and write ppc.{svg,png}
                      (ppc-K.{svg,png} for observation K of several) into RUN_DIR: the
                      observation over the predictive median and 68%/95% bands, beside the
                      residuals (missing points marked; the check weighs observed points only)
      --ppc-draws N   posterior draws the check simulates (default 500)
      --simulator M   the simulator module to run: FILE.mjs or FILE.mjs#export
      --config CONFIG the config whose simulator to run (the one 'nbi fit' ran)
      --trust-run-dir run the simulator RUN_DIR/nbi-config.json names (its paths are
                      resolved against RUN_DIR)
      --sim-timeout S stop a simulation after S seconds (worker simulators)
      --workers N     simulator worker threads
      --backend B     cpu, webgpu or auto

${GLOBAL_HELP}`;

export async function predictCommand(argv: readonly string[]): Promise<number> {
  const args = parse("predict", argv, {
    workers: RUN_OPTIONS.workers,
    backend: RUN_OPTIONS.backend,
    "sim-timeout": RUN_OPTIONS["sim-timeout"],
    simulator: { type: "string" },
    config: { type: "string" },
    "trust-run-dir": { type: "boolean" },
    obs: { type: "string" },
    column: { type: "string" },
    xerr: { type: "string" },
    "xerr-column": { type: "string" },
    n: { type: "string", short: "n" },
    "neff-min": { type: "string" },
    out: { type: "string", short: "o" },
    plots: { type: "boolean" },
    "ppc-draws": { type: "string" },
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
  const column = stringOption(args.values.column);
  const errColumn = stringOption(args.values["xerr-column"]);
  if (args.values["xerr-column"] === "")
    throw new UsageError("--xerr-column expected a column name or a 0-based index", "predict");
  if (errColumn !== undefined && xErrFlag !== undefined)
    throw new UsageError("give either --xerr or --xerr-column, not both", "predict");
  if (errColumn !== undefined && extname(obsPath).toLowerCase() === ".npy") {
    throw new UsageError(
      `--xerr-column picks a column of a CSV observation, and ${obsPath} is an NPY file: give the sigmas with --xerr`,
      "predict",
    );
  }
  const nFlag = intOption("predict", "n", args.values.n, 2);
  const neffFlag = intOption("predict", "neff-min", args.values["neff-min"], 1);
  const ppcDraws = intOption("predict", "ppc-draws", args.values["ppc-draws"], 20);
  const plots = args.values.plots === true;
  const out = resolve(stringOption(args.values.out) ?? join(runDir, "posterior.csv"));
  const reporter = new Reporter(args.flags);

  const simulatorFlag = stringOption(args.values.simulator);
  const configFlag = stringOption(args.values.config);
  if (simulatorFlag !== undefined && configFlag !== undefined) {
    throw new UsageError("give either --simulator or --config, not both", "predict");
  }
  const saved = await loadRun(runDir, {
    ...(simulatorFlag !== undefined ? { simulator: await simulatorArgument(simulatorFlag) } : {}),
    ...(configFlag !== undefined ? { config: configFlag } : {}),
    trustRunDir: args.values["trust-run-dir"] === true,
  });
  const xErr =
    errColumn !== undefined ? undefined : (xErrFlag ?? saved.predict.xErr ?? saved.noise);
  type Manifest = { dataShape?: unknown; observation?: { missing?: unknown; sigma?: unknown } };
  if (!existsSync(join(runDir, MODEL_MANIFEST_FILE)))
    throw new NbiError(`${runDir}: no saved model (${MODEL_MANIFEST_FILE}); run nbi fit first`);
  // The model folder's own reader checks its format and version (src/io/model-file.ts).
  const model: Manifest = (
    await readModelManifest<Manifest>(
      runDir,
      { name: MODEL_FORMAT, version: MODEL_VERSION },
      "nbi predict",
    )
  ).manifest;
  const shape = model.dataShape;
  if (!Array.isArray(shape) || !shape.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new NbiError(
      `${join(runDir, "model.json")}: dataShape expected [length] or [channels, length], got ${JSON.stringify(shape)}`,
    );
  }
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  if (model.observation !== undefined && xErr === undefined && errColumn === undefined) {
    // The network itself takes the error bars (a channel of its input): nothing runs without them.
    const { missing, sigma } = model.observation;
    throw new UsageError(
      `the model in ${runDir} was fitted to light curves with gaps and error bars (missing ${JSON.stringify(missing)}, sigma ${JSON.stringify(sigma)}): ` +
        `give each point's sigma, --xerr-column NAME (a column of ${obsPath}) or --xerr S`,
      "predict",
    );
  }
  if ((xErr !== undefined || errColumn !== undefined) && saved.simulatorValue === undefined) {
    // Weighting needs simulations, and nothing in the folder is run unasked.
    throw new UsageError(saved.simulatorNote ?? "a simulator is needed (--simulator)", "predict");
  }
  // Missing points (NaN, "nan", empty cells) are read here; the engine refuses them unless the
  // model was fitted with the gapped observation model, and says so.
  const read = await readNumbers(obsPath, column, "--column", { missing: true });
  const xs = observations(read, size, obsPath);
  const errs =
    errColumn === undefined
      ? undefined
      : observations(
          errorColumn(
            read,
            await readNumbers(obsPath, errColumn, "--xerr-column", { missing: true }),
            errColumn,
            obsPath,
          ),
          size,
          obsPath,
        );
  const xErrOf = (k: number) => errs?.[k] ?? xErr;
  const workers = overrides.workers ?? saved.workers;
  const backend = overrides.backend ?? saved.backend;
  const engine = await NBI.load(runDir, {
    ...(saved.simulatorValue !== undefined ? { simulator: saved.simulatorValue } : {}),
    path: join(runDir, STORE_DIR),
    ...(workers !== undefined ? { workers } : {}),
    ...(backend !== undefined ? { backend } : {}),
    ...(overrides.simTimeoutMs !== undefined ? { simTimeoutMs: overrides.simTimeoutMs } : {}),
  });
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
      ...(xErrOf(k) !== undefined ? { xErr: xErrOf(k)! } : {}),
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
        : `${head}n_eff ${post.ess.toFixed(1)} of ${post.nSimulations} simulations` +
            (post.pooled.rows > 0
              ? ` and the fit's ${post.pooled.rows} weighed draws (n_eff ${post.pooled.nEff.toFixed(1)} of them)`
              : "") +
            ` (efficiency ${(100 * post.efficiency).toFixed(1)}%), ` +
            `Pareto k̂ ${post.paretoK.toFixed(2)}, log evidence ${post.logEvidence.toFixed(2)} ± ${post.logEvidenceSe.toFixed(2)}, ${seconds.toFixed(2)} s`,
    );
    reporter.result(summaryTable(table));
    if (post.trust.verdict === "ok") reporter.result(`${head}verdict ${post.trust.message}`);
    for (const w of post.warnings) reporter.warn(xs.length > 1 ? `observation ${k}: ${w}` : w);
    const check = plots
      ? await predictiveCheckPlot(engine, xs[k]!, post, {
          runDir,
          name: xs.length > 1 ? `ppc-${k}` : "ppc",
          head,
          xErr: xErrOf(k),
          nDraws: ppcDraws,
          reporter,
        })
      : undefined;
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
      pooled: post.pooled,
      surrogateOnly: post.surrogateOnly,
      trust: {
        verdict: post.trust.verdict,
        message: post.trust.message,
        distance: post.trust.ood.distance,
        typicalDistance: post.trust.ood.typicalDistance,
        tailProbability: post.trust.ood.tailProbability,
      },
      ...(check ? { ppc: check } : {}),
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

/**
 * The posterior predictive check of one observation and its plot (RUN_DIR/<name>.{svg,png}).
 * Needs the measurement noise and the simulator; without them, or when the plot fails, a
 * warning says so and predict goes on.
 */
async function predictiveCheckPlot(
  engine: NBI,
  xObs: ArrayLike<number>,
  post: PredictResult,
  o: {
    runDir: string;
    name: string;
    head: string;
    xErr: number | ArrayLike<number> | undefined;
    nDraws: number | undefined;
    reporter: Reporter;
  },
): Promise<Record<string, unknown> | undefined> {
  if (o.xErr === undefined) {
    o.reporter.warn(
      `${o.head}posterior predictive check skipped: it needs the measurement noise (--xerr or --xerr-column, or the config's predict.xErr or fit.noise)`,
    );
    return undefined;
  }
  const check = await engine.posteriorPredictive(xObs, post, {
    xErr: o.xErr,
    ...(o.nDraws !== undefined ? { nDraws: o.nDraws } : {}),
  });
  o.reporter.result(`${o.head}${check.message}`);
  const record: Record<string, unknown> = {
    statistic: check.statistic,
    pValue: check.pValue,
    fit: check.fit,
    nDraws: check.nDraws,
    coverage68: check.coverage68,
    coverage95: check.coverage95,
  };
  try {
    const plots = await import("../plots/index.js");
    // Without resvg's native binary the SVG is still written and a warning says why no PNG.
    const paths = await plots.writePlot(await plots.ppcPlot(check), join(o.runDir, o.name), {
      onWarning: (message) => o.reporter.warn(`${o.head}${message}`),
    });
    o.reporter.result(`${o.head}posterior predictive plot: ${paths.png ?? paths.svg}`);
    record.plot = paths;
  } catch (error) {
    o.reporter.warn(
      `${o.head}the posterior predictive plot was not written: ${(error as Error).message}`,
    );
  }
  return record;
}

/**
 * The sigmas of --xerr-column beside the data they belong to: as many as the data values, and a
 * finite sigma > 0 wherever the data are observed (NaN or empty where a point is missing).
 */
function errorColumn(
  data: NumbersRead,
  errors: NumbersRead,
  name: string,
  source: string,
): NumbersRead {
  const label = `--xerr-column ${JSON.stringify(name)}`;
  if (errors.values.length !== data.values.length) {
    throw new NbiError(
      `${source}: ${label} expected one sigma per data value (${data.values.length}), got ${errors.values.length}` +
        (data.shape.length === 2 && data.shape[1]! > 1
          ? `: the data are ${data.shape[0]} rows × ${data.shape[1]} columns; pick the data column with --column`
          : ""),
    );
  }
  const dataName = data.columns?.length === 1 ? JSON.stringify(data.columns[0]) : "the data";
  for (let i = 0; i < data.values.length; i++) {
    const s = errors.values[i]!;
    if (Number.isNaN(data.values[i]!) || (s > 0 && Number.isFinite(s))) continue;
    const where = errors.lines?.[i] !== undefined ? `${source}:${errors.lines[i]}` : source;
    throw new NbiError(
      `${where}: ${label} expected a finite sigma > 0 where ${dataName} is observed, got ${Number.isNaN(s) ? "a missing value" : s}`,
    );
  }
  return errors;
}
