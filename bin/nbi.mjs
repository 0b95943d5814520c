#!/usr/bin/env node
// The `nbi` command. The package runs from its TypeScript sources (there is no build step in
// development, tests or CI), so this launcher registers tsx's ESM loader in this very process
// (tsx/esm/api `register()`, which uses node:module's `register` hook, Node ≥ 20.6) and then
// imports src/cli/main.ts. tsx is resolved from this file's location, i.e. the package's own
// node_modules, whatever the working directory. Doing it in-process, rather than re-spawning
// `node --import tsx`, keeps one process: signals from a terminal or from Slurm (SIGINT,
// SIGTERM) reach the CLI directly, and the exit code is the CLI's own.
// Without tsx (an install without devDependencies) a compiled dist/cli/main.js is used if
// `npm run build` made one; otherwise the launcher says what to install.
import { existsSync } from "node:fs";

const here = new URL(".", import.meta.url);
let main;
try {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import(new URL("../src/cli/main.ts", here).href));
} catch (error) {
  const missingTsx =
    error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("'tsx");
  const built = new URL("../dist/cli/main.js", here);
  if (!missingTsx) throw error;
  if (!existsSync(built)) {
    process.stderr.write(
      "nbi: the command line runs from TypeScript sources through tsx, which is not installed: " +
        "run 'npm install' in the package (or 'npm install tsx'), or build it with 'npm run build'\n",
    );
    process.exit(1);
  }
  ({ main } = await import(built.href));
}
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Should a worker pool or a GPU device keep a handle open, still exit promptly with the code
// (an unref'd timer fires only if the process would otherwise stay).
setTimeout(() => process.exit(code), 2000).unref();
