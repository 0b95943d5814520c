import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import {
  MODEL_MANIFEST_FILE,
  MODEL_TENSORS_FILE,
  type ModelFileFormat,
  readModelFolder,
  readModelManifest,
  writeModelFolder,
} from "../../src/io/model-file.js";
import { encodeSafetensors, type Tensor } from "../../src/io/safetensors.js";

/** A folder saved by NBI.save before the format moved here (see its README.md). */
const SAVED = fileURLToPath(new URL("../fixtures/engine/saved-model", import.meta.url));
const NBI_MODEL: ModelFileFormat = { name: "nbi-model", version: 1 };
const FORMAT: ModelFileFormat = { name: "nbi-test-model", version: 2 };

const TENSORS: Record<string, Tensor> = {
  "net.w": { dtype: "F32", shape: [2, 3], data: Float32Array.from([1, -2, 0.5, 3e-8, -0, 7]) },
  "scales.mean": { dtype: "F64", shape: [2], data: Float64Array.from([1 / 3, -Infinity]) },
  counts: { dtype: "I32", shape: [], data: Int32Array.from([-5]) },
};
const MANIFEST = { labels: ["a", "b"], dataShape: [8], nested: { hidden: [16, 16] } };

let root: string;
let count = 0;
const folder = () => join(root, `m${count++}`);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Writes a folder whose model.json is `text` (verbatim) beside valid tensors. */
async function withManifest(text: string): Promise<string> {
  const dir = folder();
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, MODEL_MANIFEST_FILE), text);
  await writeFile(join(dir, MODEL_TENSORS_FILE), encodeSafetensors(TENSORS));
  return dir;
}

/** The error a promise rejects with (failing the test when it resolves). */
async function errorOf(p: Promise<unknown>): Promise<NbiError> {
  const e = await p.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(NbiError);
  return e as NbiError;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "nbi-model-file-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("model folder: round trip", () => {
  it("writes model.json (format and version first) and weights.safetensors, and reads them back", async () => {
    const dir = join(folder(), "deeper", "model");
    await writeModelFolder(dir, FORMAT, {
      manifest: MANIFEST,
      tensors: TENSORS,
      metadata: { note: "demo" },
    });
    // No temporary files left behind; the folder was created.
    expect((await readdir(dir)).sort()).toEqual([MODEL_MANIFEST_FILE, MODEL_TENSORS_FILE]);
    const text = await readFile(join(dir, MODEL_MANIFEST_FILE), "utf8");
    expect(text).toBe(
      `${JSON.stringify({ format: "nbi-test-model", version: 2, ...MANIFEST }, null, 2)}\n`,
    );

    const read = await readModelFolder(dir, FORMAT);
    expect(read.folder).toBe(dir);
    expect(read.manifestPath).toBe(join(dir, MODEL_MANIFEST_FILE));
    expect(read.tensorsPath).toBe(join(dir, MODEL_TENSORS_FILE));
    expect(read.version).toBe(2);
    expect(read.manifest).toEqual({ format: "nbi-test-model", version: 2, ...MANIFEST });
    expect(read.metadata).toEqual({ note: "demo", format: "nbi-test-model" });
    expect(Object.keys(read.tensors).sort()).toEqual(Object.keys(TENSORS).sort());
    for (const [name, t] of Object.entries(TENSORS)) {
      const got = read.tensors[name]!;
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect(got.data).toBeInstanceOf(t.data.constructor);
      expect(Array.from(got.data)).toEqual(Array.from(t.data));
    }
  });

  it("takes format and version from the format, not from the manifest's fields", async () => {
    const dir = folder();
    await writeModelFolder(dir, FORMAT, {
      manifest: { version: 99, format: "something else", labels: ["x"] },
      tensors: {},
    });
    const text = await readFile(join(dir, MODEL_MANIFEST_FILE), "utf8");
    expect(Object.keys(JSON.parse(text))).toEqual(["format", "version", "labels"]);
    const { manifest, tensors } = await readModelFolder(dir, FORMAT);
    expect(manifest).toEqual({ format: "nbi-test-model", version: 2, labels: ["x"] });
    expect(tensors).toEqual({});
  });

  it("reads every version from 1 to the format's", async () => {
    const dir = await withManifest(JSON.stringify({ format: "nbi-test-model", version: 1, a: 1 }));
    const read = await readModelFolder(dir, FORMAT);
    expect(read.version).toBe(1);
    expect(read.manifest.a).toBe(1);
  });

  it("replaces an existing folder's files", async () => {
    const dir = folder();
    await writeModelFolder(dir, FORMAT, { manifest: { n: 1 }, tensors: TENSORS });
    await writeModelFolder(dir, FORMAT, { manifest: { n: 2 }, tensors: {} });
    const read = await readModelFolder(dir, FORMAT);
    expect(read.manifest.n).toBe(2);
    expect(read.tensors).toEqual({});
  });

  it("readModelManifest reads the manifest alone", async () => {
    const dir = folder();
    await mkdir(dir);
    await writeFile(
      join(dir, MODEL_MANIFEST_FILE),
      JSON.stringify({ format: "nbi-test-model", version: 2 }),
    );
    const head = await readModelManifest(dir, FORMAT);
    expect(head.manifest).toEqual({ format: "nbi-test-model", version: 2 });
  });
});

describe("model folder: a model saved before the format moved to src/io", () => {
  it("reads it, and writes it back byte for byte", async () => {
    const saved = await readModelFolder<{ labels: string[]; dataShape: number[] }>(
      SAVED,
      NBI_MODEL,
    );
    expect(saved.version).toBe(1);
    expect(saved.manifest.format).toBe("nbi-model");
    expect(saved.manifest.labels).toEqual(["a", "b"]);
    expect(saved.manifest.dataShape).toEqual([8]);
    expect(saved.metadata).toEqual({ format: "nbi-model" });
    expect(saved.tensors["scales.thetaStd"]?.dtype).toBe("F64");
    expect(saved.tensors["flow.blocks[0].layers[0].w"]?.dtype).toBe("F32");

    const dir = folder();
    const { format: _f, version: _v, ...fields } = saved.manifest;
    await writeModelFolder(dir, NBI_MODEL, { manifest: fields, tensors: saved.tensors });
    for (const file of [MODEL_MANIFEST_FILE, MODEL_TENSORS_FILE]) {
      const [before, after] = await Promise.all([
        readFile(join(SAVED, file)),
        readFile(join(dir, file)),
      ]);
      expect(after.equals(before), file).toBe(true);
    }
  });
});

describe("model folder: errors name the path, what was expected and what was found", () => {
  it("a manifest of another format", async () => {
    const dir = await withManifest(JSON.stringify({ format: "nbi-store", version: 1 }));
    const e = await errorOf(readModelFolder(dir, FORMAT));
    expect(e.message).toBe(
      `readModelFolder: ${join(dir, MODEL_MANIFEST_FILE)} expected format "nbi-test-model" version ≤ 2, got format "nbi-store" version 1`,
    );
  });

  it("a manifest without format or version, or with a bad version", async () => {
    const none = await withManifest(JSON.stringify({ labels: ["a"] }));
    expect((await errorOf(readModelFolder(none, FORMAT))).message).toMatch(
      new RegExp(
        `^readModelFolder: ${escape(join(none, MODEL_MANIFEST_FILE))} expected format "nbi-test-model" version ≤ 2, got format undefined version undefined$`,
      ),
    );
    for (const version of [0, 1.5, "1"]) {
      const dir = await withManifest(JSON.stringify({ format: "nbi-test-model", version }));
      expect((await errorOf(readModelFolder(dir, FORMAT))).message).toContain(
        `expected format "nbi-test-model" version ≤ 2, got format "nbi-test-model" version ${JSON.stringify(version)}`,
      );
    }
  });

  it("a manifest from a newer version says so", async () => {
    const dir = await withManifest(JSON.stringify({ format: "nbi-test-model", version: 3 }));
    const e = await errorOf(readModelFolder(dir, FORMAT, "NBI.load"));
    expect(e.message).toBe(
      `NBI.load: ${join(dir, MODEL_MANIFEST_FILE)} expected format "nbi-test-model" version ≤ 2, got format "nbi-test-model" version 3 (written by a newer version of this library: upgrade it to read the folder)`,
    );
  });

  it("a missing folder or manifest", async () => {
    const dir = folder();
    const e = await errorOf(readModelFolder(dir, FORMAT, "NBI.load"));
    expect(e.message).toBe(
      `NBI.load: ${dir} expected a saved model (model.json and weights.safetensors, format "nbi-test-model" version ≤ 2), found no model.json`,
    );
    await mkdir(dir);
    await writeFile(join(dir, MODEL_TENSORS_FILE), encodeSafetensors(TENSORS));
    expect((await errorOf(readModelManifest(dir, FORMAT))).message).toBe(
      `readModelManifest: ${dir} expected a saved model (model.json and weights.safetensors, format "nbi-test-model" version ≤ 2), found no model.json`,
    );
  });

  it("a missing tensors file", async () => {
    const dir = folder();
    await mkdir(dir);
    await writeFile(
      join(dir, MODEL_MANIFEST_FILE),
      JSON.stringify({ format: "nbi-test-model", version: 2 }),
    );
    const e = await errorOf(readModelFolder(dir, FORMAT));
    expect(e.message).toBe(
      `readModelFolder: ${dir} expected weights.safetensors beside model.json ("nbi-test-model"), found none`,
    );
  });

  it("a manifest that is not JSON, or not an object", async () => {
    const broken = await withManifest('{"format": "nbi-test-model", ');
    const e = await errorOf(readModelFolder(broken, FORMAT));
    expect(e.message).toMatch(
      new RegExp(
        `^readModelFolder: ${escape(join(broken, MODEL_MANIFEST_FILE))} expected JSON \\(format "nbi-test-model" version ≤ 2\\), got a parse error \\(.+\\)$`,
      ),
    );
    const list = await withManifest("[1, 2]");
    expect((await errorOf(readModelFolder(list, FORMAT))).message).toBe(
      `readModelFolder: ${join(list, MODEL_MANIFEST_FILE)} expected a JSON object (format "nbi-test-model" version ≤ 2), got [1, 2]`,
    );
  });

  it("a corrupt tensors file names its path", async () => {
    const dir = await withManifest(JSON.stringify({ format: "nbi-test-model", version: 2 }));
    await writeFile(join(dir, MODEL_TENSORS_FILE), encodeSafetensors(TENSORS).subarray(0, 40));
    const e = await errorOf(readModelFolder(dir, FORMAT));
    expect(e.message).toContain(join(dir, MODEL_TENSORS_FILE));
  });

  it("a folder that cannot be written", async () => {
    const file = join(root, `file${count++}`);
    await writeFile(file, "not a folder");
    const e = await errorOf(
      writeModelFolder(join(file, "model"), FORMAT, { manifest: {}, tensors: {} }, "save"),
    );
    expect(e.message).toMatch(
      new RegExp(`^save: ${escape(join(file, "model"))} expected a writable folder, got .+`),
    );
  });

  it("a bad format or bad tensors, before anything is written", async () => {
    const dir = folder();
    expect(
      (
        await errorOf(
          writeModelFolder(dir, { name: "", version: 1 }, { manifest: {}, tensors: {} }),
        )
      ).message,
    ).toBe('writeModelFolder: format.name expected a non-empty string, got ""');
    expect((await errorOf(readModelFolder(dir, { name: "x", version: 0 }))).message).toBe(
      "readModelFolder: format.version expected an integer ≥ 1, got 0",
    );
    const bad = { w: { dtype: "F32", shape: [2], data: Float64Array.from([1, 2]) } } as const;
    await expect(
      writeModelFolder(dir, FORMAT, {
        manifest: {},
        tensors: bad as unknown as Record<string, Tensor>,
      }),
    ).rejects.toThrow(/tensors\["w"\]\.data expected a Float32Array of 2 values/);
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
  });
});
