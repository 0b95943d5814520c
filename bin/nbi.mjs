#!/usr/bin/env node
// The `nbi` command. Installed from npm, the package holds the compiled CLI (dist/cli/main.js,
// built by `npm run build`, which `npm pack`/`npm publish` run through `prepack`) and no
// TypeScript sources: this launcher imports dist and needs nothing at run time beyond Node.
// In a checkout (src/ present) it runs the TypeScript sources through tsx instead, so the command
// always reflects the code as it is, never a stale dist/: tsx's ESM loader is registered in this
// very process (tsx/esm/api `register()`, Node ≥ 20.6), resolved from the package's own
// node_modules whatever the working directory. Either way there is one process: signals from a
// terminal or Slurm (SIGINT, SIGTERM) reach the CLI directly, and the exit code is the CLI's own.
import { existsSync } from "node:fs";

const here = new URL(".", import.meta.url);
const source = new URL("../src/cli/main.ts", here);
const built = new URL("../dist/cli/main.js", here);

async function loadMain() {
  if (existsSync(source)) {
    try {
      const { register } = await import("tsx/esm/api");
      register();
      return (await import(source.href)).main;
    } catch (error) {
      const missingTsx =
        error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("'tsx");
      if (!missingTsx) throw error;
      // A checkout installed without devDependencies: fall through to a build, if there is one.
    }
  }
  if (existsSync(built)) return (await import(built.href)).main;
  process.stderr.write(
    "nbi: found neither the compiled command line (dist/cli/main.js) nor tsx to run the " +
      "TypeScript sources: run 'npm run build' in the package, or 'npm install' for tsx\n",
  );
  process.exit(1);
}

const main = await loadMain();
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Should a worker pool or a GPU device keep a handle open, still exit promptly with the code
// (an unref'd timer fires only if the process would otherwise stay).
setTimeout(() => process.exit(code), 2000).unref();
