/** Spawns the `nbi` command (bin/nbi.mjs, as npx runs it) and collects its output and exit code. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = fileURLToPath(new URL("../../bin/nbi.mjs", import.meta.url));
export const FIXTURES = fileURLToPath(new URL("../fixtures/cli/", import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function nbi(
  args: readonly string[],
  options: { cwd?: string; env?: Readonly<Record<string, string>> } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", ...options.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The lines of a stream's output, without the empty last one. */
export const lines = (text: string) => text.split("\n").filter((l) => l.length > 0);

/** No stack trace: no "    at f (file:line)" frames and no Node "Error:" dumps. */
export const hasStackTrace = (text: string) => /^\s+at .+[:(]/m.test(text);
