/**
 * The layering of src/, checked on the import graph. Every .ts file under src/ is read with
 * TypeScript's `ts.preProcessFile` (which lists every import, type-only ones included, without
 * type-checking), its relative imports are resolved to files, and two rules are enforced: no file
 * imports from a layer above its own (LAYERS, lowest first), and no files import each other in a
 * cycle (strongly connected components of the graph). Type-only imports count: they are what
 * tangles the code even when nothing runs. The checker itself is tested on small synthetic graphs
 * first, so a failure here can be trusted to mean the code, not the test.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * The layers of src/, lowest first: a file may import from its own layer and the layers below.
 * A name is a folder of src/ (covering everything under it) or a top-level file; the entry points
 * (index.ts, core.ts, browser.ts) share the top layer.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["errors.ts"],
  ["trace"],
  ["ops"],
  ["transforms"],
  ["bijectors"],
  ["featurizers"],
  ["optim"],
  ["io"],
  ["inference"],
  ["plots"],
  ["cli"],
  ["index.ts", "core.ts", "browser.ts"],
];

const SRC = fileURLToPath(new URL("../../src", import.meta.url));

/** File -> the files it imports, as paths relative to the repository root ("src/ops/np.ts"). */
type Graph = ReadonlyMap<string, readonly string[]>;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

const posix = (p: string) => p.split(sep).join("/");

/**
 * Relative module specifiers of one file. `preProcessFile` finds imports, `export ... from`,
 * `import type`, dynamic `import()` and `typeof import()`, but not `export * as ns from` (a gap
 * of its scanner), which the entry points use; that form is added with a pattern.
 */
function specifiers(text: string): string[] {
  const found = ts.preProcessFile(text, true, true).importedFiles.map((r) => r.fileName);
  const starAs = /^\s*export\s+(?:type\s+)?\*\s+as\s+[\w$]+\s+from\s+["']([^"']+)["']/gm;
  for (const m of text.matchAll(starAs)) found.push(m[1]!);
  return found.filter((s) => s.startsWith("."));
}

/** The import graph of src/ (relative imports only), and the imports that resolved to no file. */
function importGraph(): { graph: Graph; unresolved: string[] } {
  const root = dirname(SRC);
  const files = tsFiles(SRC);
  const known = new Set(files.map((f) => normalize(f)));
  const graph = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const file of files) {
    const from = posix(relative(root, file));
    const targets: string[] = [];
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      const base = normalize(join(dirname(file), spec));
      const candidates = [base.replace(/\.js$/, ".ts"), base, `${base}.ts`, join(base, "index.ts")];
      const hit = candidates.find((c) => known.has(c));
      if (hit === undefined) unresolved.push(`${from} imports "${spec}", which is no file of src/`);
      else targets.push(posix(relative(root, hit)));
    }
    graph.set(from, [...new Set(targets)]);
  }
  return { graph, unresolved };
}

/** The layer name of a file ("src/ops/cpu/pool.ts" -> "ops", "src/core.ts" -> "core.ts"). */
function unitOf(file: string): string {
  return file.split("/")[1]!;
}

function layerIndex(layers: readonly (readonly string[])[], file: string): number {
  return layers.findIndex((names) => names.includes(unitOf(file)));
}

/** One message per import that goes from a lower layer to a higher one, or from/to no layer. */
function layerViolations(graph: Graph, layers: readonly (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const lf = layerIndex(layers, from);
    if (lf < 0) {
      out.push(`${from} is in no layer ("${unitOf(from)}" is missing from LAYERS)`);
      continue;
    }
    for (const to of targets) {
      const lt = layerIndex(layers, to);
      if (lt > lf) {
        out.push(
          `${from} (layer ${unitOf(from)}) imports ${to} (layer ${unitOf(to)}, higher than ` +
            `${unitOf(from)})`,
        );
      }
    }
  }
  return out;
}

/**
 * The import cycles: strongly connected components with more than one file, or a file importing
 * itself (Tarjan's algorithm). Each cycle's files are sorted, and the cycles by their first file.
 */
function importCycles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

describe("the layer checker itself", () => {
  it("reports an import from a lower layer to a higher one, naming both files and layers", () => {
    const graph = new Map([
      ["src/ops/numpy.ts", ["src/trace/core.ts", "src/transforms/jit.ts"]],
      ["src/trace/core.ts", []],
      ["src/transforms/jit.ts", ["src/ops/numpy.ts"]],
    ]);
    const found = layerViolations(graph, [["trace"], ["ops"], ["transforms"]]);
    expect(found).toEqual([
      "src/ops/numpy.ts (layer ops) imports src/transforms/jit.ts (layer transforms, higher than ops)",
    ]);
    expect(layerViolations(graph, [["trace"], ["ops", "transforms"]])).toEqual([]);
  });

  it("reports a file outside every layer", () => {
    const graph = new Map([["src/attic/old.ts", []]]);
    expect(layerViolations(graph, [["ops"]])).toEqual([
      'src/attic/old.ts is in no layer ("attic" is missing from LAYERS)',
    ]);
  });

  it("reports each import cycle with its files, and nothing for a DAG", () => {
    const graph = new Map([
      ["src/ops/a.ts", ["src/ops/b.ts"]],
      ["src/ops/b.ts", ["src/ops/c.ts", "src/ops/d.ts"]],
      ["src/ops/c.ts", ["src/ops/a.ts"]],
      ["src/ops/d.ts", ["src/ops/d.ts"]],
      ["src/ops/e.ts", ["src/ops/a.ts"]],
    ]);
    expect(importCycles(graph)).toEqual([
      ["src/ops/a.ts", "src/ops/b.ts", "src/ops/c.ts"],
      ["src/ops/d.ts"],
    ]);
    const dag = new Map([
      ["src/ops/a.ts", ["src/ops/b.ts", "src/ops/c.ts"]],
      ["src/ops/b.ts", ["src/ops/c.ts"]],
      ["src/ops/c.ts", []],
    ]);
    expect(importCycles(dag)).toEqual([]);
  });

  it("sees every form of import, type-only and `export * as` included", () => {
    const text = [
      'import { a } from "./a.js";',
      'import type { B } from "../b.js";',
      'export { c } from "./c.js";',
      'export type { D } from "./d.js";',
      'export * from "./e.js";',
      'export * as f from "./f.js";',
      'const g = await import("./g.js");',
      'type H = typeof import("./h.js");',
      'import fs from "node:fs";',
    ].join("\n");
    expect(specifiers(text).sort()).toEqual(
      ["../b.js", "./a.js", "./c.js", "./d.js", "./e.js", "./f.js", "./g.js", "./h.js"].sort(),
    );
  });
});

describe("the layers of src/", () => {
  const { graph, unresolved } = importGraph();

  it("resolves every relative import to a file of src/", () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(unresolved).toEqual([]);
  });

  it("has no import from a lower layer to a higher one", () => {
    expect(layerViolations(graph, LAYERS)).toEqual([]);
  });

  it("has no import cycle between files", () => {
    expect(
      importCycles(graph).map((c) => `files importing each other in a cycle: ${c.join(", ")}`),
    ).toEqual([]);
  });

  it("reaches a backend's kernels and code generators from transforms/ only through `Backend`", () => {
    // jit plans and runs fused groups through `Backend.fusion` (trace/backend.ts); the CPU's and
    // WebGPU's generators (ops/cpu, ops/webgpu) are attached from the ops layer.
    const direct = [...graph].flatMap(([file, deps]) =>
      file.startsWith("src/transforms/")
        ? deps
            .filter((d) => d.startsWith("src/ops/cpu/") || d.startsWith("src/ops/webgpu/"))
            .map((d) => `${file} imports ${d}`)
        : [],
    );
    expect(direct).toEqual([]);
  });
});
