/**
 * Scores posterior draws made elsewhere (a peer's, saved as .npy, rows of θ) against this
 * project's reference posterior with the measures `bench:sbibm` gives its own raw surrogate: C2ST
 * (bench/sbibm/c2st.ts, 10,000 rows of each set unless fewer), the largest mean error in reference
 * sds and sd error, and the share of draws spilled beyond the reference's bulk. So a peer run here
 * (bench/sbibm/peers/) is measured by the same code as ours.
 *
 * Usage: npx tsx bench/sbibm/score-draws.ts --task gaussian_linear_uniform --obs 1,2
 *   --draws 'DIR/glu-obs{obs}.npy' [--c2st-n 10000] [--c2st-epochs 300]
 */
import { readFileSync } from "node:fs";
import { decodeNpy } from "../../src/io/npy.js";
import { setThreads } from "../../src/ops/cpu/threads.js";
import { flagValue } from "./args.js";
import { c2st } from "./c2st.js";
import { loadReference, type Reference } from "./reference.js";
import { errors, moments, SPILL_SDS, spillFraction } from "./run.js";

/** What `scoreDraws` measures. */
export interface DrawScore {
  /** C2ST against the reference (0.5: indistinguishable). */
  readonly c2st: number;
  /** Rows of each set the C2ST used. */
  readonly rows: number;
  /** Largest |mean − reference mean| / reference sd over parameters. */
  readonly meanErr: number;
  /** Largest |sd / reference sd − 1| over parameters. */
  readonly sdErr: number;
  /** Share of draws beyond SPILL_SDS reference sds of the reference mean in some parameter. */
  readonly spill: number;
}

/** Reads an .npy of draws (rows of `dim` numbers) as float64, or fails naming the file. */
export function readDraws(file: string, dim: number): Float64Array {
  const arr = decodeNpy(new Uint8Array(readFileSync(file)), file);
  if (arr.shape.length !== 2 || arr.shape[1] !== dim || arr.shape[0]! < 1) {
    throw new Error(
      `score-draws: ${file} should hold rows of ${dim} numbers (shape [n, ${dim}]); its shape is [${arr.shape.join(", ")}]`,
    );
  }
  return Float64Array.from(arr.data as ArrayLike<number>);
}

/** Scores draws (n × ref.dim) against the reference. */
export async function scoreDraws(
  ref: Reference,
  draws: Float64Array,
  options: { n?: number; maxEpochs?: number } = {},
): Promise<DrawScore> {
  const rows = Math.min(options.n ?? 10000, draws.length / ref.dim, ref.samples.length / ref.dim);
  const { accuracy } = await c2st(ref.samples, draws, ref.dim, {
    n: rows,
    maxEpochs: options.maxEpochs ?? 300,
    seed: 1,
  });
  const e = errors(ref, moments(draws, null, ref.dim));
  return { c2st: accuracy, rows, ...e, spill: spillFraction(ref, draws) };
}

const arg = (name: string, fallback?: string) => flagValue(process.argv, name, fallback);

async function main(): Promise<void> {
  setThreads(1);
  const task = arg("task");
  const pattern = arg("draws");
  const n = Number(arg("c2st-n", "10000"));
  const maxEpochs = Number(arg("c2st-epochs", "300"));
  const scores: number[] = [];
  for (const obs of arg("obs", "1").split(",").map(Number)) {
    const ref = loadReference(task, obs);
    const file = pattern.replace("{obs}", String(obs));
    const s = await scoreDraws(ref, readDraws(file, ref.dim), { n, maxEpochs });
    scores.push(s.c2st);
    console.log(
      `${task} obs ${obs}: C2ST ${s.c2st.toFixed(3)} (${s.rows} rows each), mean err ${s.meanErr.toFixed(2)} σ, sd err ${s.sdErr.toFixed(2)}, spill beyond ${SPILL_SDS} sds ${(100 * s.spill).toFixed(1)}% (${file})`,
    );
  }
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  console.log(`mean C2ST over ${scores.length} observations: ${mean.toFixed(3)}`);
}

if (process.argv[1]?.endsWith("score-draws.ts")) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
