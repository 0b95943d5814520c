/**
 * examples/sine.ipynb end to end: Debian's Jupyter (`/usr/bin/jupyter nbconvert --execute`) runs
 * it on Deno's Jupyter kernel (the `deno` binary from the npm devDependency), with a kernelspec
 * written here into a temporary JUPYTER_PATH. The executed notebook must hold no error output,
 * the per-round ESS lines, the fit and posterior tables, and the corner plot as SVG.
 *
 * nbconvert_deno.py (passed with --config) keeps nbclient listening briefly after each cell's
 * idle message: Deno's kernel can publish a cell's last output just after it.
 *
 * The notebook imports "nbi", which deno.json's `imports` map to the TypeScript sources here.
 *
 * Skips with one line when /usr/bin/jupyter (CI installs it: .ci/run) or the deno binary is
 * missing. The notebook's run folder goes to this test's temporary folder (TMPDIR).
 */
import { execFile } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../helpers/temp-dirs.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const JUPYTER = "/usr/bin/jupyter";
const NOTEBOOK = join(ROOT, "examples", "sine.ipynb");
const CONFIG = join(ROOT, "test", "notebook", "nbconvert_deno.py");

const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The deno binary: placed by the package's postinstall, or straight from its platform package. */
function denoBinary(): string | undefined {
  const modules = join(ROOT, "node_modules");
  const platforms = existsSync(join(modules, "@deno"))
    ? readdirSync(join(modules, "@deno")).map((p) => join(modules, "@deno", p, "deno"))
    : [];
  return [join(modules, "deno", "deno"), ...platforms].find(executable);
}

const deno = denoBinary();
const missing = !existsSync(JUPYTER)
  ? `no ${JUPYTER} (install Debian's Jupyter: \`apt-get install -y --no-install-recommends ` +
    "jupyter-nbconvert python3-nbclient jupyter-client`, as .ci/run does)"
  : !deno
    ? "no deno binary under node_modules (the `deno` devDependency: npm ci)"
    : undefined;
if (missing) console.log(`Notebook test skipped: ${missing}`);

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}
interface Cell {
  cell_type: string;
  execution_count?: number | null;
  source: string | string[];
  outputs?: Output[];
}

const join1 = (s: string | string[] | undefined): string =>
  Array.isArray(s) ? s.join("") : (s ?? "");

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(JUPYTER, args, { cwd: ROOT, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(missing !== undefined)("examples/sine.ipynb on Deno's Jupyter kernel", () => {
  const tmp = tempDirs("nbi-notebook-")();

  it("executes end to end with the ESS lines, the tables and the corner plot", async () => {
    // It imports the package as a project that installed it would (deno.json's `imports` map
    // "nbi" to src/ in a checkout), never a path into the repository.
    const source = JSON.parse(readFileSync(NOTEBOOK, "utf8")) as { cells: Cell[] };
    const specifiers = source.cells
      .filter((c) => c.cell_type === "code")
      .flatMap((c) => [...join1(c.source).matchAll(/\bfrom\s+["']([^"']+)["']/g)].map((m) => m[1]));
    expect(specifiers).toEqual(["nbi"]);
    const kernelDir = join(tmp, "jupyter", "kernels", "deno");
    mkdirSync(kernelDir, { recursive: true });
    writeFileSync(
      join(kernelDir, "kernel.json"),
      JSON.stringify({
        argv: [deno, "jupyter", "--kernel", "--conn", "{connection_file}"],
        display_name: "Deno",
        language: "typescript",
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      }),
    );
    for (const dir of ["runtime", "config", "data", "run"]) mkdirSync(join(tmp, dir));
    const env = {
      ...process.env,
      JUPYTER_PATH: join(tmp, "jupyter"),
      JUPYTER_RUNTIME_DIR: join(tmp, "runtime"),
      JUPYTER_CONFIG_DIR: join(tmp, "config"),
      JUPYTER_DATA_DIR: join(tmp, "data"),
      TMPDIR: join(tmp, "run"), // the notebook's run folder (Deno.makeTempDirSync)
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
    };
    const out = join(tmp, "sine.executed.ipynb");
    const t0 = performance.now();
    const result = await run(
      [
        "nbconvert",
        "--config",
        CONFIG,
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=600",
        "--ExecutePreprocessor.kernel_name=deno",
        "--output",
        out,
        NOTEBOOK,
      ],
      env,
      280_000,
    );
    const seconds = (performance.now() - t0) / 1000;
    expect(result.code, `nbconvert failed:\n${result.stderr.slice(-4000)}`).toBe(0);
    console.log(`Notebook executed in ${seconds.toFixed(1)} s`);

    const nb = JSON.parse(readFileSync(out, "utf8")) as { cells: Cell[] };
    const code = nb.cells.filter((c) => c.cell_type === "code");
    const outputs = code.flatMap((c) => c.outputs ?? []);
    const errors = outputs.filter((o) => o.output_type === "error");
    expect(errors.map((e) => `${e.ename}: ${e.evalue}`)).toEqual([]);
    expect(code.every((c) => typeof c.execution_count === "number")).toBe(true);

    // The per-round ESS lines (onRound's console.log).
    const stdout = outputs
      .filter((o) => o.output_type === "stream" && o.name === "stdout")
      .map((o) => join1(o.text))
      .join("");
    for (const r of [0, 1, 2]) {
      expect(stdout).toMatch(
        new RegExp(`round ${r}: ESS \\(n_eff\\) [\\d.]+, efficiency [\\d.]+%, Pareto k̂ `),
      );
    }

    const data = (mime: string) =>
      outputs.flatMap((o) => (o.data?.[mime] !== undefined ? [join1(o.data[mime])] : []));
    const plain = data("text/plain");
    const html = data("text/html");
    const noDisplay = "(NBI.fit/predict results carry no display: see src/inference/display.ts)";
    // The prior prints as its toString.
    expect(plain).toContain(
      "independent{phi0: uniform(0, 6.283), A: uniform(1, 5), omega: uniform(6.283, 37.7)}",
    );
    // The fit's rounds table, and the weighted posterior table from predict.
    const fit = plain.find((t) => t.startsWith("NBI fit: 3 rounds"));
    const posterior = plain.find((t) => t.startsWith("NBI posterior: n_eff"));
    expect(fit, noDisplay).toBeTypeOf("string");
    expect(posterior, noDisplay).toBeTypeOf("string");
    expect(fit).toMatch(/round\s+simulations\s+n_eff\s+efficiency/);
    expect(posterior).toMatch(/parameter\s+mean ± std\s+2\.5%\s+16%\s+50%\s+84%\s+97\.5%/);
    for (const label of ["phi0", "A", "omega"]) {
      expect(posterior).toMatch(new RegExp(`\\n  ${label}\\s+-?[\\d.]+ ± [\\d.]+`));
    }
    expect(html.some((h) => h.startsWith("<table>") && h.includes("mean ± std"))).toBe(true);
    // The corner plot, inline.
    const svg = data("image/svg+xml");
    expect(svg).toHaveLength(1);
    expect(svg[0]).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg[0]).toContain("omega");
  }, 300_000);
});
