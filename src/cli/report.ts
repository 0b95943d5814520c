/**
 * Everything the commands print. Three modes:
 * - text (default): lines on stdout; progress bars on stderr when it is a terminal, otherwise a
 *   throttled progress line every few seconds (for Slurm logs);
 * - --quiet: no bars or per-round lines, only the final summary;
 * - --json: one JSON object per line on stdout (`{"event": "round", ...}`), nothing else there.
 * Warnings go to stderr in text modes and are `warning` events in JSON mode.
 */
import cliProgress from "cli-progress";
import { progressHooks } from "../inference/progress.js";
import type { Hooks, RoundRecord } from "../inference/snpe.js";
import type { EpochRecord } from "../inference/train.js";
import { cliStdout, type GlobalFlags, type OutputStream } from "./common.js";

/** Seconds between progress lines when stderr is not a terminal. */
const LOG_EVERY_S = 10;

export class Reporter {
  /** Progress bars: stderr is a terminal and neither --quiet nor --json. */
  readonly bars: boolean;
  private readonly lastLog = new Map<string, { start: number; last: number }>();

  constructor(
    readonly flags: GlobalFlags,
    readonly out: OutputStream = cliStdout,
    readonly err: NodeJS.WriteStream = process.stderr,
  ) {
    this.bars = Boolean(err.isTTY) && !flags.quiet && !flags.json;
  }

  /** A progress line (per round, per step): text mode without --quiet. */
  info(text: string): void {
    if (!this.flags.json && !this.flags.quiet) this.out.write(`${text}\n`);
  }

  /** Final results: every text mode, --quiet included. */
  result(text: string): void {
    if (!this.flags.json) this.out.write(`${text}\n`);
  }

  /** One JSON line in --json mode (NaN and ±Infinity become null). */
  event(event: string, data: Record<string, unknown> = {}): void {
    if (this.flags.json) this.out.write(`${JSON.stringify({ event, ...data }, jsonSafe)}\n`);
  }

  warn(message: string): void {
    if (this.flags.json) this.event("warning", { message });
    else this.err.write(`warning: ${message}\n`);
  }

  /**
   * Without bars, a progress line every LOG_EVERY_S seconds per key, and a last one at the end of
   * a step that took that long (short steps stay silent: their result line says enough).
   */
  private throttled(key: string, last: boolean, text: () => string): void {
    if (this.bars || this.flags.quiet || this.flags.json) return;
    const now = Date.now();
    const seen = this.lastLog.get(key);
    if (seen === undefined) {
      this.lastLog.set(key, { start: now, last: now });
      return;
    }
    if (now - seen.last >= LOG_EVERY_S * 1000 || (last && now - seen.start >= LOG_EVERY_S * 1000)) {
      seen.last = now;
      this.err.write(`${text()}\n`);
    }
    if (last) this.lastLog.delete(key);
  }

  /** Hooks for NBI.fit: round lines, epoch and simulation events, warnings, progress bars. */
  async fitHooks(extra: Hooks = {}): Promise<Hooks> {
    let lastSimEvent = 0;
    const hooks: Hooks = {
      ...extra,
      onRound: (record) => {
        this.info(roundLine(record));
        this.event("round", { ...record });
        extra.onRound?.(record);
      },
      onEpoch: (round, record) => {
        this.event("epoch", { round, ...record });
        this.throttled(`epoch ${round}`, false, () => epochLine(round, record));
        extra.onEpoch?.(round, record);
      },
      onSimulate: (round, done, total) => {
        const now = Date.now();
        if (done === total || now - lastSimEvent >= 1000) {
          lastSimEvent = now;
          this.event("simulate", { round, done, total });
        }
        this.throttled(
          `simulate ${round}`,
          done === total,
          () => `round ${round}: simulated ${done}/${total}`,
        );
        extra.onSimulate?.(round, done, total);
      },
      onWarning: (message) => {
        this.warn(message);
        extra.onWarning?.(message);
      },
    };
    return this.bars ? progressHooks(hooks) : hooks;
  }

  /** The fit resumed stored rounds: a line in text modes, a `resume` event with --json. */
  resumed(info: { rounds: number; path: string; message: string }): void {
    this.info(info.message);
    this.event("resume", { rounds: info.rounds, path: info.path, message: info.message });
  }

  /** A progress bar (or throttled lines) for one counted step, such as a shard's simulations. */
  progress(label: string, total: number): { update(done: number): void; stop(): void } {
    let bar: cliProgress.SingleBar | undefined;
    if (this.bars && total > 0) {
      bar = new cliProgress.SingleBar(
        {
          format: `${label} |{bar}| {value}/{total} {eta_formatted}`,
          hideCursor: true,
          stream: this.err,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
    }
    let lastEvent = 0;
    return {
      update: (done) => {
        bar?.update(done);
        this.throttled(label, done === total, () => `${label}: ${done}/${total}`);
        const now = Date.now();
        if (done === total || now - lastEvent >= 1000) {
          lastEvent = now;
          this.event("progress", { step: label, done, total });
        }
      },
      stop: () => bar?.stop(),
    };
  }
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return null;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number>);
  }
  return value;
}

const fixed = (v: number | undefined, digits: number) =>
  v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);

/** "round 1: 320 simulations, n_eff 95.2, efficiency 29.8%, Pareto k̂ 0.41, best epoch ..., 4.2 s" */
export function roundLine(r: RoundRecord): string {
  const dropped = r.dropped.nonFinite + r.dropped.threw + r.dropped.crashed;
  const eff = r.efficiency === undefined ? "" : `, efficiency ${fixed(100 * r.efficiency, 1)}%`;
  const ess =
    r.nEff === undefined
      ? ""
      : `, n_eff ${fixed(r.nEff, 1)}${eff}, Pareto k̂ ${fixed(r.paretoK, 2)}`;
  return (
    `round ${r.round}: ${r.nSimulated} simulations${dropped > 0 ? ` (${dropped} dropped)` : ""}${ess}, ` +
    `best epoch ${r.bestEpoch} (val loss ${fixed(r.bestValLoss, 3)})${lossNote(r)}, ` +
    `${fixed(r.seconds.simulate + r.seconds.train, 1)} s`
  );
}

function epochLine(round: number, e: EpochRecord): string {
  const candidate = e.candidate ? ` (${e.candidate})` : "";
  return `round ${round} epoch ${e.epoch}${candidate}: train ${fixed(e.trainLoss, 3)} val ${fixed(e.valLoss, 3)}`;
}

/** ", loss nll (scores: apt −3.86, nll −0.35 ± 0.14 at ESS 29)" for a scored select round. */
function lossNote(r: RoundRecord): string {
  const s = r.lossScores;
  if (!s) return r.round > 0 && r.loss ? `, loss ${r.loss}` : "";
  if (s.nll === undefined)
    return `, loss ${r.loss} (too few weighted draws to score: ESS ${fixed(s.ess, 1)})`;
  return `, loss ${r.loss} (scores: apt ${fixed(s.apt, 2)}, nll ${fixed(s.nll, 2)} ± ${fixed(s.se, 2)} at ESS ${fixed(s.ess, 0)})`;
}

/** Weighted mean, standard deviation and 5/50/95% quantiles of one parameter. */
export interface ParameterSummary {
  readonly label: string;
  readonly mean: number;
  readonly std: number;
  readonly q05: number;
  readonly q50: number;
  readonly q95: number;
  readonly truth?: number;
}

/** Per-parameter summaries of weighted draws (samples: n × d row-major). */
export function summarize(
  samples: Float64Array,
  weights: Float64Array,
  labels: readonly string[],
  truths?: readonly number[],
): ParameterSummary[] {
  const d = labels.length;
  const n = weights.length;
  let total = 0;
  for (const w of weights) total += w;
  return labels.map((label, j) => {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += weights[i]! * samples[i * d + j]!;
    mean /= total;
    let v = 0;
    for (let i = 0; i < n; i++) v += weights[i]! * (samples[i * d + j]! - mean) ** 2;
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => samples[a * d + j]! - samples[b * d + j]!,
    );
    const quantile = (q: number) => {
      let acc = 0;
      for (const i of order) {
        acc += weights[i]! / total;
        if (acc >= q) return samples[i * d + j]!;
      }
      return samples[order[order.length - 1]! * d + j]!;
    };
    return {
      label,
      mean,
      std: Math.sqrt(v / total),
      q05: quantile(0.05),
      q50: quantile(0.5),
      q95: quantile(0.95),
      ...(truths?.[j] !== undefined ? { truth: truths[j] } : {}),
    };
  });
}

/** The summaries as an aligned text table. */
export function summaryTable(rows: readonly ParameterSummary[]): string {
  const withTruth = rows.some((r) => r.truth !== undefined);
  const header = ["parameter", "mean", "std", "5%", "50%", "95%", ...(withTruth ? ["truth"] : [])];
  const body = rows.map((r) => {
    // Values to the std's second significant digit (6562.304 ± 0.339, not 6562 ± 0.3388).
    const decimals =
      Number.isFinite(r.std) && r.std > 0
        ? Math.min(8, Math.max(0, 1 - Math.floor(Math.log10(r.std))))
        : 4;
    const num = (v: number) => (Number.isFinite(v) ? v.toFixed(decimals) : "–");
    return [
      r.label,
      num(r.mean),
      Number.isFinite(r.std) ? Number(r.std.toPrecision(2)).toString() : "–",
      num(r.q05),
      num(r.q50),
      num(r.q95),
      ...(withTruth ? [r.truth === undefined ? "" : num(r.truth)] : []),
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  return [header, ...body]
    .map(
      (row) =>
        `  ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")}`,
    )
    .join("\n");
}
