/**
 * `nbi fit CONFIG`: runs the fit of a config into its run folder and saves the model there.
 * Simulations already in the store (an interrupted fit, or shards from `nbi simulate`) are used
 * as they are; finished rounds are replayed from their checkpoints.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type FitOptions, type FitResult, LOCK_FILE } from "../inference/engine.js";
import { acquireLock } from "../inference/lock.js";
import {
  GLOBAL_HELP,
  intOption,
  type Parsed,
  parse,
  positionals,
  stringOption,
  UsageError,
} from "./common.js";
import { loadConfig, type Overrides, type RunConfig, saveRun } from "./config.js";
import { samplesTable, writeTable } from "./data.js";
import { writeRunPlots } from "./plots.js";
import { Reporter, summarize, summaryTable } from "./report.js";
import { engineFor, fitOptions, roundsOf } from "./run.js";

export const FIT_HELP = `Usage: nbi fit CONFIG [options]

Fits the neural posterior of CONFIG (a .json file, or a .mjs/.ts module exporting the same
object) into its run folder: the simulation store (store/), the saved model (model.json,
weights.safetensors) and, with an observation, the weighted draws of all rounds
(fit-posterior.csv). Simulations already stored (an interrupted fit, or the shards of
'nbi simulate') are not run again, as long as what decided them is unchanged: the store
records a fingerprint of the prior, the simulator (module path, export and a hash of its
file), the data shape, nSims, seed, noise, observation and training settings, and a fit whose
fingerprint differs stops and names what changed. One fit at a time per run folder (a lock,
nbi.lock). Ctrl-C or SIGTERM stops within a training step; finished rounds stay stored, and
so does the interrupted round's training at its last finished epoch (the same command resumes
there). A second Ctrl-C or SIGTERM exits at once.

Options:
      --path DIR      the run folder (default: the config's "path")
      --workers N     simulator worker threads (default: the config's, or the core count)
      --backend B     cpu, webgpu or auto
      --rounds N      run only the first N rounds (default: the config's fit.nRounds)
      --sim-timeout S stop a simulation after S seconds (worker simulators), counted as
                      timed out (default: the config's "simTimeout", or no limit)
      --fresh         delete the simulations stored in the run folder and start afresh
      --force-resume  resume even though the fingerprint differs (a warning names the changes)
      --plots         also write corner, ESS and loss plots (SVG and PNG) into the run folder

${GLOBAL_HELP}`;

export const RUN_OPTIONS = {
  path: { type: "string" },
  workers: { type: "string" },
  backend: { type: "string" },
  "sim-timeout": { type: "string" },
} as const;

/** --path, --workers and --backend as config overrides. */
export function overridesOf(command: string, values: Parsed<string>["values"]): Overrides {
  const backend = stringOption(values.backend);
  if (backend !== undefined && !["cpu", "webgpu", "auto"].includes(backend)) {
    throw new UsageError(
      `--backend expected cpu, webgpu or auto, got ${JSON.stringify(backend)}`,
      command,
    );
  }
  const workers = intOption(command, "workers", values.workers, 1);
  const path = stringOption(values.path);
  const timeout = values["sim-timeout"];
  let simTimeoutMs: number | undefined;
  if (timeout !== undefined) {
    const seconds = Number(timeout);
    if (typeof timeout !== "string" || !(seconds > 0 && seconds * 1000 <= 2 ** 31 - 1)) {
      throw new UsageError(
        `--sim-timeout expected a positive number of seconds, got ${JSON.stringify(timeout)}`,
        command,
      );
    }
    simTimeoutMs = seconds * 1000;
  }
  return {
    ...(simTimeoutMs !== undefined ? { simTimeoutMs } : {}),
    ...(path !== undefined ? { path } : {}),
    ...(workers !== undefined ? { workers } : {}),
    ...(backend !== undefined ? { backend: backend as Overrides["backend"] } : {}),
  };
}

export async function fitCommand(argv: readonly string[]): Promise<number> {
  const args = parse("fit", argv, {
    ...RUN_OPTIONS,
    rounds: { type: "string" },
    plots: { type: "boolean" },
    fresh: { type: "boolean" },
    "force-resume": { type: "boolean" },
  });
  if (args.help) {
    process.stdout.write(`${FIT_HELP}\n`);
    return 0;
  }
  const [configPath] = positionals("fit", args.positionals, ["CONFIG"]);
  const rounds = intOption("fit", "rounds", args.values.rounds, 1);
  if (args.values.fresh && args.values["force-resume"]) {
    throw new UsageError("give either --fresh or --force-resume, not both", "fit");
  }
  const resume = args.values.fresh ? "never" : args.values["force-resume"] ? "force" : undefined;
  const reporter = new Reporter(args.flags);
  const run = await loadConfig(configPath!, overridesOf("fit", args.values));
  await fitRun(run, reporter, {
    ...(rounds !== undefined ? { rounds } : {}),
    plots: args.values.plots === true,
    ...(resume ? { resume } : {}),
  });
  return 0;
}

/** Fits, saves, writes the draws (and plots) and prints the summary. */
export async function fitRun(
  run: RunConfig,
  reporter: Reporter,
  options: { rounds?: number; plots?: boolean; resume?: FitOptions["resume"] } = {},
): Promise<FitResult> {
  // One writer per run folder, taken before anything in it is written (nbi-config.json first).
  await mkdir(run.runDir, { recursive: true });
  const lock = await acquireLock(join(run.runDir, LOCK_FILE), "nbi fit");
  try {
    return await fitLocked(run, reporter, options);
  } finally {
    await lock.release();
  }
}

async function fitLocked(
  run: RunConfig,
  reporter: Reporter,
  options: { rounds?: number; plots?: boolean; resume?: FitOptions["resume"] },
): Promise<FitResult> {
  await saveRun(run);
  const engine = engineFor(run);
  const nRounds = options.rounds ?? roundsOf(run);
  reporter.info(`nbi fit: ${engine.prior.toString()}`);
  reporter.info(`run folder ${run.runDir}`);
  reporter.event("start", {
    command: "fit",
    runDir: run.runDir,
    prior: engine.prior.toJSON(),
    nRounds,
    nSims: run.fit.nSims,
  });
  const t0 = performance.now();
  const fit = await engine.fit(
    fitOptions(run, await reporter.fitHooks(), nRounds, {
      ...(options.resume ? { resume: options.resume } : {}),
      onResume: (info) => reporter.resumed(info),
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await engine.save(run.runDir);
  const files: Record<string, string> = {
    model: join(run.runDir, "model.json"),
    weights: join(run.runDir, "weights.safetensors"),
  };
  reporter.result(`\nfit ${seconds.toFixed(1)} s (${fit.stopped}); model saved in ${run.runDir}`);
  let summary: ReturnType<typeof summarize> | undefined;
  if (fit.weights.length > 0) {
    files.samples = join(run.runDir, "fit-posterior.csv");
    const table = samplesTable([{ samples: fit.samples, weights: fit.weights }], fit.labels);
    await writeTable(files.samples, table.columns, table.data);
    summary = summarize(fit.samples, fit.weights, fit.labels);
    reporter.result(`weighted posterior of all rounds (${files.samples}):`);
    reporter.result(summaryTable(summary));
  } else if (run.xObs) {
    reporter.result(
      "no weighted draws: no round had usable importance weights (n_eff 0; see the warnings); " +
        `the model is saved: run the same command again to resume, or sample it with nbi predict ${run.runDir} --obs FILE`,
    );
  } else {
    reporter.result(
      `amortized posterior trained; sample it with: nbi predict ${run.runDir} --obs FILE`,
    );
  }
  if (options.plots) {
    const plots = await writeRunPlots(
      run.runDir,
      { samples: fit.samples, weights: fit.weights, labels: fit.labels, history: fit.history },
      reporter,
    );
    for (const [what, file] of Object.entries(plots)) {
      files[what] = file;
      reporter.result(`${what} plot: ${file}`);
    }
  }
  reporter.event("summary", {
    command: "fit",
    seconds,
    stopped: fit.stopped,
    essHistory: fit.essHistory,
    emptyRounds: fit.emptyRounds ?? [],
    resumedRounds: fit.resumedRounds ?? 0,
    labels: fit.labels,
    ...(summary ? { posterior: summary } : {}),
    files,
  });
  return fit;
}
