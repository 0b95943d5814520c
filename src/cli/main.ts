/**
 * The `nbi` command line (bin/nbi.mjs runs this file through tsx). One file per command; this one
 * dispatches and turns every error into one line on stderr with a non-zero exit code:
 * 2 for a usage mistake, 130 when interrupted, 1 otherwise. --verbose adds the stack trace.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { NbiError } from "../errors.js";
import { calibrateCommand } from "./calibrate.js";
import { cliStdout, Interrupted, routeForeignStdout, UsageError } from "./common.js";
import { demoCommand } from "./demo.js";
import { fitCommand } from "./fit.js";
import { predictCommand } from "./predict.js";
import { simulateCommand } from "./simulate.js";

export const HELP = `nbi — neural posterior estimation for astronomers

Usage: nbi <command> [options]

Commands:
  fit CONFIG                 fit a config's posterior into its run folder and save the model
  predict RUN_DIR --obs FILE sample the posterior of new observations with a saved model
  calibrate RUN_DIR          check an amortized fit's calibration: SBC ranks, HPD coverage,
                             TARP and a verdict in words (--plots DIR draws them)
  simulate CONFIG --round R --prepare | --shard i/N
                             run one round's simulations in shards (Slurm arrays, clusters)
  demo sine | spectrum       the sine light-curve or emission-line spectrum demo

Options for every command: --quiet, --json (JSON lines), --verbose, --help.
'nbi <command> --help' describes a command; 'nbi --version' prints the version.`;

const COMMANDS: Record<string, (argv: readonly string[]) => Promise<number>> = {
  fit: fitCommand,
  predict: predictCommand,
  calibrate: calibrateCommand,
  simulate: simulateCommand,
  demo: demoCommand,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return (pkg as { version: string }).version;
}

/** Runs the command line; resolves to the exit code (never throws). */
export async function main(argv: readonly string[]): Promise<number> {
  // `nbi predict ... | head`: a closed pipe ends the output, not with a stack trace.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    const topic = command === "help" ? rest[0] : undefined;
    if (topic && Object.hasOwn(COMMANDS, topic)) return COMMANDS[topic]!(["--help"]);
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (command === "--version" || command === "-V") {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const json = rest.includes("--json");
  const verbose = rest.includes("--verbose") || rest.includes("-v");
  // --json: stdout is for JSON lines only; a simulator's prints go to stderr.
  if (json) routeForeignStdout();
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) {
    return fail(
      new UsageError(
        `unknown command ${JSON.stringify(command)} (expected ${Object.keys(COMMANDS).join(", ")})`,
        "",
      ),
      "",
      { json, verbose },
    );
  }
  try {
    return await run(rest);
  } catch (error) {
    return fail(error, command, { json, verbose });
  }
}

/** Prints one line for the error (and its stack with --verbose); returns the exit code. */
function fail(error: unknown, command: string, mode: { json: boolean; verbose: boolean }): number {
  const where = command ? `nbi ${command}` : "nbi";
  const raw = error instanceof Error ? error.message || error.name : String(error);
  let message = raw.replace(/\s*\n\s*/g, " ").trim();
  let code = 1;
  if (error instanceof UsageError) {
    message += ` (see '${where} --help')`;
    code = 2;
  } else if (error instanceof Interrupted) code = 130;
  else if (!(error instanceof NbiError) && !mode.verbose) {
    // An unexpected failure: still one line, with the way to the details.
    message += " (rerun with --verbose for the stack trace)";
  }
  process.stderr.write(`${where}: ${message}\n`);
  if (mode.verbose && error instanceof Error && error.stack)
    process.stderr.write(`${error.stack}\n`);
  if (mode.json)
    cliStdout.write(`${JSON.stringify({ event: "error", message, exitCode: code })}\n`);
  return code;
}

// Run when executed (node --import tsx src/cli/main.ts ...); bin/nbi.mjs imports main instead.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2000).unref();
}
