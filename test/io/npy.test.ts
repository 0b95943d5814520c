import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { decodeNpy, encodeNpy, type NpyData, readNpy, writeNpy } from "../../src/io/npy.js";

// Made by test/fixtures/store/make-npy-fixtures.py with numpy 1.24.
const fixtures = fileURLToPath(new URL("../fixtures/store/", import.meta.url));
const fixture = (name: string) => join(fixtures, name);

const bytesOf = (a: NpyData) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const arrays = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }).chain((shape) => {
  const size = shape.reduce((a, b) => a * b, 1);
  const floats = fc.array(fc.double(), { minLength: size, maxLength: size });
  return fc.oneof(
    floats.map((v) => ({ shape, data: Float64Array.from(v) as NpyData })),
    floats.map((v) => ({ shape, data: Float32Array.from(v) as NpyData })),
    fc
      .array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), {
        minLength: size,
        maxLength: size,
      })
      .map((v) => ({ shape, data: Int32Array.from(v) as NpyData })),
    fc
      .array(fc.integer({ min: 0, max: 255 }), { minLength: size, maxLength: size })
      .map((v) => ({ shape, data: Uint8Array.from(v) as NpyData })),
  );
});

describe("npy", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nbi-npy-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("encode then decode returns the same dtype, shape and bytes, data 64-byte aligned", () => {
    fc.assert(
      fc.property(arrays, ({ shape, data }) => {
        const bytes = encodeNpy({ data, shape });
        const headerLength = bytes[8]! | (bytes[9]! << 8);
        expect((10 + headerLength) % 64).toBe(0);
        const back = decodeNpy(bytes);
        expect(back.shape).toEqual(shape);
        expect(back.data.constructor).toBe(data.constructor);
        expect(bytesOf(back.data)).toEqual(bytesOf(data));
      }),
    );
  });

  it("decodes from an unaligned view without aliasing it", () => {
    const data = Float64Array.of(1.5, -2, Number.NaN);
    const encoded = encodeNpy({ data, shape: [3] });
    const padded = new Uint8Array(encoded.length + 3);
    padded.set(encoded, 3);
    const back = decodeNpy(padded.subarray(3));
    expect(Array.from(back.data)).toEqual([1.5, -2, Number.NaN]);
    padded.fill(0);
    expect(back.data[0]).toBe(1.5);
  });

  it("writes and reads files", async () => {
    const path = join(dir, "a.npy");
    const data = Int32Array.of(1, -2, 3, 4, 5, 6);
    await writeNpy(path, { data, shape: [2, 3] });
    const back = await readNpy(path);
    expect(back.shape).toEqual([2, 3]);
    expect(back.data).toEqual(data);
  });

  it("reads files numpy wrote", async () => {
    const f4 = await readNpy(fixture("numpy-f4.npy"));
    expect(f4.shape).toEqual([2, 3]);
    expect(f4.data).toEqual(Float32Array.of(1.5, -2, 3.25, 0, 1e-3, -7));
    const f8 = await readNpy(fixture("numpy-f8.npy"));
    expect(f8.data).toEqual(Float64Array.of(Math.PI, -Math.E, 1e300, 5e-324));
    const i4 = await readNpy(fixture("numpy-i4.npy"));
    expect(i4.shape).toEqual([2, 3, 2]);
    expect(Array.from(i4.data)).toEqual(Array.from({ length: 12 }, (_, i) => i - 3));
    expect((await readNpy(fixture("numpy-u1.npy"))).data).toEqual(Uint8Array.of(0, 1, 2, 255));
    expect((await readNpy(fixture("numpy-b1.npy"))).data).toEqual(Uint8Array.of(1, 0, 1));
    const scalar = await readNpy(fixture("numpy-scalar.npy"));
    expect(scalar.shape).toEqual([]);
    expect(scalar.data).toEqual(Float64Array.of(2.5));
    const empty = await readNpy(fixture("numpy-empty.npy"));
    expect(empty.shape).toEqual([0, 3]);
    expect(empty.data).toEqual(new Float32Array(0));
    expect((await readNpy(fixture("numpy-v2.npy"))).data).toEqual(Float64Array.of(1, 2, 3));
  });

  it("writes the same bytes numpy does", async () => {
    for (const name of ["f4", "f8", "i4", "u1", "scalar", "empty"]) {
      const file = await readFile(fixture(`numpy-${name}.npy`));
      expect(encodeNpy(decodeNpy(file)), name).toEqual(new Uint8Array(file));
    }
  });

  it("names the file and the problem in its errors", async () => {
    const bad = join(dir, "not-npy.npy");
    await writeFile(bad, "hello world, not an array");
    await expect(readNpy(bad)).rejects.toThrow(NbiError);
    await expect(readNpy(bad)).rejects.toThrow(/not-npy\.npy is not an NPY file/);
    await expect(readNpy(fixture("numpy-big-endian.npy"))).rejects.toThrow(
      /numpy-big-endian\.npy has dtype '>f8', expected one of '<f4'/,
    );
    await expect(readNpy(fixture("numpy-fortran.npy"))).rejects.toThrow(
      /numpy-fortran\.npy is in Fortran order, expected C order/,
    );
    const truncated = (await readFile(fixture("numpy-f8.npy"))).subarray(0, 140);
    expect(() => decodeNpy(truncated, "cut.npy")).toThrow(/cut\.npy is truncated/);
    expect(() => encodeNpy({ data: Float32Array.of(1, 2), shape: [3] })).toThrow(
      /encodeNpy: data expected 3 elements for shape \[3\], got 2/,
    );
  });
});
