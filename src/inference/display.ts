/**
 * Readable displays of the engine's results in a REPL and a notebook: `formatFitResult` (per
 * round n_eff, efficiency, Pareto k̂, epochs, and the combined weighted posterior) and
 * `formatPredictResult` (n_eff, evidence, and the weighted posterior: mean ± std and quantiles)
 * return plain-text tables; `withDisplay(result, kind)` attaches them to a result object as
 * non-enumerable methods, so `util.inspect`/`console.log` in Node and Deno print the table, and
 * Jupyter kernels that look for `Symbol.for("Jupyter.display")` (Deno's) show it as HTML.
 *
 * Displays never throw: values that cannot be summarised print as "–".
 */

import { weightedQuantiles } from "./importance.js";
import type { FitResult, PredictResult } from "./results.js";
import type { RoundRecord } from "./snpe.js";

const INSPECT = Symbol.for("nodejs.util.inspect.custom");
const JUPYTER = Symbol.for("Jupyter.display");

/** The posterior quantiles the tables show. */
export const QUANTILES = [0.025, 0.16, 0.5, 0.84, 0.975] as const;

const DASH = "–";

// ---- numbers ----

const finite = (x: number | undefined): x is number => typeof x === "number" && Number.isFinite(x);

/** A number to `digits` significant figures, without exponent for everyday magnitudes. */
function sig(x: number | undefined, digits = 4): string {
  if (!finite(x)) return x === undefined || Number.isNaN(x) ? DASH : x > 0 ? "inf" : "-inf";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e6) return String(Number(x.toPrecision(digits)));
  return x.toExponential(digits - 1);
}

/** Decimals that show `scale` (a posterior std) to two significant figures. */
function decimalsFor(scale: number): number {
  if (!finite(scale) || scale <= 0) return 3;
  return Math.min(Math.max(1 - Math.floor(Math.log10(scale)), 0), 8);
}

function fixed(x: number | undefined, decimals: number): string {
  if (!finite(x)) return sig(x);
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e7 || a < 10 ** -decimals / 2)) return sig(x, 3);
  return x.toFixed(decimals);
}

/** x.toFixed(digits) without a minus sign on a value that rounds to zero. */
function fixedSigned(x: number | undefined, digits: number): string {
  if (!finite(x)) return DASH;
  const s = x.toFixed(digits);
  return Number(s) === 0 ? (0).toFixed(digits) : s;
}

const percent = (x: number | undefined): string =>
  finite(x) ? `${(100 * x).toFixed(x < 0.001 ? 2 : 1)}%` : DASH;

const seconds = (s: number): string => (finite(s) ? `${s.toFixed(s < 10 ? 1 : 0)} s` : DASH);

// ---- tables ----

interface Table {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Columns aligned left (the rest align right). */
  readonly left?: readonly number[];
}

/** Columns a string takes in a terminal: code points, less combining marks (the hat of k̂). */
const width = (s: string): number => [...s.replace(/\p{M}/gu, "")].length;

function pad(s: string, w: number, left: boolean): string {
  const fill = " ".repeat(Math.max(w - width(s), 0));
  return left ? s + fill : fill + s;
}

function textTable(t: Table): string {
  const widths = t.header.map((h, j) => Math.max(width(h), ...t.rows.map((r) => width(r[j]!))));
  const line = (cells: readonly string[]) =>
    `  ${cells.map((c, j) => pad(c, widths[j]!, t.left?.includes(j) ?? false)).join("  ")}`.trimEnd();
  return [line(t.header), ...t.rows.map(line)].join("\n");
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function htmlTable(t: Table, caption?: string): string {
  const align = (j: number) => (t.left?.includes(j) ? "left" : "right");
  const cells = (tag: string, r: readonly string[]) =>
    r.map((c, j) => `<${tag} style="text-align:${align(j)}">${escapeHtml(c)}</${tag}>`).join("");
  return [
    "<table>",
    caption ? `<caption style="text-align:left">${escapeHtml(caption)}</caption>` : "",
    `<thead><tr>${cells("th", t.header)}</tr></thead>`,
    `<tbody>${t.rows.map((r) => `<tr>${cells("td", r)}</tr>`).join("")}</tbody>`,
    "</table>",
  ].join("");
}

// ---- the posterior summary ----

/** Weighted mean, std and quantiles per parameter, ignoring draws with non-finite values. */
function summarise(
  samples: Float64Array,
  weights: Float64Array,
  d: number,
): { mean: number[]; std: number[]; quantiles: number[][] } | undefined {
  const n = d > 0 ? Math.floor(samples.length / d) : 0;
  if (n === 0 || weights.length !== n) return undefined;
  const w = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let ok = finite(weights[i]) && weights[i]! > 0;
    for (let k = 0; ok && k < d; k++) ok = finite(samples[i * d + k]);
    w[i] = ok ? weights[i]! : 0;
    total += w[i]!;
  }
  if (!(total > 0) || !Number.isFinite(total)) return undefined;
  const mean = new Array<number>(d).fill(0);
  const std = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) {
    if (w[i] === 0) continue;
    for (let k = 0; k < d; k++) mean[k]! += (w[i]! / total) * samples[i * d + k]!;
  }
  for (let i = 0; i < n; i++) {
    if (w[i] === 0) continue;
    for (let k = 0; k < d; k++) std[k]! += (w[i]! / total) * (samples[i * d + k]! - mean[k]!) ** 2;
  }
  const q = weightedQuantiles(samples.subarray(0, n * d), w, d, QUANTILES);
  return {
    mean,
    std: std.map(Math.sqrt),
    quantiles: mean.map((_, k) => q.map((row) => row[k]!)),
  };
}

function posteriorTable(
  samples: Float64Array,
  weights: Float64Array,
  labels: readonly string[],
): Table | undefined {
  let s: ReturnType<typeof summarise>;
  try {
    s = summarise(samples, weights, labels.length);
  } catch {
    return undefined;
  }
  if (!s) return undefined;
  const header = ["parameter", "mean ± std", ...QUANTILES.map((q) => `${+(100 * q).toFixed(1)}%`)];
  const rows = labels.map((label, k) => {
    const dec = decimalsFor(s.std[k]!);
    return [
      label,
      `${fixed(s.mean[k], dec)} ± ${fixed(s.std[k], dec)}`,
      ...s.quantiles[k]!.map((v) => fixed(v, dec)),
    ];
  });
  return { header, rows, left: [0, 1] };
}

// ---- fit ----

function roundsTable(history: readonly RoundRecord[]): Table {
  const header = [
    "round",
    "simulations",
    "n_eff",
    "efficiency",
    "k̂",
    "log Z",
    "epochs",
    "loss",
    "best (val loss)",
    "time",
  ];
  const rows = history.map((r) => {
    const dropped = r.dropped.nonFinite + r.dropped.threw + r.dropped.crashed;
    return [
      String(r.round),
      dropped > 0 ? `${r.nSimulated} (${dropped} dropped)` : String(r.nSimulated),
      finite(r.nEff) ? r.nEff.toFixed(1) : DASH,
      percent(r.efficiency),
      fixedSigned(r.paretoK, 2),
      finite(r.logEvidence)
        ? `${r.logEvidence.toFixed(2)} ± ${finite(r.logEvidenceSe) ? r.logEvidenceSe.toFixed(2) : DASH}`
        : DASH,
      r.trained ? `${r.epochs.length}${r.stoppedEarly ? " (early stop)" : ""}` : "not trained",
      lossLabel(r),
      r.trained && finite(r.bestValLoss) ? `${r.bestEpoch} (${r.bestValLoss.toFixed(3)})` : DASH,
      seconds(r.seconds.simulate + r.seconds.train),
    ];
  });
  return { header, rows };
}

/**
 * A round's loss, and how a select round chose it: its own draws' candidate kept, or kept as a
 * challenger for the next round's pilot, and which network that pilot chose (nReuse "auto");
 * and the surrogate's spread where held-out draws calibrated it (spread.ts).
 */
function lossLabel(r: RoundRecord): string {
  if (!r.loss) return DASH;
  const notes = [
    ...(r.lossScores ? ["select"] : []),
    ...(r.round > 0 && r.trainedFrom === r.round ? ["own draws"] : []),
    ...(r.challenger ? ["own draws' challenger kept"] : []),
    ...(r.duel
      ? [`pilot chose the ${r.duel.winner === "challenger" ? "challenger" : "kept surrogate"}`]
      : []),
    ...(r.spread?.applied ? [`spread ×${r.spread.tau!.toFixed(2)}`] : []),
  ];
  return notes.length > 0 ? `${r.loss} (${notes.join(", ")})` : r.loss;
}

/** Each round's warnings, named by round (the engine's own warnings already are). */
const roundWarnings = (history: readonly RoundRecord[]): string[] =>
  history.flatMap((r) =>
    r.warnings.map((w) => (w.startsWith(`round ${r.round}`) ? w : `round ${r.round}: ${w}`)),
  );

function fitTitle(result: FitResult): string {
  const n = result.history.length;
  return `NBI fit: ${n} round${n === 1 ? "" : "s"}, stopped: ${result.stopped}`;
}

/**
 * The fit's rounds (n_eff, efficiency, k̂, evidence, epochs) and its combined weighted posterior,
 * as text (what a FitResult prints as).
 *
 * @example
 * ```ts
 * console.log(inference.formatFitResult(fit));
 * ```
 */
export function formatFitResult(result: FitResult): string {
  const parts = [fitTitle(result), textTable(roundsTable(result.history))];
  const post = posteriorTable(result.samples, result.weights, result.labels);
  if (post) parts.push("weighted posterior (all rounds):", textTable(post));
  for (const w of roundWarnings(result.history)) parts.push(`warning: ${w}`);
  return parts.join("\n");
}

function fitHtml(result: FitResult): string {
  const post = posteriorTable(result.samples, result.weights, result.labels);
  return [
    htmlTable(roundsTable(result.history), fitTitle(result)),
    post ? htmlTable(post, "weighted posterior (all rounds)") : "",
    ...roundWarnings(result.history).map((w) => `<p>warning: ${escapeHtml(w)}</p>`),
  ].join("");
}

// ---- predict ----

function predictTitle(result: PredictResult): string {
  if (result.surrogateOnly) {
    return `NBI posterior: ${result.labels.length > 0 ? result.samples.length / result.labels.length : 0} surrogate draws (unweighted)`;
  }
  return (
    `NBI posterior: n_eff ${sig(result.ess, 4)} of ${result.nSimulations} simulations ` +
    `(efficiency ${percent(result.efficiency)}), Pareto k̂ ${fixedSigned(result.paretoK, 2)}, ` +
    `log evidence ${finite(result.logEvidence) ? result.logEvidence.toFixed(2) : DASH} ± ${finite(result.logEvidenceSe) ? result.logEvidenceSe.toFixed(2) : DASH}`
  );
}

function predictNotes(result: PredictResult): string[] {
  const notes: string[] = [];
  if (result.dropped > 0) notes.push(`${result.dropped} simulations dropped`);
  if (result.redrawn > 0) notes.push(`${result.redrawn} draws outside the prior redrawn`);
  if (result.pooled.rows > 0) {
    notes.push(
      `the fit's ${result.pooled.rows} weighed draws pooled in (n_eff ${sig(result.pooled.nEff, 4)} of them)`,
    );
  }
  return notes;
}

/**
 * The weighted posterior (mean ± std and quantiles per parameter) with n_eff and the evidence,
 * as text (what a PredictResult prints as).
 *
 * @example
 * ```ts
 * console.log(inference.formatPredictResult(await engine.predict(xObs, { xErr: 0.1 })));
 * ```
 */
export function formatPredictResult(result: PredictResult): string {
  const parts = [predictTitle(result)];
  const notes = predictNotes(result);
  if (notes.length > 0) parts.push(`(${notes.join("; ")})`);
  const post = posteriorTable(result.samples, result.weights, result.labels);
  parts.push(post ? textTable(post) : "  (no draws with positive weight)");
  for (const w of result.warnings) parts.push(`warning: ${w}`);
  return parts.join("\n");
}

function predictHtml(result: PredictResult): string {
  const notes = predictNotes(result);
  const post = posteriorTable(result.samples, result.weights, result.labels);
  return [
    post
      ? htmlTable(post, predictTitle(result))
      : `<p>${escapeHtml(predictTitle(result))}: no draws with positive weight</p>`,
    notes.length > 0 ? `<p>${escapeHtml(notes.join("; "))}</p>` : "",
    ...result.warnings.map((w) => `<p>warning: ${escapeHtml(w)}</p>`),
  ].join("");
}

// ---- attaching the displays ----

/** What the display methods return to a Jupyter kernel (Deno's reads this symbol). */
export interface JupyterBundle {
  readonly "text/plain": string;
  readonly "text/html": string;
}

function safe(format: () => string, what: string): string {
  try {
    return format();
  } catch (e) {
    return `${what} (display failed: ${e instanceof Error ? e.message : String(e)})`;
  }
}

// Shared methods (one function each, so equal results keep equal properties).
function inspectFit(this: FitResult): string {
  return safe(() => formatFitResult(this), "NBI fit result");
}
function jupyterFit(this: FitResult): JupyterBundle {
  return {
    "text/plain": inspectFit.call(this),
    "text/html": safe(() => fitHtml(this), "NBI fit result"),
  };
}
function inspectPredict(this: PredictResult): string {
  return safe(() => formatPredictResult(this), "NBI posterior");
}
function jupyterPredict(this: PredictResult): JupyterBundle {
  return {
    "text/plain": inspectPredict.call(this),
    "text/html": safe(() => predictHtml(this), "NBI posterior"),
  };
}

/**
 * Attaches readable displays to a result of `NBI.fit` ("fit") or `NBI.predict` ("predict"), as
 * non-enumerable methods (spreading, JSON and deep equality ignore them), and returns it.
 *
 * @example
 * ```ts
 * const copy = inference.withDisplay({ ...fit }, "fit"); // the spread lost the display; this restores it
 * ```
 */
export function withDisplay<T extends FitResult>(result: T, kind: "fit"): T;
export function withDisplay<T extends PredictResult>(result: T, kind: "predict"): T;
export function withDisplay<T extends FitResult | PredictResult>(
  result: T,
  kind: "fit" | "predict",
): T {
  const [inspect, jupyter] =
    kind === "fit" ? [inspectFit, jupyterFit] : [inspectPredict, jupyterPredict];
  for (const [key, value] of [
    [INSPECT, inspect],
    [JUPYTER, jupyter],
  ] as const) {
    Object.defineProperty(result, key, {
      value,
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  return result;
}
