/**
 * Turns what simulators return into chunks: checks output lengths (a wrong length is a bug in the
 * simulator and stops the run), marks non-finite outputs, counts failures, and hands chunks to the
 * caller in order as they fill up, so a store can persist them while the run goes on.
 */
import { describe, NbiError } from "../../errors.js";

/** Per-simulation status codes, as stored in a chunk's status array. */
export const SimulationStatus = {
  /** The output is finite and usable for training. */
  ok: 0,
  /** The output holds NaN or ±Infinity (after rounding to float32); excluded from training. */
  nonFinite: 1,
  /** The simulator threw for this θ. */
  threw: 2,
  /** The worker running this θ died twice (process.exit, uncaught error, out of memory). */
  crashed: 3,
  /** The simulation ran past `simTimeoutMs` and was stopped (its worker terminated). */
  timeout: 4,
} as const;
export type SimulationStatus = (typeof SimulationStatus)[keyof typeof SimulationStatus];

/**
 * A batch of finished simulations: `index[j]` is the θ row, `x` holds `index.length` rows of
 * `size` float32 values (NaN rows where the simulator threw or crashed), `status[j]` its status.
 */
export interface SimulationChunk {
  readonly index: Int32Array;
  readonly x: Float32Array;
  readonly status: Uint8Array;
}

/** Counts over one `simulate` call. `size` is the output length (0 if nothing was returned). */
export interface SimulationReport {
  readonly ok: number;
  readonly nonFinite: number;
  readonly threw: number;
  readonly crashed: number;
  /** Simulations stopped at `simTimeoutMs` (present only when some were). */
  readonly timedOut?: number;
  /** The message of the first simulator error, if any threw. */
  readonly firstError?: string;
  /** Why the first crashed simulation's worker died, if any crashed. */
  readonly firstCrash?: string;
  readonly size: number;
}

/** What one simulation came to. */
export type Outcome =
  | { readonly kind: "returned"; readonly value: unknown }
  | { readonly kind: "threw"; readonly message: string }
  | { readonly kind: "crashed"; readonly message: string }
  | { readonly kind: "timeout"; readonly message: string };

/** A readable message from anything thrown. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === "string" ? error : describe(error);
}

function formatTheta(row: Float64Array): string {
  const shown = Array.from(row.subarray(0, 8), (v) => String(v)).join(", ");
  return `[${shown}${row.length > 8 ? ", ..." : ""}]`;
}

interface Pending {
  readonly index: number;
  readonly status: SimulationStatus;
  readonly x?: Float32Array;
}

export interface CollectorSettings {
  readonly theta: Float64Array;
  readonly paramDim: number;
  readonly expectedSize: number | undefined;
  readonly total: number;
  readonly chunkSize: number;
  readonly flushIntervalMs: number;
  readonly onChunk: (chunk: SimulationChunk) => Promise<void> | void;
  readonly onProgress?: (done: number, total: number) => void;
}

export class ResultCollector {
  private size: number | undefined;
  private readonly counts = { ok: 0, nonFinite: 0, threw: 0, crashed: 0, timedOut: 0 };
  private firstError: string | undefined;
  private firstCrash: string | undefined;
  private buffer: Pending[] = [];
  private done = 0;
  private lastFlush = Date.now();
  private flushing: Promise<void> = Promise.resolve();
  private queuedChunks = 0;
  /** Flushes results that wait in the buffer when no further result arrives to cut a chunk. */
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The first error from `onChunk`; the runners stop when it is set. */
  chunkError: unknown;

  constructor(private readonly settings: CollectorSettings) {
    this.size = settings.expectedSize;
  }

  get finished(): number {
    return this.done;
  }

  /** Records one outcome; throws an NbiError if the output is not an array of the right length. */
  add(index: number, outcome: Outcome): void {
    this.buffer.push(this.check(index, outcome));
    this.done++;
    this.settings.onProgress?.(this.done, this.settings.total);
    const now = Date.now();
    if (
      this.buffer.length >= this.settings.chunkSize ||
      now - this.lastFlush >= this.settings.flushIntervalMs
    ) {
      this.flush();
    }
    // A slow or hung next simulation must not hold finished results in memory: written within
    // flushIntervalMs whatever happens next.
    if (this.buffer.length > 0 && this.timer === undefined) {
      const wait = Math.max(0, this.settings.flushIntervalMs - (now - this.lastFlush));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, wait);
      this.timer.unref?.();
    }
  }

  /** Chunks handed to `onChunk` whose call has not finished yet. */
  get backlog(): number {
    return this.queuedChunks;
  }

  /** Waits until every chunk cut so far has been handled by `onChunk`. */
  async drain(): Promise<void> {
    await this.flushing;
  }

  /** Flushes everything buffered and waits for every `onChunk` call; rethrows its first error. */
  async finish(): Promise<SimulationReport> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush(true);
    await this.flushing;
    if (this.chunkError !== undefined) throw this.chunkError;
    const { timedOut, ...counts } = this.counts;
    return {
      ...counts,
      ...(timedOut > 0 ? { timedOut } : {}),
      ...(this.firstError !== undefined ? { firstError: this.firstError } : {}),
      ...(this.firstCrash !== undefined ? { firstCrash: this.firstCrash } : {}),
      size: this.size ?? 0,
    };
  }

  private check(index: number, outcome: Outcome): Pending {
    if (outcome.kind === "threw") {
      this.counts.threw++;
      this.firstError ??= outcome.message;
      return { index, status: SimulationStatus.threw };
    }
    if (outcome.kind === "crashed") {
      this.counts.crashed++;
      this.firstCrash ??= outcome.message;
      return { index, status: SimulationStatus.crashed };
    }
    if (outcome.kind === "timeout") {
      this.counts.timedOut++;
      this.firstError ??= outcome.message;
      return { index, status: SimulationStatus.timeout };
    }
    const value = outcome.value as { length?: unknown } | null;
    const { theta, paramDim } = this.settings;
    const where = () =>
      `simulate: the output for index ${index} (θ = ${formatTheta(
        theta.subarray(index * paramDim, (index + 1) * paramDim),
      )})`;
    if (value === null || typeof value !== "object" || typeof value.length !== "number") {
      throw new NbiError(`${where()} expected an array of numbers, got ${describe(value)}`);
    }
    if (value instanceof BigInt64Array || value instanceof BigUint64Array) {
      throw new NbiError(
        `${where()} expected an array of numbers, got a ${value.constructor.name} (64-bit integers); ` +
          "return a Float64Array or Float32Array (e.g. Float64Array.from(out, Number))",
      );
    }
    let x: Float32Array;
    try {
      x = new Float32Array(value as ArrayLike<number>);
    } catch (error) {
      // Elements that are not numbers (BigInts, symbols) cannot be converted.
      throw new NbiError(
        `${where()} expected an array of numbers, got ${describe(value)} with an element that is not a number (${messageOf(error)})`,
      );
    }
    if (this.size === undefined) this.size = x.length;
    else if (x.length !== this.size) {
      const which =
        this.settings.expectedSize === undefined ? " (the length of the first output)" : "";
      throw new NbiError(`${where()} expected length ${this.size}${which}, got length ${x.length}`);
    }
    let finite = true;
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) {
        finite = false;
        break;
      }
    }
    if (finite) this.counts.ok++;
    else this.counts.nonFinite++;
    return { index, status: finite ? SimulationStatus.ok : SimulationStatus.nonFinite, x };
  }

  /** Queues the buffered results as one chunk (after the chunks before it). */
  private flush(final = false): void {
    if (this.buffer.length === 0) return;
    // Rows of failed simulations need the output length; wait for a returned output to know it.
    if (this.size === undefined && !final) return;
    const size = this.size ?? 0;
    const rows = this.buffer;
    this.buffer = [];
    this.lastFlush = Date.now();
    const index = new Int32Array(rows.length);
    const status = new Uint8Array(rows.length);
    const x = new Float32Array(rows.length * size).fill(Number.NaN);
    rows.forEach((row, j) => {
      index[j] = row.index;
      status[j] = row.status;
      if (row.x) x.set(row.x, j * size);
    });
    this.queuedChunks++;
    this.flushing = this.flushing.then(async () => {
      try {
        if (this.chunkError === undefined) await this.settings.onChunk({ index, x, status });
      } catch (error) {
        this.chunkError = error;
      } finally {
        this.queuedChunks--;
      }
    });
  }
}
