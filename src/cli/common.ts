/**
 * What every command shares: argument parsing (node:util parseArgs), the usage error type, and
 * the global flags --quiet, --json and --verbose.
 *
 * Why parseArgs and not a library such as commander: the CLI has five commands with a handful of
 * flags each and no nesting beyond `demo <name>`; parseArgs (stable in Node ≥ 20) gives typed,
 * strict parsing of exactly that, and the help texts are written by hand anyway, so a dependency
 * would add weight without removing code.
 */
import { parseArgs } from "node:util";
import { NbiError } from "../errors.js";

/** A mistake in how the command was called: exit code 2, with a pointer to --help. */
export class UsageError extends NbiError {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export interface GlobalFlags {
  /** No progress bars and no per-round lines: only the final summary (and errors). */
  readonly quiet: boolean;
  /** JSON lines on stdout (one event per line) instead of text; progress bars off. */
  readonly json: boolean;
  /** Stack traces on errors. */
  readonly verbose: boolean;
}

type OptionSpec = { type: "string" | "boolean"; short?: string; multiple?: false };

export const GLOBAL_OPTIONS = {
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const satisfies Record<string, OptionSpec>;

export const GLOBAL_HELP = `Output:
  -q, --quiet     no progress bars or per-round lines, only the final summary
      --json      JSON lines on stdout (one event per line: round, epoch, summary, ...)
  -v, --verbose   print stack traces with errors
  -h, --help      this help`;

export interface Parsed<K extends string> {
  readonly values: Partial<Record<K, string | boolean>>;
  readonly positionals: string[];
  readonly flags: GlobalFlags;
  readonly help: boolean;
}

/** Strict parsing of one command's arguments; unknown flags are usage errors naming the command. */
export function parse<K extends string>(
  command: string,
  argv: readonly string[],
  options: Record<K, OptionSpec>,
): Parsed<K | keyof typeof GLOBAL_OPTIONS> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, ...GLOBAL_OPTIONS },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs' messages are good but long ("Unknown option '--x'. To specify a positional ...").
    const message = (error as Error).message.split(". To specify")[0]!.replace(/\.$/, "");
    throw new UsageError(message, command);
  }
  const values = parsed.values as Partial<Record<string, string | boolean>>;
  return {
    values,
    positionals: parsed.positionals,
    flags: {
      quiet: values.quiet === true,
      json: values.json === true,
      verbose: values.verbose === true,
    },
    help: values.help === true,
  };
}

/** A string option as an integer (with bounds), or the default; usage errors name the flag. */
export function intOption(
  command: string,
  name: string,
  value: string | boolean | undefined,
  min: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== "string" || !Number.isInteger(n) || n < min) {
    throw new UsageError(
      `--${name} expected an integer ≥ ${min}, got ${JSON.stringify(value)}`,
      command,
    );
  }
  return n;
}

/** One number, or a comma-separated list of them (e.g. --xerr 0.5 or --xerr 0.5,0.4,0.6). */
export function numbersOption(
  command: string,
  name: string,
  value: string | boolean | undefined,
): number | number[] | undefined {
  if (value === undefined) return undefined;
  const parts = typeof value === "string" ? value.split(",").map((s) => s.trim()) : [];
  const nums = parts.map(Number);
  if (parts.length === 0 || parts.some((p) => p === "") || nums.some((v) => !Number.isFinite(v))) {
    throw new UsageError(
      `--${name} expected a number or comma-separated numbers, got ${JSON.stringify(value)}`,
      command,
    );
  }
  return nums.length === 1 ? nums[0]! : nums;
}

export function stringOption(value: string | boolean | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** Exactly `count` positionals, or a usage error saying what is missing or extra. */
export function positionals(
  command: string,
  given: readonly string[],
  names: readonly string[],
): string[] {
  if (given.length < names.length) {
    throw new UsageError(`missing ${names.slice(given.length).join(" and ")}`, command);
  }
  if (given.length > names.length) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(given[names.length])} (expected ${names.join(" ") || "no arguments"})`,
      command,
    );
  }
  return [...given];
}

/** A run stopped by SIGINT or SIGTERM: exit code 130, with how to resume. */
export class Interrupted extends NbiError {
  constructor(readonly signal: string) {
    super(
      `interrupted by ${signal}; the simulations finished so far (and a round's training, at its last finished epoch) are stored: run the same command again to resume`,
    );
    this.name = "Interrupted";
  }
}

let interrupt: AbortController | undefined;

/**
 * An AbortSignal fired by the first SIGINT or SIGTERM (Ctrl-C, or Slurm cancelling a job): the
 * engine and the simulator pool stop and flush the simulations already finished. A second
 * signal exits at once.
 */
export function interruptSignal(): AbortSignal {
  if (!interrupt) {
    const controller = new AbortController();
    const stop = (name: NodeJS.Signals) => {
      if (controller.signal.aborted) process.exit(130);
      controller.abort(new Interrupted(name));
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    interrupt = controller;
  }
  return interrupt.signal;
}

/** Where the CLI's own output goes: stdout, even when --json routes everything else away. */
export interface OutputStream {
  write(text: string): unknown;
}

const realStdoutWrite = process.stdout.write.bind(process.stdout);
let routed = false;

/** The CLI's own stdout (JSON lines, results), never a simulator's prints. */
export const cliStdout: OutputStream = { write: (text) => realStdoutWrite(text) };

/**
 * With --json, stdout must hold nothing but JSON lines: whatever else writes to process.stdout
 * (a simulator's console.log, in-process or in a worker thread, whose output Node pipes into
 * process.stdout) goes to stderr instead. The CLI writes through `cliStdout`.
 */
export function routeForeignStdout(): void {
  if (routed) return;
  routed = true;
  const toStderr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    (toStderr as (c: unknown, ...r: unknown[]) => boolean)(
      chunk,
      ...rest,
    )) as typeof process.stdout.write;
}
