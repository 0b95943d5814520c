/**
 * A fused group too wide for one WGSL kernel, as a few kernels. A kernel binds each input and
 * output as one storage buffer, and devices cap those per shader stage (lavapipe: 16; the
 * WebGPU default: 8). The GRU cell's forward chain under `grad` reads 12 inputs and writes 9
 * residuals: past the cap it ran equation by equation (18 kernels a time step where 2 do), and
 * such unfused equations were over half of a ResNet-GRU training step's kernels on WebGPU.
 *
 * The steps are cut, in order, into consecutive chunks each within the cap: a chunk reads the
 * group's inputs and the earlier chunks' values it uses, and writes the group's outputs it
 * computes and the values later chunks read. Every chunk computes its steps exactly as the whole
 * kernel would have, so results are the unfused kernels' (up to the fused multiply-add
 * contraction the compiler may do within a kernel, as for any fused kernel).
 */
import type { FusedOperand, FusedProgram, FusedStep } from "../../trace/backend.js";

/** One chunk: its program, where each of its inputs comes from, and the steps it writes out. */
export interface FusedChunk {
  readonly program: FusedProgram;
  /** The chunk's inputs: the group's inputs, or values of earlier chunks' steps. */
  readonly sources: readonly FusedOperand[];
  /** The group's steps the chunk writes out, in the order of its program's outputs. */
  readonly writes: readonly number[];
}

/**
 * Cuts `p` into consecutive chunks whose inputs plus outputs are at most `maxBuffers` each, as
 * few as greedy filling gives; null when a single step does not fit.
 */
export function fusedChunks(p: FusedProgram, maxBuffers: number): FusedChunk[] | null {
  const n = p.steps.length;
  // The last step reading each step's value (−1: none), and which steps the group writes out.
  const lastReader = new Array<number>(n).fill(-1);
  p.steps.forEach((s, j) => {
    for (const o of s.args) if ("step" in o) lastReader[o.step] = j;
  });
  const isOutput = new Set(p.outputs);
  const chunks: FusedChunk[] = [];
  let start = 0;
  while (start < n) {
    let best: FusedChunk | null = null;
    let bestEnd = start;
    for (let end = start + 1; end <= n; end++) {
      const c = chunk(p, start, end, lastReader, isOutput);
      if (c.sources.length + c.writes.length > maxBuffers) break;
      best = c;
      bestEnd = end;
    }
    if (!best) return null;
    // Steps nobody reads later and the group does not return need no kernel.
    if (best.writes.length > 0) chunks.push(best);
    start = bestEnd;
  }
  return chunks;
}

function chunk(
  p: FusedProgram,
  start: number,
  end: number,
  lastReader: readonly number[],
  isOutput: ReadonlySet<number>,
): FusedChunk {
  const sources: FusedOperand[] = [];
  const sourceOf = new Map<string, number>();
  const inputOf = (o: FusedOperand): number => {
    const key = "input" in o ? `i${o.input}` : `s${o.step}`;
    let k = sourceOf.get(key);
    if (k === undefined) {
      k = sources.length;
      sources.push(o);
      sourceOf.set(key, k);
    }
    return k;
  };
  const steps: FusedStep[] = [];
  for (let j = start; j < end; j++) {
    const s = p.steps[j]!;
    const args = s.args.map(
      (o): FusedOperand =>
        "step" in o && o.step >= start ? { step: o.step - start } : { input: inputOf(o) },
    );
    steps.push({ ...s, args });
  }
  const writes: number[] = [];
  for (let j = start; j < end; j++) if (isOutput.has(j) || lastReader[j]! >= end) writes.push(j);
  const inputs = sources.map((o) =>
    "input" in o ? p.inputs[o.input]! : { shape: p.shape, dtype: p.steps[o.step]!.dtype },
  );
  return {
    program: { shape: p.shape, inputs, steps, outputs: writes.map((j) => j - start) },
    sources,
    writes,
  };
}
