/**
 * The package as a user gets it. The working tree is copied to a temporary folder (so the
 * checkout's own dist/ is never touched) and packed with `npm pack`, whose `prepack` script
 * builds dist/. The tarball is installed, without optional dependencies (so without the 132 MB
 * `webgpu`), into one fresh consumer folder whose subfolders are three kinds of consumer: an ESM
 * .mjs program, a TypeScript project with module NodeNext, and a CommonJS-typed TypeScript project
 * (`"type": "commonjs"`; NodeNext, where `import` compiles to `require`, and Node16, through
 * `import()`), both type-checked with the repository's tsc with `skipLibCheck` off and no
 * @types/node. Each computes something with `nbi` and `nbi/core` and checks the numbers; the
 * installed `nbi` command runs from dist/ with no tsx. Last, `nbi/core` is bundled from the
 * install with esbuild for the browser platform (no externals: any Node built-in fails the
 * build), run in an empty JavaScript context (no `process`, no `require`, no console) and
 * compared with the same program in Node, and a one-import bundle shows that it tree-shakes.
 *
 * The README's code blocks run in the same consumer (see README_BLOCKS below for the convention).
 *
 * The install uses npm's cache (`--offline`) and falls back to `--prefer-offline`. Skipped with
 * one line when npm itself is missing.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { gzipSync } from "node:zlib";
import { build, transform } from "esbuild";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  license: string;
};

const npmVersion = spawnSync("npm", ["--version"], { encoding: "utf8" });
const npmMissing =
  npmVersion.status === 0
    ? undefined
    : (npmVersion.error?.message ?? npmVersion.stderr?.trim() ?? "no npm");
if (npmMissing) console.log(`Package test skipped: npm is not available (${npmMissing})`);

/** Top-level entries of the checkout that are not sources of the package (never copied). */
const NOT_COPIED = new Set(["node_modules", ".git", "dist", "coverage", "scratch", ".device"]);

const ENV = {
  ...process.env,
  NO_COLOR: "1",
  npm_config_update_notifier: "false",
  npm_config_fund: "false",
  npm_config_audit: "false",
};

function run(command: string, args: readonly string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    cwd,
    env: ENV,
    encoding: "utf8",
    timeout: 180_000,
    maxBuffer: 64 << 20,
  });
}

/** Runs a command and returns its stdout; throws with both streams when it fails. */
function ok(command: string, args: readonly string[], cwd: string): string {
  const r = run(command, args, cwd);
  if (r.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} (in ${cwd}) exited with ${r.status ?? r.signal}` +
        `${r.error ? `: ${r.error.message}` : ""}\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r.stdout;
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** The consumers' sources, by path under the consumer folder. */
const CONSUMER_FILES: Record<string, string> = {
  "package.json": JSON.stringify({ name: "consumer", version: "0.0.0", private: true }),
  // The same program is bundled for the browser below: its numbers in Node are the reference.
  "compute.mjs": `import { grad, jit, np, random } from "nbi/core";
const x = random.normal(random.key(0), [16, 3]);
const loss = (w) => np.mean(np.square(np.tanh(x.matmul(w))));
const g = jit(grad(loss))(np.array([0.5, -1, 2]));
const d = grad((v) => np.sum(v.mul(v)))(np.array([1, 2, 3]));
globalThis.result = { d: d.tolist(), g: g.tolist() };
`,
  "esm/main.mjs": `import { NBI, grad, np, priors } from "nbi";
import * as core from "nbi/core";
import "../compute.mjs";
const g = grad((x) => np.sum(x.mul(x)))(np.array([1, 2, 3]));
const c = core.grad((x) => core.np.sum(core.np.sin(x)))(core.np.array([0, Math.PI]));
let webgpu = "loaded";
try {
  await np.useBackend("webgpu");
} catch (e) {
  webgpu = e.message;
}
console.log(JSON.stringify({
  g: g.tolist(),
  c: c.tolist(),
  sameModules: core.np === np && core.grad === grad,
  engine: typeof NBI,
  logProb: priors.uniform(0, 2).logProb(new Float64Array([1]))[0],
  webgpu,
  compute: globalThis.result,
}));
`,
  "ts-esm/package.json": JSON.stringify({ type: "module" }),
  "ts-esm/tsconfig.json": JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "nodenext",
      moduleResolution: "nodenext",
      strict: true,
      skipLibCheck: false,
      types: [],
      outDir: "out",
    },
    include: ["main.ts"],
  }),
  "ts-esm/main.ts": `import { type Array, grad, NBI, np } from "nbi";
import { np as coreNp, jit, type Jitted } from "nbi/core";

const f = (x: Array): Array => np.sum(x.mul(x));
const g: Array = grad(f)(np.array([1, 2, 3]));
const h: Jitted<[Array], Array> = jit((x: Array) => coreNp.sum(coreNp.exp(x)));
// @ts-expect-error: grad takes a function (fails to compile if the types were any)
grad(42);
console.log(JSON.stringify({ g: g.tolist(), h: h(coreNp.zeros([4])).item(), engine: typeof NBI }));
`,
  "ts-cjs/package.json": JSON.stringify({ type: "commonjs" }),
  "ts-cjs/tsconfig.json": JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "nodenext",
      moduleResolution: "nodenext",
      strict: true,
      skipLibCheck: false,
      types: [],
      outDir: "out",
    },
    include: ["main.ts"],
  }),
  // NodeNext in a CommonJS package compiles a static import to require(), which loads the ESM
  // package on Node ^20.19 || >=22.12 (require of ES modules).
  "ts-cjs/main.ts": `import { type Array, grad, np } from "nbi";
import * as core from "nbi/core";

const f = (x: Array): Array => np.sum(x.mul(x));
// @ts-expect-error: grad takes a function (fails to compile if the types were any)
grad(42);
const g = grad(f)(np.array([1, 2, 3]));
console.log(JSON.stringify({ g: g.tolist(), c: core.np.sum(core.np.ones([5])).item() }));
`,
  // Node16 keeps CommonJS files from require()-ing ES modules: the package is reached with
  // import(), and its types with a resolution-mode attribute.
  "ts-cjs/tsconfig.node16.json": JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "node16",
      moduleResolution: "node16",
      strict: true,
      skipLibCheck: false,
      types: [],
      outDir: "out16",
    },
    include: ["dynamic.ts"],
  }),
  "ts-cjs/dynamic.ts": `import type { Array } from "nbi" with { "resolution-mode": "import" };

async function main(): Promise<void> {
  const { grad, np } = await import("nbi");
  const core = await import("nbi/core");
  const f = (x: Array): Array => np.sum(x.mul(x));
  // @ts-expect-error: grad takes a function (fails to compile if the types were any)
  grad(42);
  const g = grad(f)(np.array([1, 2, 3]));
  console.log(JSON.stringify({ g: g.tolist(), c: core.np.sum(core.np.ones([5])).item() }));
}
void main();
`,
};

/** Static `import`/`export ... from` specifiers of a compiled module (not dynamic import()). */
function staticImports(code: string): string[] {
  const found: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/gm)) {
    found.push(m[1]!);
  }
  for (const m of code.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) found.push(m[1]!);
  return found;
}

/** Every module reachable from `entry` by static imports: relative files and bare specifiers. */
function staticGraph(entry: string): { files: string[]; external: Set<string> } {
  const files: string[] = [];
  const external = new Set<string>();
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    files.push(file);
    for (const spec of staticImports(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) stack.push(resolve(dirname(file), spec));
      else external.add(spec);
    }
  }
  return { files, external };
}

/**
 * README_BLOCKS: the README's code blocks, run as a user would paste them.
 *
 * Convention. Every fenced block whose language is `ts`/`typescript` or `js`/`javascript`/`mjs`
 * runs; other languages (sh, json, bash) never do. HTML comments on the lines right above the
 * opening fence (blank lines between are fine) say more:
 * - `<!-- not-run: reason -->`: the block does not run (the reason is required);
 * - `<!-- example: NAME -->`: names the block, and
 * - `<!-- continues: NAME -->`: the block carries on the named one (its prose says so): it is
 *   appended to that block, and they run as one program.
 * A program imports what it uses, from "nbi", "nbi/core" or a package its reader installs beside
 * nbi (fast-check). The consumer installed the tarball under the package's own name, so no
 * import specifier needs rewriting. A TypeScript program is type-checked (strict, no
 * skipLibCheck, no @types/node) and run in an ES-module project (NodeNext, `"type": "module"`)
 * and in a CommonJS-typed one (NodeNext: `import` compiles to `require`; CommonJS has no
 * top-level await, so the statements after the imports run inside an async arrow function,
 * opened on the first statement's line, and an import further down moves up to the first line:
 * tsc's line numbers stay the README's), and, with its types stripped by esbuild, as a plain
 * `.mjs` program; a JavaScript program runs as `.mjs` only. A program that trains (calls
 * `.fit(`) runs once, in the NodeNext project (where a TypeScript reader would paste it), and is
 * type-checked in both: a fit costs seconds to tens of seconds on two cores, and what differs
 * between the three (module format, `require` of ES modules, the async wrapper, default imports
 * of CommonJS packages) is run by the programs that do not train. Each run has a working folder
 * of its own (a run without a `path` lands there). A failure names the README lines.
 */
const README = readFileSync(join(ROOT, "README.md"), "utf8");

interface ReadmeBlock {
  /** 1-based README line of the opening fence: the block's line k is README line `line + k`. */
  line: number;
  lang: "ts" | "js";
  /** The block's lines, each ending in "\n". */
  code: string;
  notRun?: string;
  example?: string;
  continues?: string;
}

const RUN_LANGS: Record<string, "ts" | "js"> = {
  ts: "ts",
  typescript: "ts",
  js: "js",
  javascript: "js",
  mjs: "js",
};

function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split("\n");
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const close = new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end]!)) end++;
    const lang = RUN_LANGS[open[2]!.toLowerCase()];
    if (lang) {
      const block: ReadmeBlock = { line: i + 1, lang, code: "" };
      block.code = lines
        .slice(i + 1, end)
        .map((l) => `${l}\n`)
        .join("");
      for (let above = i - 1; above >= 0; above--) {
        const text = lines[above]!.trim();
        if (text === "") continue;
        const marker = /^<!--\s*(not-run|example|continues):(.*?)-->$/.exec(text);
        if (!marker) break;
        const key = marker[1] === "not-run" ? "notRun" : (marker[1] as "example" | "continues");
        block[key] = marker[2]!.trim();
      }
      blocks.push(block);
    }
    i = end;
  }
  return blocks;
}

/** A README example as it runs: a block and the blocks that continue it. */
interface ReadmeProgram {
  name: string;
  lang: "ts" | "js";
  blocks: ReadmeBlock[];
  code: string;
}

/** The programs, and what is wrong with the markers (checked by a test of its own). */
function readmePrograms(blocks: readonly ReadmeBlock[]): {
  programs: ReadmeProgram[];
  errors: string[];
} {
  const programs: ReadmeProgram[] = [];
  const errors: string[] = [];
  const named = new Map<string, ReadmeProgram>();
  for (const b of blocks) {
    if (b.notRun !== undefined) {
      if (b.notRun === "") errors.push(`README.md:${b.line}: not-run without a reason`);
      continue;
    }
    if (b.continues !== undefined) {
      const p = named.get(b.continues);
      if (!p || p.lang !== b.lang) {
        errors.push(
          `README.md:${b.line}: continues "${b.continues}", which no ${b.lang} block above names`,
        );
        continue;
      }
      p.blocks.push(b);
      p.code += b.code;
      continue;
    }
    const p = { name: `L${b.line}`, lang: b.lang, blocks: [b], code: b.code };
    programs.push(p);
    if (b.example !== undefined) named.set(b.example, p);
  }
  return { programs, errors };
}

/** The README line of a program's line `n` (1-based). */
function readmeLine(p: ReadmeProgram, n: number): number {
  let first = 1;
  for (const b of p.blocks) {
    const count = b.code.split("\n").length - 1;
    if (n < first + count) return b.line + (n - first + 1);
    first += count;
  }
  return p.blocks.at(-1)!.line;
}

const where = (p: ReadmeProgram) => `README.md:${p.blocks.map((b) => b.line).join(" + ")}`;

const BLOCKS = readmeBlocks(README);
const { programs: PROGRAMS, errors: MARKER_ERRORS } = readmePrograms(BLOCKS);

/**
 * The CommonJS form of a TypeScript program, line for line: its imports first (one further down
 * is moved up onto the first line and leaves blank lines behind), then the other statements
 * inside `void (async () => { ... })();` (an unhandled rejection exits non-zero).
 */
function commonJsForm(p: ReadmeProgram): string {
  const file = ts.createSourceFile("program.ts", p.code, ts.ScriptTarget.ES2022, true);
  const first = file.statements.findIndex((st) => !ts.isImportDeclaration(st));
  if (first < 0) return p.code;
  let code = p.code;
  const moved: string[] = [];
  // From the end, so the earlier positions stay valid.
  for (const st of file.statements.slice(first).reverse()) {
    if (!ts.isImportDeclaration(st)) continue;
    const [start, end] = [st.getStart(file), st.getEnd()];
    const text = code.slice(start, end);
    moved.unshift(text.replace(/\s*\n\s*/g, " "));
    code = code.slice(0, start) + text.replace(/[^\n]/g, "") + code.slice(end);
  }
  const start = file.statements[first]!.getStart(file);
  const body = `${code.slice(0, start)}void (async () => { ${code.slice(start).trimEnd()}\n})();\n`;
  return moved.length > 0 ? `${moved.join(" ")} ${body}` : body;
}

/** The README programs' TypeScript projects, by path under the consumer folder. */
function readmeFiles(): Record<string, string> {
  const project = (outDir: string) =>
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        skipLibCheck: false,
        types: [],
        // Every program is a module of its own, even one without imports.
        moduleDetection: "force",
        outDir,
      },
      include: ["L*.ts"],
    });
  const files: Record<string, string> = {
    "readme/ts-esm/package.json": JSON.stringify({ type: "module" }),
    "readme/ts-esm/tsconfig.json": project("out"),
    "readme/ts-cjs/package.json": JSON.stringify({ type: "commonjs" }),
    "readme/ts-cjs/tsconfig.json": project("out"),
  };
  for (const p of PROGRAMS) {
    if (p.lang === "js") continue;
    files[`readme/ts-esm/${p.name}.ts`] = p.code;
    files[`readme/ts-cjs/${p.name}.ts`] = commonJsForm(p);
  }
  return files;
}

/** Runs a command without blocking the event loop; resolves with its status and output. */
function runAsync(
  command: string,
  args: readonly string[],
  cwd: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd, env: ENV, timeout: 300_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    child.on("error", (e) => done({ status: null, stdout, stderr: `${stderr}\n${e.message}` }));
    child.on("close", (status, signal) =>
      done({ status, stdout, stderr: signal ? `${stderr}\nkilled by ${signal}` : stderr }),
    );
  });
}

// Generous timeouts: tsc and npm share the CPUs with the rest of the suite.
describe.skipIf(npmMissing !== undefined)(
  "the npm package, installed from its tarball",
  { timeout: 180_000 },
  () => {
    let tmp = "";
    let consumer = "";
    let installed = "";
    let pack: {
      filename: string;
      size: number;
      unpackedSize: number;
      entryCount: number;
      files: { path: string }[];
    };

    beforeAll(() => {
      tmp = mkdtempSync(join(tmpdir(), "nbi-package-"));
      const source = join(tmp, "pkg");
      cpSync(ROOT, source, {
        recursive: true,
        filter: (path) => {
          const rel = relative(ROOT, path);
          const top = rel.split(sep)[0]!;
          return !NOT_COPIED.has(top) && !(rel === top && top.endsWith(".tgz"));
        },
      });
      // The build (prepack) needs the repository's devDependencies (typescript).
      symlinkSync(join(ROOT, "node_modules"), join(source, "node_modules"), "dir");
      pack = JSON.parse(ok("npm", ["pack", "--json", "--pack-destination", tmp], source))[0];
      const tarball = join(tmp, pack.filename);

      consumer = join(tmp, "consumer");
      for (const [path, text] of Object.entries(CONSUMER_FILES)) write(join(consumer, path), text);
      const flags = ["--omit=optional", "--no-audit", "--no-fund", "--loglevel=error"];
      const offline = run("npm", ["install", "--offline", ...flags, tarball], consumer);
      if (offline.status !== 0)
        ok("npm", ["install", "--prefer-offline", ...flags, tarball], consumer);
      installed = join(consumer, "node_modules", PKG.name);
      for (const [path, text] of Object.entries(readmeFiles())) write(join(consumer, path), text);
      // The README's property-test block imports fast-check, which its reader installs beside
      // nbi: here the repository's copy (a devDependency), linked after the install so npm
      // does not prune it.
      symlinkSync(
        join(ROOT, "node_modules", "fast-check"),
        join(consumer, "node_modules", "fast-check"),
        "dir",
      );
      // --omit=optional (which keeps the 132 MB `webgpu` out) also drops resvg's prebuilt binary,
      // an optional dependency of @resvg/resvg-js, and the README's examples write PNG plots: a
      // default install has it, so link the repository's (the README says so too).
      const resvg = join(ROOT, "node_modules", "@resvg");
      for (const name of readdirSync(resvg).filter((n) => n.startsWith("resvg-js-"))) {
        const to = join(consumer, "node_modules", "@resvg", name);
        if (!existsSync(to)) symlinkSync(join(resvg, name), to, "dir");
      }
      // tsc on the README's programs takes a while: it runs beside the tests before theirs.
      void compileReadme();
    }, 240_000);

    afterAll(() => {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it("holds the compiled ESM, the declarations and the launcher, and no sources", () => {
      const paths = pack.files.map((f) => f.path);
      console.log(
        `Package ${pack.filename}: ${(pack.size / 1024).toFixed(0)} kB packed, ` +
          `${(pack.unpackedSize / 1024).toFixed(0)} kB unpacked, ${pack.entryCount} files`,
      );
      for (const p of [
        "package.json",
        "README.md",
        "LICENSE",
        "bin/nbi.mjs",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/core.js",
        "dist/core.d.ts",
        "dist/cli/main.js",
      ]) {
        expect(paths).toContain(p);
      }
      const stray = paths.filter(
        (p) =>
          !(p.startsWith("dist/") && (p.endsWith(".js") || p.endsWith(".d.ts"))) &&
          !["package.json", "README.md", "bin/nbi.mjs"].includes(p) &&
          !/^(LICEN[CS]E|NOTICE)/i.test(p),
      );
      expect(stray).toEqual([]);
      // The license text that package.json names, installed with the package.
      expect(PKG.license).toBe("BSD-3-Clause");
      const license = readFileSync(join(installed, "LICENSE"), "utf8");
      expect(license).toMatch(/^BSD 3-Clause License\n\nCopyright \(c\) \d{4}, \S/);
      expect(license).toContain("Neither the name of the copyright holder");
    });

    /** fp-ts and immer, by bare specifier ("fp-ts/lib/Either.js", "immer"). */
    const isStaticDep = (s: string) => /^(fp-ts|immer)(\/|$)/.test(s);

    it("reaches no Node built-in from nbi/core, and no plotting, progress or GPU package from nbi", () => {
      const core = staticGraph(join(installed, "dist", "core.js"));
      expect(core.files.length).toBeGreaterThan(20);
      expect([...core.external]).toEqual([]);
      const full = staticGraph(join(installed, "dist", "index.js"));
      const lazy = ["webgpu", "vega", "vega-lite", "@resvg/resvg-js", "cli-progress"];
      expect([...full.external].filter((s) => lazy.includes(s))).toEqual([]);
      // The only packages nbi loads statically: fp-ts (the fit settings' validation) and immer
      // (the fold's state transitions), both pure JavaScript that bundles for the browser.
      expect([...full.external].filter((s) => !s.startsWith("node:") && !isStaticDep(s))).toEqual(
        [],
      );
      // The optional dependency was not installed, and the package still loads (tests below).
      expect(existsSync(join(consumer, "node_modules", "webgpu"))).toBe(false);
    });

    it("runs an ESM consumer of nbi and nbi/core", () => {
      const out = JSON.parse(ok(process.execPath, ["esm/main.mjs"], consumer));
      expect(out.g).toEqual([2, 4, 6]);
      expect(out.c[0]).toBeCloseTo(1, 6);
      expect(out.c[1]).toBeCloseTo(-1, 6);
      expect(out.sameModules).toBe(true);
      expect(out.engine).toBe("function");
      expect(out.logProb).toBeCloseTo(-Math.log(2), 12);
      // Without the optional `webgpu` package the GPU backend says what to install.
      expect(out.webgpu).toContain("npm install webgpu");
      expect(out.compute.d).toEqual([2, 4, 6]);
    });

    it("type-checks and runs a TypeScript NodeNext consumer", () => {
      ok(process.execPath, [TSC, "-p", "ts-esm"], consumer);
      const out = JSON.parse(ok(process.execPath, ["ts-esm/out/main.js"], consumer));
      expect(out).toEqual({ g: [2, 4, 6], h: 4, engine: "function" });
    });

    it("type-checks and runs a CommonJS-typed TypeScript project (NodeNext and Node16)", () => {
      ok(process.execPath, [TSC, "-p", "ts-cjs"], consumer);
      const compiled = readFileSync(join(consumer, "ts-cjs", "out", "main.js"), "utf8");
      expect(compiled).toContain('require("nbi")');
      expect(JSON.parse(ok(process.execPath, ["ts-cjs/out/main.js"], consumer))).toEqual({
        g: [2, 4, 6],
        c: 5,
      });
      ok(process.execPath, [TSC, "-p", "ts-cjs/tsconfig.node16.json"], consumer);
      expect(JSON.parse(ok(process.execPath, ["ts-cjs/out16/dynamic.js"], consumer))).toEqual({
        g: [2, 4, 6],
        c: 5,
      });
    });

    it("runs the installed nbi command from dist, without tsx", () => {
      expect(existsSync(join(consumer, "node_modules", "tsx"))).toBe(false);
      expect(ok("npx", ["--offline", "nbi", "--help"], consumer)).toContain(
        "Usage: nbi <command> [options]",
      );
      expect(ok("npx", ["--offline", "nbi", "--version"], consumer).trim()).toBe(PKG.version);
      const wrong = run("npx", ["--offline", "nbi", "fit", "--no-such-flag"], consumer);
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toContain("--no-such-flag");
    });

    it("runs the sine demo from the install (its model ships in dist)", () => {
      const out = ok(
        "npx",
        ["--offline", "nbi", "demo", "sine", "--epochs", "1", "--path", join(consumer, "demo-run")],
        consumer,
      );
      expect(out).toMatch(/round 2/);
      expect(existsSync(join(consumer, "demo-run"))).toBe(true);
    }, 120_000);

    it("bundles nbi/core for the browser, runs it without Node, and tree-shakes", async () => {
      const bundle = await build({
        entryPoints: [join(consumer, "compute.mjs")],
        absWorkingDir: consumer,
        bundle: true,
        platform: "browser",
        format: "iife",
        minify: true,
        write: false,
        metafile: true,
        logLevel: "silent",
      });
      const code = bundle.outputFiles[0]!.text;
      const inputs = Object.keys(bundle.metafile.inputs);
      expect(
        inputs.filter((p) => p !== "compute.mjs" && !p.includes("node_modules/nbi/dist/")),
      ).toEqual([]);
      // No import left to resolve at run time, and none of a Node built-in on the way (esbuild's
      // browser platform already fails the build on one; the worker source of the CPU threads
      // names node:worker_threads only inside a string, for Node).
      const imports = Object.values(bundle.metafile.inputs).flatMap((i) => i.imports);
      expect(imports.filter((i) => i.path.startsWith("node:") || i.external)).toEqual([]);
      expect(Object.values(bundle.metafile.outputs).flatMap((o) => o.imports)).toEqual([]);
      // An empty context: no process, require, console, navigator or timers.
      const context = vm.createContext({});
      vm.runInContext(code, context);
      const inBrowser = context.result as { d: number[]; g: number[] };
      const inNode = JSON.parse(ok(process.execPath, ["esm/main.mjs"], consumer)).compute;
      expect(inBrowser.d).toEqual([2, 4, 6]);
      expect(inBrowser.g).toHaveLength(3);
      inBrowser.g.forEach((v, i) => {
        expect(v).toBeCloseTo(inNode.g[i], 6);
      });
      const gzipped = gzipSync(code).length;
      const small = await build({
        stdin: {
          contents: 'import { NbiError } from "nbi/core"; globalThis.e = new NbiError("x");',
          resolveDir: consumer,
        },
        bundle: true,
        platform: "browser",
        format: "esm",
        minify: true,
        write: false,
        logLevel: "silent",
      });
      const tiny = small.outputFiles[0]!.text.length;
      console.log(
        `nbi/core browser bundle (grad, jit, np, random): ${(code.length / 1024).toFixed(0)} kB, ` +
          `${(gzipped / 1024).toFixed(1)} kB gzipped; NbiError alone: ${tiny} bytes`,
      );
      expect(tiny).toBeLessThan(10_000);
    });

    it("bundles the installed nbi/browser engine for the browser, with no Node built-in", async () => {
      const bundle = await build({
        stdin: {
          contents:
            'import { BrowserNBI, memoryStore, serveSimulator } from "nbi/browser"; globalThis.api = [BrowserNBI, memoryStore, serveSimulator];',
          resolveDir: consumer,
        },
        bundle: true,
        platform: "browser",
        format: "esm",
        write: false,
        metafile: true,
        logLevel: "silent",
      });
      const inputs = Object.keys(bundle.metafile.inputs);
      expect(inputs.some((p) => p.includes("node_modules/nbi/dist/browser.js"))).toBe(true);
      // Everything bundled comes from the installed package and its two static dependencies (no
      // source, no Node module).
      expect(
        inputs.filter(
          (p) =>
            p !== "<stdin>" &&
            !p.includes("node_modules/nbi/dist/") &&
            !/node_modules\/(fp-ts|immer)\//.test(p),
        ),
      ).toEqual([]);
      const imports = Object.values(bundle.metafile.inputs).flatMap((i) => i.imports);
      expect(imports.filter((i) => i.path.startsWith("node:") || i.external)).toEqual([]);
      const text = bundle.outputFiles[0]!.text;
      expect(text).not.toMatch(/(^|\n)\s*import[^;]*from\s*["']node:|\bimport\(\s*["']node:/);
    });

    /** Both TypeScript projects of the README programs, compiled once: tsc's errors by file. */
    let compiled: Promise<Map<string, string[]>> | undefined;
    const compileReadme = () => {
      compiled ??= (async () => {
        const errors = new Map<string, string[]>();
        const outputs = await Promise.all(
          ["ts-esm", "ts-cjs"].map(async (project) => {
            const r = await runAsync(
              process.execPath,
              [TSC, "-p", join("readme", project), "--pretty", "false"],
              consumer,
            );
            return { project, text: `${r.stdout}${r.stderr}` };
          }),
        );
        const byName = new Map(PROGRAMS.map((p) => [p.name, p]));
        for (const { project, text } of outputs) {
          // "readme/ts-esm/L15.ts(3,7): error TS2304: ..." → the README line of program line 3.
          for (const m of text.matchAll(/(L\d+)\.ts\((\d+),(\d+)\): (.*)/g)) {
            const p = byName.get(m[1]!);
            const at = p ? `README.md:${readmeLine(p, Number(m[2]))}:${m[3]}` : m[0];
            const key = `${project}/${m[1]}`;
            errors.set(key, [...(errors.get(key) ?? []), `${at} (${project}): ${m[4]}`]);
          }
        }
        return errors;
      })();
      return compiled;
    };

    it("finds the README's code blocks, and every marker above a block, well formed", () => {
      expect(PROGRAMS.length).toBeGreaterThanOrEqual(4);
      expect(MARKER_ERRORS).toEqual([]);
      // A marker that is not right above a code block would be silently ignored.
      const markers = [...README.matchAll(/<!--\s*(not-run|example|continues):/g)].length;
      const used = BLOCKS.reduce(
        (n, b) => n + [b.notRun, b.example, b.continues].filter((m) => m !== undefined).length,
        0,
      );
      expect(used).toBe(markers);
    });

    for (const p of PROGRAMS) {
      const kinds =
        p.lang === "js"
          ? "as .mjs"
          : /\.fit\(/.test(p.code)
            ? "in NodeNext TypeScript (a fit: once), type-checked in CommonJS too"
            : "as .mjs, NodeNext ESM and CommonJS TypeScript";
      it(`runs the README example at ${where(p)} ${kinds}`, async () => {
        const esm = join(consumer, "readme", "esm", p.name);
        mkdirSync(esm, { recursive: true });
        // Types stripped by esbuild; the inline source map gives the program's own line numbers.
        const js =
          p.lang === "js"
            ? p.code
            : (
                await transform(p.code, {
                  loader: "ts",
                  format: "esm",
                  target: "es2022",
                  sourcemap: "inline",
                  sourcefile: `${where(p)}`,
                })
              ).code;
        writeFileSync(join(esm, "main.mjs"), js);
        const trains = p.lang === "ts" && /\.fit\(/.test(p.code);
        const runs: { label: string; cwd: string; args: string[] }[] = trains
          ? []
          : [{ label: ".mjs", cwd: esm, args: ["--enable-source-maps", "main.mjs"] }];
        if (p.lang === "ts") {
          const errors = await compileReadme();
          const typeErrors = ["ts-esm", "ts-cjs"].flatMap(
            (t) => errors.get(`${t}/${p.name}`) ?? [],
          );
          expect(typeErrors, `${where(p)}: the example does not type-check`).toEqual([]);
          for (const project of trains ? ["ts-esm"] : ["ts-esm", "ts-cjs"]) {
            const cwd = join(consumer, "readme", project, `run-${p.name}`);
            mkdirSync(cwd, { recursive: true });
            runs.push({ label: project, cwd, args: [join("..", "out", `${p.name}.js`)] });
          }
        }
        // The three at once: a fit keeps one core busy, and a third of a short program's time
        // is loading modules.
        const results = await Promise.all(
          runs.map(async (r) => ({ ...r, ...(await runAsync(process.execPath, r.args, r.cwd)) })),
        );
        for (const r of results) {
          if (r.status !== 0) {
            throw new Error(
              `${where(p)}: the example failed as ${r.label} (exit ${r.status}):\n${r.stdout}\n${r.stderr}`,
            );
          }
          // An engine made without a path says where its run went.
          if (/new NBI\(/.test(p.code) && !/\bpath:/.test(p.code)) {
            const folder = join(realpathSync(r.cwd), "nbi-run");
            expect(r.stderr, `${where(p)} as ${r.label}`).toContain(
              `nbi: no path given to new NBI: this run's simulations and checkpoints go to ${folder}\n`,
            );
            expect(existsSync(join(folder, "manifest.json"))).toBe(true);
          }
        }
      }, 300_000);
    }
  },
);
