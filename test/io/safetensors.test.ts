import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsDtype,
  type Tensor,
  writeSafetensors,
} from "../../src/io/safetensors.js";

const FIXTURE = new URL("../fixtures/safetensors/python.safetensors", import.meta.url);

/** The tensors of scripts/check-safetensors.py's EXPECTED, as written by Python's safetensors. */
const EXPECTED: Record<string, Tensor> = {
  weight: {
    dtype: "F32",
    shape: [2, 3],
    data: Float32Array.from([0.5, -1.25, 3e-8, 1e30, -0, Infinity]),
  },
  bias: { dtype: "F64", shape: [3], data: Float64Array.from([1 / 3, -2.5e-300, Math.PI]) },
  scalar: { dtype: "F64", shape: [], data: Float64Array.from([42]) },
  counts: { dtype: "I32", shape: [2, 2], data: Int32Array.from([-(2 ** 31), -1, 0, 2 ** 31 - 1]) },
  ids: { dtype: "U32", shape: [4], data: Uint32Array.from([0, 1, 2 ** 32 - 1, 123456789]) },
  bytes: { dtype: "U8", shape: [5], data: Uint8Array.from([0, 1, 127, 128, 255]) },
  mask: { dtype: "BOOL", shape: [2, 2], data: Uint8Array.from([1, 0, 0, 1]) },
  empty: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
};

const bytesOf = (t: Tensor): Uint8Array =>
  new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

function expectSameTensors(got: Record<string, Tensor>, want: Record<string, Tensor>): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name]!;
    expect(g.dtype).toBe(w.dtype);
    expect(g.shape).toEqual(w.shape);
    expect(g.data.constructor).toBe(w.data.constructor);
    expect(bytesOf(g)).toEqual(bytesOf(w)); // bit-exact: −0, ±Infinity and NaN payloads
  }
}

/** Splits encoded bytes into the header object and the data section. */
function parts(bytes: Uint8Array): { headerLength: number; header: Record<string, unknown> } {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  return { headerLength, header: JSON.parse(text) };
}

/** Builds a file from a header object and a data section, for corrupt-input tests. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), pad = true): Uint8Array {
  let json =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  if (pad && json.length % 8 !== 0) {
    const padded = new Uint8Array(json.length + 8 - (json.length % 8)).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({
    dtype: fc.constantFrom<SafetensorsDtype>("F64", "F32", "U32", "I32", "U8", "BOOL"),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
  })
  .chain(({ dtype, shape }): fc.Arbitrary<Tensor> => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: n, maxLength: n });
    switch (dtype) {
      case "F64":
        return values(fc.double()).map((v) => ({ dtype, shape, data: Float64Array.from(v) }));
      case "F32":
        return values(fc.float()).map((v) => ({ dtype, shape, data: Float32Array.from(v) }));
      case "U32":
        return values(fc.nat({ max: 2 ** 32 - 1 })).map((v) => ({
          dtype,
          shape,
          data: Uint32Array.from(v),
        }));
      case "I32":
        return values(fc.integer()).map((v) => ({ dtype, shape, data: Int32Array.from(v) }));
      case "U8":
        return values(fc.nat({ max: 255 })).map((v) => ({
          dtype,
          shape,
          data: Uint8Array.from(v),
        }));
      case "BOOL":
        return values(fc.boolean()).map((v) => ({
          dtype,
          shape,
          data: Uint8Array.from(v, Number),
        }));
    }
  });

const nameArb = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== "__metadata__");

describe("safetensors", () => {
  it("round-trips any tensors and metadata bit-exactly, with an aligned header", () => {
    fc.assert(
      fc.property(
        fc.dictionary(nameArb, tensorArb, { maxKeys: 6 }),
        fc.option(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), { nil: undefined }),
        (tensors, metadata) => {
          const bytes = encodeSafetensors(tensors, metadata);
          const { headerLength, header } = parts(bytes);
          expect(headerLength % 8).toBe(0);
          const decoded = decodeSafetensors(bytes);
          expectSameTensors(decoded.tensors, tensors);
          const written = metadata && Object.keys(metadata).length > 0 ? metadata : {};
          expect(decoded.metadata).toEqual(written);
          // Every tensor starts at a multiple of its element size from the (8-aligned) data start.
          for (const [name, t] of Object.entries(tensors)) {
            const { data_offsets } = header[name] as { data_offsets: [number, number] };
            expect(data_offsets[0] % t.data.BYTES_PER_ELEMENT).toBe(0);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("decodes a file written by Python's safetensors to the right values", async () => {
    const bytes = new Uint8Array(await readFile(FIXTURE));
    const { tensors, metadata } = decodeSafetensors(bytes, "python.safetensors");
    expectSameTensors(tensors, EXPECTED);
    expect(metadata).toEqual({ format: "nbi-test" });
    expect(Object.is(tensors.weight!.data[4], -0)).toBe(true);
    expect(tensors.bias!.data[0]).toBe(1 / 3);
  });

  it("encodes the same tensors to exactly the reference writer's bytes", async () => {
    const reference = new Uint8Array(await readFile(FIXTURE));
    expect(encodeSafetensors(EXPECTED, { format: "nbi-test" })).toEqual(reference);
  });

  describe("files", () => {
    let dir = "";
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "nbi-safetensors-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("writes and reads a file", async () => {
      const path = join(dir, "model.safetensors");
      await writeSafetensors(path, EXPECTED, { format: "nbi-test", round: "3" });
      const { tensors, metadata } = await readSafetensors(path);
      expectSameTensors(tensors, EXPECTED);
      expect(metadata).toEqual({ format: "nbi-test", round: "3" });
    });

    it("names the file in errors", async () => {
      const missing = join(dir, "missing.safetensors");
      await expect(readSafetensors(missing)).rejects.toThrow(
        /readSafetensors: path expected a readable file, got ".*missing\.safetensors"/,
      );
      const corrupt = join(dir, "corrupt.safetensors");
      await writeFile(corrupt, encodeSafetensors(EXPECTED).subarray(0, 100));
      await expect(readSafetensors(corrupt)).rejects.toThrow(
        /readSafetensors: the header length of .*corrupt\.safetensors expected at most 92 bytes/,
      );
    });
  });

  describe("rejects corrupt input with a clear message", () => {
    const f32 = (offsets: [number, number], shape = [2]) => ({
      dtype: "F32",
      shape,
      data_offsets: offsets,
    });
    const eight = new Uint8Array(8);
    const cases: [string, Uint8Array, RegExp][] = [
      ["a short file", new Uint8Array(5), /length prefix of .* expected 8 bytes.*got a file of 5/],
      [
        "a header longer than the file",
        encodeSafetensors(EXPECTED).subarray(0, 40),
        /header length .* expected at most 32 bytes .*got \d+ \(a truncated or corrupt file\?\)/,
      ],
      ["invalid JSON", build("{not json"), /header .* expected valid JSON, got a parse error/],
      ["a header not starting with {", build('  {"a": 1}'), /expected JSON starting with "\{"/],
      ["a JSON array", build("[1, 2]"), /expected JSON starting with "\{"/],
      ["invalid UTF-8", build(new Uint8Array([0x7b, 0xff, 0x7d])), /invalid UTF-8/],
      [
        "an unsupported dtype",
        build({ h: { dtype: "F16", shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2)),
        /tensor "h" dtype of .* expected one of F64, F32, U32, I32, U8, BOOL, got "F16"/,
      ],
      [
        "a bad shape",
        build({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } }),
        /tensor "w" shape .* expected an array of non-negative integers/,
      ],
      [
        "reversed offsets",
        build({ w: f32([8, 0]) }, eight),
        /tensor "w" data_offsets .* expected \[begin, end\] with 0 ≤ begin ≤ end, got \[8, 0\]/,
      ],
      [
        "offsets past the data",
        build({ w: f32([0, 16], [4]) }, eight),
        /tensor "w" data_offsets .* data section of 8 bytes, got \[0, 16\]/,
      ],
      [
        "a span that does not match the shape",
        build({ w: f32([0, 8], [3]) }, eight),
        /tensor "w" data_offsets .* expected a span of 12 bytes for shape \[3\] of F32, got \[0, 8\] \(8 bytes\)/,
      ],
      [
        "overlapping tensors",
        build({ a: f32([0, 8]), b: f32([4, 12]) }, new Uint8Array(12)),
        /tensor "b" data_offsets .* expected to start at byte 8 .*overlapping tensor "a"/,
      ],
      [
        "a gap",
        build({ a: f32([0, 8]), b: f32([12, 20]) }, new Uint8Array(20)),
        /tensor "b" data_offsets .* expected to start at byte 8 .*got \[12, 20\], a gap/,
      ],
      [
        "trailing bytes",
        build({ a: f32([0, 8]) }, new Uint8Array(12)),
        /data section .* expected 8 bytes \(the tensors' total\), got 12 bytes/,
      ],
      [
        "non-string metadata",
        build({ __metadata__: { epochs: 3 } }),
        /__metadata__\["epochs"\] .* expected a string, got 3/,
      ],
      [
        "a BOOL byte other than 0 or 1",
        build({ m: { dtype: "BOOL", shape: [2], data_offsets: [0, 2] } }, Uint8Array.from([1, 2])),
        /tensor "m" element 1 .* expected 0 or 1 \(BOOL\), got 2/,
      ],
    ];
    it.each(cases)("%s", (_, bytes, pattern) => {
      expect(() => decodeSafetensors(bytes, "bad.safetensors")).toThrow(NbiError);
      expect(() => decodeSafetensors(bytes, "bad.safetensors")).toThrow(pattern);
      expect(() => decodeSafetensors(bytes, "bad.safetensors")).toThrow(/of bad\.safetensors/);
    });
  });

  it("rejects tensors that cannot be written", () => {
    const bad = (tensors: Record<string, unknown>, metadata?: Record<string, unknown>) => () =>
      encodeSafetensors(tensors as Record<string, Tensor>, metadata as Record<string, string>);
    expect(bad({ w: { dtype: "F32", shape: [2], data: new Float64Array(2) } })).toThrow(
      /tensors\["w"\]\.data expected a Float32Array of 2 values for dtype F32 and shape \[2\], got a Float64Array of 2 values/,
    );
    expect(bad({ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      /a Float32Array of 4 values .* got a Float32Array of 3 values/,
    );
    expect(bad({ w: { dtype: "I64", shape: [1], data: new Float64Array(1) } })).toThrow(
      /tensors\["w"\]\.dtype expected one of F64, F32, U32, I32, U8, BOOL, got "I64"/,
    );
    expect(bad({ w: { dtype: "U8", shape: [1.5], data: new Uint8Array(1) } })).toThrow(/shape/);
    expect(bad({ m: { dtype: "BOOL", shape: [1], data: Uint8Array.from([7]) } })).toThrow(
      /tensors\["m"\]\.data\[0\] expected 0 or 1, got 7/,
    );
    expect(bad({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } })).toThrow(
      /names other than/,
    );
    expect(bad({}, { epochs: 3 })).toThrow(/metadata\["epochs"\] expected a string, got 3/);
  });

  it("treats a tensor or metadata key named __proto__ as a plain name", () => {
    const tensors = JSON.parse('{"__proto__": {"dtype": "U8", "shape": [1]}}');
    Object.getOwnPropertyDescriptor(tensors, "__proto__")!.value.data = Uint8Array.of(9);
    const metadata = JSON.parse('{"__proto__": "x"}');
    const decoded = decodeSafetensors(encodeSafetensors(tensors, metadata));
    expect(Object.keys(decoded.tensors)).toEqual(["__proto__"]);
    expect(Object.getOwnPropertyDescriptor(decoded.tensors, "__proto__")?.value.data).toEqual(
      Uint8Array.of(9),
    );
    expect(Object.getOwnPropertyDescriptor(decoded.metadata, "__proto__")?.value).toBe("x");
  });

  it("copies on decode, so the result does not alias the input bytes", () => {
    const bytes = encodeSafetensors({ w: { dtype: "F64", shape: [1], data: Float64Array.of(2) } });
    const { tensors } = decodeSafetensors(bytes);
    bytes.fill(0);
    expect(tensors.w!.data[0]).toBe(2);
    // Subarray views at odd byte offsets decode too.
    const shifted = new Uint8Array(bytes.length + 3);
    const again = encodeSafetensors({ w: { dtype: "F64", shape: [1], data: Float64Array.of(5) } });
    shifted.set(again, 3);
    expect(decodeSafetensors(shifted.subarray(3)).tensors.w!.data[0]).toBe(5);
  });
});
