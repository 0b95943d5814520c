/**
 * The run configuration of `nbi fit`, `nbi simulate` and `nbi predict`: a JSON file, or an ES
 * module (.mjs/.js/.ts/.mts) whose default export is the same object (a module may give the
 * simulator as a function and priors as prior objects). Relative paths in it are relative to the
 * file's own folder.
 *
 * ```json
 * {
 *   "simulator": { "module": "./line.mjs", "exportName": "line" },
 *   "priors": { "a": { "type": "normal", "mu": 0, "sigma": 1 },
 *               "b": { "type": "uniform", "lo": -2, "hi": 2 } },
 *   "flow": { "flowHidden": 32, "numBlocks": 3 },
 *   "featurizer": { "type": "mlp", "dimIn": 8, "dimOut": 16 },
 *   "fit": { "nSims": 500, "nRounds": 3, "nEpochs": 20, "batchSize": 32, "noise": 0.2 },
 *   "observation": "obs.csv",
 *   "path": "runs/line",
 *   "seed": 0,
 *   "workers": 4
 * }
 * ```
 *
 * - simulator: "./sim.mjs" (its default export), "./sim.mjs#name", { module, exportName }, or
 *   (module configs) a function (θ, { index, seed }) → data run in-process.
 * - priors: a prior spec as `toJSON` writes it ({ type: "uniform", lo, hi }, ...; see
 *   src/inference/priors.ts), an array of specs, or an object of named specs (names become labels).
 *   A correlated block is { "type": "multivariateNormal", "mean": [...], "cov": [[...], ...] }.
 * - flow: nbi's flow hyperparameters; nDims defaults to the priors' dimension.
 * - fit: nSims (required), nRounds, nEpochs, batchSize, lr, minLr, fVal, nReuse,
 *   earlyStopPatience, emaHalfLife, earlyStopTrain, calibrateSpread, neffStop, fAcceptMin, noise (Gaussian
 *   sigmas: one number or one per data value; also the likelihood of the importance weights and
 *   predict's default xErr;
 *   or light curves with gaps and per-point error bars, { "missing": [lo, hi], "sigma": [lo, hi] },
 *   as `gappedLightCurves`: an amortized fit whose featurizer's dimIn is 3 × channels);
 *   for sequential rounds loss ("auto" | "nll" | "apt" | "gated" | "select" | "weighted-nll"), atoms (APT's,
 *   ≥ 1), proposal ("auto" | "surrogate" | "truncated" | "mixture"), truncationEps (in (0, 1)),
 *   adaptRounds (true/false) and flowSpace ("unbounded" | "logit" | "theta").
 * - observation: a CSV or NPY file, { file, column }, or the numbers inline. Without one, `fit`
 *   trains an amortized posterior (one round from the prior).
 * - path: the run folder (default: "<config name>-run" beside the config file).
 * - seed, workers, backend ("cpu" | "webgpu" | "auto"), dataShape ([length] or [channels, length]),
 *   simTimeout (seconds one simulation may run; worker simulators are stopped past it).
 * - predict: defaults for `nbi predict`: nSamples, neffMin, nMax, xErr.
 *
 * A run folder's nbi-config.json is data: `nbi predict` never imports the modules it names
 * unless asked (`--simulator`, `--config` or `--trust-run-dir`; see `loadRun`).
 */
import { access, mkdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { isLeft } from "fp-ts/lib/Either.js";
import { describe, NbiError } from "../errors.js";
import {
  type FeaturizerConfig,
  fromConfig as featurizerFromConfig,
} from "../featurizers/registry.js";
import { checkFitSettings, didYouMean, FIT_SETTING_RULES } from "../inference/fit-settings.js";
import {
  type GappedLightCurvesOptions,
  gappedLightCurves,
  isGappedLightCurves,
} from "../inference/gaps.js";
import { hostKey, keyAt } from "../inference/host.js";
import {
  type FlowConfig,
  flowFromConfig,
  type PosteriorNetwork,
  posteriorNetwork,
} from "../inference/posterior.js";
import { fromSpec, type Prior, type PriorSpec, resolvePriors } from "../inference/priors.js";
import type { Simulator } from "../inference/simulation/rows.js";
import {
  type SimulatorFn,
  simulate,
  type WorkerSimulatorSpec,
} from "../inference/simulation/simulate.js";
import type { FlowSpace, ProposalKind, SequentialLoss } from "../inference/snpe.js";
import type { StoreMeta } from "../inference/store.js";
import type { Noise } from "../inference/train.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readNumbers } from "./data.js";

/** Fit options a config may set (FitOptions of the engine, minus hooks). */
export interface FitSection {
  nSims: number;
  nRounds?: number;
  nEpochs?: number;
  batchSize?: number;
  lr?: number;
  minLr?: number;
  fVal?: number;
  nReuse?: number | "auto";
  earlyStopPatience?: number;
  emaHalfLife?: number;
  earlyStopTrain?: boolean;
  calibrateSpread?: boolean;
  neffStop?: number;
  fAcceptMin?: number;
  noise?: Noise;
  /** The loss of sequential rounds. */
  loss?: SequentialLoss;
  /** Atoms per example of the APT loss. */
  atoms?: number;
  /** The proposal of sequential rounds. */
  proposal?: ProposalKind;
  /** Mass left outside the truncated proposal's region. */
  truncationEps?: number;
  /** Draw later rounds in adaptive stages (default true; false for sharded rounds). */
  adaptRounds?: boolean;
  /** Where the flow lives: "unbounded" (default, probit), "logit" or "theta". */
  flowSpace?: FlowSpace;
}

export interface PredictSection {
  nSamples?: number;
  neffMin?: number;
  nMax?: number;
  xErr?: number | number[];
}

/** A validated config with paths resolved, priors built and the observation read. */
export interface RunConfig {
  /** The config file (absolute). */
  readonly file: string;
  readonly simulator: Simulator;
  readonly prior: Prior;
  readonly flow: FlowConfig;
  readonly featurizer: FeaturizerConfig;
  readonly fit: FitSection;
  readonly xObs?: Float64Array;
  readonly runDir: string;
  readonly seed: number;
  readonly workers?: number;
  readonly backend?: "cpu" | "webgpu" | "auto";
  readonly dataShape?: number[];
  readonly predict: PredictSection;
  /** Longest one simulation may run, in milliseconds. */
  readonly simTimeoutMs?: number;
}

/** Settings that change where or how fast a run goes, never its numbers (plus nRounds). */
export interface Overrides {
  path?: string;
  workers?: number;
  backend?: "cpu" | "webgpu" | "auto";
  /** Longest one simulation may run, in milliseconds (--sim-timeout). */
  simTimeoutMs?: number;
}

const TOP_KEYS = [
  "description",
  "simulator",
  "priors",
  "labels",
  "flow",
  "featurizer",
  "fit",
  "observation",
  "path",
  "seed",
  "workers",
  "backend",
  "dataShape",
  "predict",
  "simTimeout",
];
/** The fit settings a config takes: the plain ones (checked by fit-settings.ts) and the noise. */
const FIT_KEYS = [...Object.keys(FIT_SETTING_RULES).filter((k) => k !== "resume"), "noise"];
const PREDICT_KEYS = ["nSamples", "neffMin", "nMax", "xErr"];
const MODULE_EXT = /\.(mjs|js|cjs|ts|mts|cts)$/i;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isPrior = (v: unknown): v is Prior =>
  isObject(v) && typeof v.logProb === "function" && typeof v.sample === "function";
const isNumberList = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number" && Number.isFinite(x));

/** Reads the raw config object from a JSON file or an ES module's default export. */
export async function readConfigFile(path: string): Promise<{ file: string; raw: unknown }> {
  const file = resolve(path);
  const info = await stat(file).catch(() => {
    throw new NbiError(`${path}: no such config file (expected a .json, .mjs or .ts file)`);
  });
  if (info.isDirectory()) {
    throw new NbiError(
      `${path}: CONFIG expected a config file (.json, .mjs or .ts), got a folder` +
        " (a run folder is what 'nbi predict RUN_DIR' reads; 'nbi fit' and 'nbi simulate' take the config that made it)",
    );
  }
  if (MODULE_EXT.test(file)) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (error) {
      throw new NbiError(`${path}: could not load the config module: ${(error as Error).message}`);
    }
    let raw = mod.default ?? mod.config;
    if (typeof raw === "function") raw = await (raw as () => unknown)();
    if (!isObject(raw)) {
      throw new NbiError(
        `${path}: expected a default export that is a config object, got ${describe(raw)}`,
      );
    }
    return { file, raw };
  }
  const text = await readFile(file, "utf8");
  try {
    return { file, raw: JSON.parse(text) as unknown };
  } catch (error) {
    throw new NbiError(`${path}: invalid JSON (${(error as Error).message})`);
  }
}

/** Loads, validates and resolves a config; every problem found is listed in one error line. */
export async function loadConfig(path: string, overrides: Overrides = {}): Promise<RunConfig> {
  const { file, raw } = await readConfigFile(path);
  return resolveConfig(raw, file, overrides, path);
}

export async function resolveConfig(
  raw: unknown,
  file: string,
  overrides: Overrides,
  shown = file,
): Promise<RunConfig> {
  const problems: string[] = [];
  const problem = (where: string, expected: string, got: unknown) =>
    problems.push(`${where} expected ${expected}, got ${describe(got)}`);
  if (!isObject(raw)) {
    throw new NbiError(
      `${shown}: expected a config object { simulator, priors, ... }, got ${describe(raw)}`,
    );
  }
  const dir = dirname(file);
  const at = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  for (const key of Object.keys(raw)) {
    if (!TOP_KEYS.includes(key))
      problems.push(`unknown key ${JSON.stringify(key)} (known: ${TOP_KEYS.join(", ")})`);
  }

  // Simulator.
  let simulator: Simulator | undefined;
  const sim = raw.simulator;
  if (typeof sim === "function") simulator = sim as SimulatorFn;
  else if (typeof sim === "string" || (isObject(sim) && typeof sim.module === "string")) {
    const [module, hashName] = typeof sim === "string" ? sim.split("#") : [sim.module as string];
    const exportName = isObject(sim) ? sim.exportName : hashName;
    if (exportName !== undefined && typeof exportName !== "string") {
      problem("simulator.exportName", "a string", exportName);
    }
    const absolute = at(module!);
    try {
      await access(absolute);
      simulator = { module: absolute, ...(exportName ? { exportName: exportName as string } : {}) };
    } catch {
      problems.push(`simulator: no module at ${absolute}`);
    }
  } else if (sim === undefined) {
    problems.push(
      'simulator is missing (expected "./sim.mjs", "./sim.mjs#name" or { module, exportName })',
    );
  } else {
    problem("simulator", '"./sim.mjs", "./sim.mjs#name" or { module, exportName }', sim);
  }

  // Priors.
  let prior: Prior | undefined;
  if (raw.priors === undefined) {
    problems.push(
      'priors is missing (expected e.g. { "a": { "type": "uniform", "lo": 0, "hi": 1 } })',
    );
  } else {
    try {
      prior = resolvePriors(priorsOf(raw.priors, "priors"), raw.labels as string[] | undefined);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }

  // Networks.
  let flow: FlowConfig | undefined;
  if (raw.flow !== undefined && !isObject(raw.flow))
    problem("flow", "an object of flow settings", raw.flow);
  else {
    const f = (raw.flow ?? {}) as Partial<FlowConfig>;
    flow = { ...f, nDims: f.nDims ?? prior?.dim ?? 0 };
  }
  const featurizer = raw.featurizer as FeaturizerConfig | undefined;
  if (!isObject(featurizer)) {
    problem(
      "featurizer",
      'a featurizer config such as { "type": "resnet-gru", "dimIn": 1, "depth": 3 }',
      featurizer,
    );
  } else {
    // Checked now, before anything is written: the engine would only find out when it starts.
    try {
      const built = featurizerFromConfig(featurizer);
      if (flow && flow.nDims > 0) flowFromConfig(flow, built.dimOut);
    } catch (error) {
      problems.push(
        (error as Error).message.replace(/^featurizers\.fromConfig: config\./, "featurizer."),
      );
    }
  }

  // Fit options.
  const fit: Partial<FitSection> = {};
  if (raw.fit !== undefined && !isObject(raw.fit))
    problem("fit", "an object of fit options", raw.fit);
  const fitRaw = isObject(raw.fit) ? raw.fit : {};
  // The plain settings by the rules the API uses too (every problem kept); the noise model here.
  const settings = checkFitSettings(fitRaw, {
    known: FIT_KEYS,
    label: (key) => `fit.${key}`,
    unknown: (keys) =>
      keys.map((key) => `unknown key fit.${key} (known: ${FIT_KEYS.join(", ")})`) as [
        string,
        ...string[],
      ],
  });
  if (isLeft(settings)) problems.push(...settings.left);
  for (const [key, value] of Object.entries(fitRaw)) {
    if (!FIT_KEYS.includes(key)) continue;
    if (key === "noise") {
      if (isObject(value) && !isGappedLightCurves(value)) {
        // The gapped observation model: { "missing": [lo, hi], "sigma": [lo, hi] }.
        try {
          (fit as Record<string, unknown>)[key] = gappedLightCurves(
            value as unknown as GappedLightCurvesOptions,
          );
        } catch (error) {
          problems.push(
            (error as Error).message
              .replace(/^gappedLightCurves: options /, "fit.noise ")
              .replace(/^gappedLightCurves: /, "fit.noise."),
          );
        }
        continue;
      }
      const ok =
        (typeof value === "number" && value >= 0) ||
        isNumberList(value) ||
        typeof value === "function" ||
        isGappedLightCurves(value);
      if (!ok) {
        problem(
          "fit.noise",
          'a sigma ≥ 0, a list of sigmas (one per data value), or light curves with gaps { "missing": [lo, hi], "sigma": [lo, hi] }',
          value,
        );
      }
    }
    (fit as Record<string, unknown>)[key] = value;
  }
  if (fit.nSims === undefined) problems.push("fit.nSims is missing (the simulations per round)");
  if ((fit.nRounds ?? 1) > 1 && raw.observation === undefined) {
    problems.push(
      `fit.nRounds ${fit.nRounds} needs an "observation" (sequential rounds draw from the posterior at it; without one, use nRounds 1)`,
    );
  }

  // Observation.
  let xObs: Float64Array | undefined;
  const obs = raw.observation;
  if (obs !== undefined) {
    try {
      const hint = '{ "file": ..., "column": NAME }';
      if (typeof obs === "string") xObs = (await readNumbers(at(obs), undefined, hint)).values;
      else if (isObject(obs) && typeof obs.file === "string") {
        const column = obs.column as string | number | undefined;
        xObs = (await readNumbers(at(obs.file), column, hint)).values;
      } else if (Array.isArray(obs) || ArrayBuffer.isView(obs)) {
        const flat = Array.from(obs as ArrayLike<unknown>).flat(2);
        if (!flat.every((v) => typeof v === "number")) {
          problem("observation", "numbers", obs);
        } else xObs = Float64Array.from(flat as number[]);
      } else problem("observation", 'a file path, { "file", "column" } or a list of numbers', obs);
    } catch (error) {
      problems.push(`observation: ${(error as Error).message}`);
    }
  }

  if (obs !== undefined && isGappedLightCurves(fit.noise)) {
    // The engine's sequential gapped fit needs the light curve's error bars (fit's xErr), which
    // a config cannot give yet.
    problems.push(
      "observation: a config with the gapped observation model (fit.noise { missing, sigma }) fits amortized, without an observation; " +
        "weigh a light curve with nbi predict RUN_DIR --obs FILE --xerr-column NAME",
    );
  }

  // Scalars.
  const seed = raw.seed ?? 0;
  if (!Number.isSafeInteger(seed)) problem("seed", "an integer", seed);
  const workers = overrides.workers ?? raw.workers;
  if (workers !== undefined && (!Number.isInteger(workers) || (workers as number) < 1)) {
    problem("workers", "a positive integer", workers);
  }
  let simTimeoutMs = overrides.simTimeoutMs;
  if (simTimeoutMs === undefined && raw.simTimeout !== undefined) {
    const t = raw.simTimeout;
    if (typeof t !== "number" || !(t > 0 && t * 1000 <= 2 ** 31 - 1))
      problem("simTimeout", "a positive number of seconds", t);
    else simTimeoutMs = t * 1000;
  }
  const backend = overrides.backend ?? raw.backend;
  if (backend !== undefined && !["cpu", "webgpu", "auto"].includes(backend as string)) {
    problem("backend", '"cpu", "webgpu" or "auto"', backend);
  }
  const dataShape = raw.dataShape;
  if (
    dataShape !== undefined &&
    (!Array.isArray(dataShape) ||
      dataShape.length < 1 ||
      dataShape.length > 2 ||
      !dataShape.every((d) => Number.isInteger(d) && d >= 1))
  ) {
    problem("dataShape", "[length] or [channels, length]", dataShape);
  }
  if (raw.path !== undefined && typeof raw.path !== "string")
    problem("path", "a folder path", raw.path);
  const predict: PredictSection = {};
  if (raw.predict !== undefined && !isObject(raw.predict))
    problem("predict", "an object", raw.predict);
  for (const [key, value] of Object.entries(isObject(raw.predict) ? raw.predict : {})) {
    if (!PREDICT_KEYS.includes(key))
      problems.push(`unknown key predict.${key} (known: ${PREDICT_KEYS.join(", ")})`);
    else if (
      key === "xErr"
        ? !(typeof value === "number" || isNumberList(value))
        : !Number.isInteger(value)
    ) {
      problem(
        `predict.${key}`,
        key === "xErr" ? "a sigma or a list of sigmas" : "an integer",
        value,
      );
    } else (predict as Record<string, unknown>)[key] = value;
  }

  if (problems.length > 0) throw new NbiError(`${shown}: ${problems.join("; ")}`);
  const name = basename(file, extname(file));
  return {
    file,
    simulator: simulator!,
    prior: prior!,
    flow: flow!,
    featurizer: featurizer!,
    fit: fit as FitSection,
    ...(xObs ? { xObs } : {}),
    runDir: overrides.path
      ? resolve(overrides.path)
      : raw.path !== undefined
        ? at(raw.path as string)
        : join(dir, `${name}-run`),
    seed: seed as number,
    ...(workers !== undefined ? { workers: workers as number } : {}),
    ...(backend !== undefined ? { backend: backend as RunConfig["backend"] } : {}),
    ...(dataShape !== undefined ? { dataShape: dataShape as number[] } : {}),
    ...(simTimeoutMs !== undefined ? { simTimeoutMs } : {}),
    predict,
  };
}

/** Priors from specs (or prior objects, in module configs), labelled by object keys. */
function priorsOf(value: unknown, where: string): Prior | Prior[] | Record<string, Prior> {
  if (isPrior(value)) return value;
  if (Array.isArray(value)) return value.map((v, i) => single(v, `${where}[${i}]`));
  if (isObject(value) && typeof value.type === "string") return single(value, where);
  if (isObject(value)) {
    // Every bad prior named at once, like the config's other problems.
    const problems: string[] = [];
    const entries = Object.entries(value).map(([k, v]) => {
      try {
        return [k, single(v, `${where}.${k}`)] as const;
      } catch (error) {
        problems.push((error as Error).message);
        return [k, undefined] as const;
      }
    });
    if (problems.length > 0) throw new NbiError(problems.join("; "));
    return Object.fromEntries(entries) as Record<string, Prior>;
  }
  throw new NbiError(
    `${where} expected a prior spec ({ "type": "uniform", "lo": 0, "hi": 1 }), a list of specs or an object of named specs, got ${describe(value)}`,
  );
}

function single(value: unknown, where: string): Prior {
  if (isPrior(value)) return value;
  if (!isObject(value)) {
    throw new NbiError(
      `${where} expected a prior spec such as { "type": "uniform", "lo": 0, "hi": 1 }, got ${describe(value)}`,
    );
  }
  checkSpecKeys(value, where);
  try {
    return fromSpec(value as unknown as PriorSpec);
  } catch (error) {
    throw new NbiError(`${where}: ${(error as Error).message.replace(/^fromSpec: /, "")}`);
  }
}

/** The keys each prior spec type takes (besides "type" and "labels"). */
const SPEC_KEYS: Record<string, readonly string[]> = {
  uniform: ["lo", "hi"],
  normal: ["mu", "sigma"],
  logUniform: ["lo", "hi"],
  truncatedNormal: ["mu", "sigma", "lo", "hi"],
  empirical: ["grid", "density"],
  multivariateNormal: ["mean", "cov"],
  independent: ["parts"],
};

/** Unknown keys of a prior spec ("low", "high") named, with the key probably meant. */
function checkSpecKeys(spec: Record<string, unknown>, where: string): void {
  const own = SPEC_KEYS[spec.type as string];
  if (own === undefined) return; // fromSpec names an unknown type
  const known = ["type", "labels", ...own];
  const unknown = Object.keys(spec).filter((k) => !known.includes(k));
  const aliases: Record<string, string> = {
    low: "lo",
    high: "hi",
    min: "lo",
    max: "hi",
    lower: "lo",
    upper: "hi",
    mean: "mu",
    loc: "mu",
    std: "sigma",
    scale: "sigma",
    sd: "sigma",
  };
  const named = unknown.map((k) => {
    const alias = aliases[k];
    const hint = alias && own.includes(alias) ? alias : didYouMean(k, own);
    return `${JSON.stringify(k)}${hint ? ` (did you mean ${JSON.stringify(hint)}?)` : ""}`;
  });
  if (unknown.length === 0) {
    if (spec.type === "independent" && Array.isArray(spec.parts)) {
      spec.parts.forEach((part, i) => {
        if (isObject(part)) checkSpecKeys(part, `${where}.parts[${i}]`);
      });
    }
    return;
  }
  throw new NbiError(
    `${where} expected the keys of a ${JSON.stringify(spec.type)} prior (${known.map((k) => JSON.stringify(k)).join(", ")}), got unknown ${named.join(", ")}`,
  );
}

/** The simulator as saved in a run folder: a module spec, or "function" (re-read the config). */
type SavedSimulator = WorkerSimulatorSpec | "function";

/** What a run folder remembers of its config (RUN_DIR/nbi-config.json), for `nbi predict`. */
export interface SavedRun {
  readonly format: "nbi-cli-run";
  readonly version: 1;
  readonly configFile: string;
  readonly simulator: SavedSimulator;
  readonly workers?: number;
  readonly backend?: RunConfig["backend"];
  /** The fit's Gaussian noise sigmas: predict's default xErr. */
  readonly noise?: number | number[];
  readonly predict: PredictSection;
}

export const RUN_FILE = "nbi-config.json";
/** The simulation store inside a run folder (the engine's `path`). */
export const STORE_DIR = "store";

export async function saveRun(run: RunConfig): Promise<void> {
  await mkdir(run.runDir, { recursive: true });
  const noise = run.fit.noise;
  const saved: SavedRun = {
    format: "nbi-cli-run",
    version: 1,
    configFile: run.file,
    simulator: typeof run.simulator === "function" ? "function" : run.simulator,
    ...(run.workers !== undefined ? { workers: run.workers } : {}),
    ...(run.backend !== undefined ? { backend: run.backend } : {}),
    ...(typeof noise === "number" || isNumberList(noise)
      ? { noise: noise as number | number[] }
      : {}),
    predict: run.predict,
  };
  await writeFileAtomic(join(run.runDir, RUN_FILE), `${JSON.stringify(saved, null, 2)}\n`);
}

/** What `nbi predict` is told on its command line about code to run. */
export interface RunTrust {
  /** A simulator given on the command line (--simulator), resolved already. */
  readonly simulator?: Simulator;
  /** A config given on the command line (--config): its simulator is used. */
  readonly config?: string;
  /** --trust-run-dir: run the simulator the run folder names (its module, or its config's). */
  readonly trustRunDir?: boolean;
}

/**
 * Reads a run folder's nbi-config.json as data. Code is loaded only as the command line says:
 * the simulator given (`trust.simulator`), the one of a config given (`trust.config`), or, with
 * `trust.trustRunDir`, the module (or config module) the folder names, relative paths resolved
 * against the run folder. Otherwise `simulatorValue` is undefined and `simulatorNote` says what
 * the folder names and how to allow it.
 */
export async function loadRun(
  runDir: string,
  trust: RunTrust = {},
): Promise<SavedRun & { simulatorValue?: Simulator; simulatorNote?: string }> {
  const path = join(runDir, RUN_FILE);
  let saved: SavedRun;
  try {
    saved = JSON.parse(await readFile(path, "utf8")) as SavedRun;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new NbiError(
      missing
        ? `${runDir}: not a run folder of nbi fit (no ${RUN_FILE}); give the folder nbi fit wrote (the config's "path")`
        : `${path}: ${(error as Error).message}`,
    );
  }
  if (!isObject(saved) || saved.format !== "nbi-cli-run") {
    throw new NbiError(
      `${path}: expected format "nbi-cli-run", got ${describe(isObject(saved) ? saved.format : saved)}`,
    );
  }
  if (trust.simulator !== undefined) return { ...saved, simulatorValue: trust.simulator };
  if (trust.config !== undefined) {
    const run = await loadConfig(trust.config);
    return { ...saved, simulatorValue: run.simulator };
  }
  // Paths in the folder are relative to the folder (never to the working directory).
  const inFolder = (p: unknown, what: string): string => {
    if (typeof p !== "string" || p === "") {
      throw new NbiError(`${path}: ${what} expected a file path, got ${describe(p)}`);
    }
    return isAbsolute(p) ? p : resolve(runDir, p);
  };
  const named =
    saved.simulator === "function"
      ? `the simulator function of the config ${inFolder(saved.configFile, "configFile")}`
      : isObject(saved.simulator)
        ? `the simulator module ${inFolder(saved.simulator.module, "simulator.module")}` +
          (saved.simulator.exportName ? ` (export ${saved.simulator.exportName})` : "")
        : undefined;
  if (named === undefined) {
    throw new NbiError(
      `${path}: simulator expected "function" or { module, exportName }, got ${describe(saved.simulator)}`,
    );
  }
  if (!trust.trustRunDir) {
    const flag =
      saved.simulator === "function"
        ? `--config ${inFolder(saved.configFile, "configFile")}`
        : `--simulator ${inFolder((saved.simulator as WorkerSimulatorSpec).module, "simulator.module")}${
            (saved.simulator as WorkerSimulatorSpec).exportName
              ? `#${(saved.simulator as WorkerSimulatorSpec).exportName}`
              : ""
          }`;
    return {
      ...saved,
      simulatorNote:
        `${path} names ${named}; a run folder is data, not code, so it is not run unless you ask: ` +
        `pass ${flag}, or --trust-run-dir to run what the folder names`,
    };
  }
  if (saved.simulator === "function") {
    const configFile = inFolder(saved.configFile, "configFile");
    // An in-process simulator lives in the config module: read it again (trusted).
    const { raw } = await readConfigFile(configFile).catch((error: Error) => {
      throw new NbiError(
        `${path}: the simulator is a function in ${configFile}, which could not be read again (${error.message})`,
      );
    });
    const fn = (raw as { simulator?: unknown }).simulator;
    if (typeof fn !== "function") {
      throw new NbiError(
        `${path}: ${configFile} expected a simulator function, got ${describe(fn)}`,
      );
    }
    return { ...saved, simulatorValue: fn as SimulatorFn };
  }
  const spec = saved.simulator as WorkerSimulatorSpec;
  return {
    ...saved,
    simulatorValue: {
      module: inFolder(spec.module, "simulator.module"),
      ...(spec.exportName ? { exportName: spec.exportName } : {}),
    },
  };
}

/**
 * A simulator named on the command line: "./sim.mjs" (its default export) or "./sim.mjs#name",
 * relative to the working directory (the user typed it there).
 */
export async function simulatorArgument(text: string): Promise<WorkerSimulatorSpec> {
  const [module, exportName] = text.split("#");
  const file = resolve(module!);
  await access(file).catch(() => {
    throw new NbiError(`--simulator: no module at ${file}`);
  });
  return { module: file, ...(exportName ? { exportName } : {}) };
}

/** The store's meta for a run, as the engine computes it (engine.ts openRunStore). */
export async function storeMeta(
  run: RunConfig,
): Promise<{ meta: StoreMeta; net: PosteriorNetwork; shape: number[] }> {
  const shape = run.dataShape ?? (run.xObs ? [run.xObs.length] : await probeDataShape(run));
  const net = posteriorNetwork(run.flow, run.featurizer, shape);
  const dataShape =
    net.inputShape[0] === 1 && (run.dataShape?.length ?? 1) === 1
      ? [net.inputShape[1]]
      : [...net.inputShape];
  return { meta: { paramDim: net.nDims, dataShape, labels: run.prior.labels }, net, shape };
}

/** The engine's probe (engine.ts probeDataShape): one simulation at a prior draw. */
async function probeDataShape(run: RunConfig): Promise<number[]> {
  const theta = run.prior.sample(keyAt(hostKey(run.seed), 5), 1);
  let length: number | undefined;
  const report = await simulate(
    run.simulator,
    {
      theta,
      paramDim: run.prior.dim,
      indices: Int32Array.of(0),
      onChunk: (c) => {
        length = c.x.length;
      },
    },
    { workers: 1 },
  );
  if (length === undefined || report.ok !== 1) {
    throw new NbiError(
      `could not learn the simulator's output length: it failed at θ = [${Array.from(theta).join(", ")}]` +
        (report.firstError ? ` (${report.firstError})` : "") +
        '; fix the simulator or give "dataShape" in the config',
    );
  }
  return [length];
}
