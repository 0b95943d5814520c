import { existsSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gemm } from "../../src/ops/cpu/matmul.js";
import {
  Code,
  encodeModule,
  fmaSupported,
  simdSupported,
  sleb,
  uleb,
  ValType,
} from "../../src/ops/cpu/wasm/encoder.js";
import {
  indirectKernelModule,
  indirectMemory,
  indirectRun,
} from "../../src/ops/cpu/wasm/indirect-simd.js";
import { gemmSimd, matmulKernelModule, matmulSimd } from "../../src/ops/cpu/wasm/matmul-simd.js";
import { wasm } from "../../src/ops/cpu/wasm/runtime.js";

function decodeUleb(bytes: number[]): number {
  let result = 0;
  let mul = 1;
  for (const b of bytes) {
    result += (b & 0x7f) * mul;
    mul *= 128;
  }
  return result;
}
function decodeSleb(bytes: number[]): number {
  let result = 0;
  let shift = 0;
  let b = 0;
  for (b of bytes) {
    result |= (b & 0x7f) << shift;
    shift += 7;
  }
  if (shift < 32 && b & 0x40) result |= -1 << shift;
  return result;
}

describe("WebAssembly encoder", () => {
  it("LEB128 round-trips unsigned and signed 32-bit values", () => {
    expect(uleb(0)).toEqual([0]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    fc.assert(fc.property(fc.nat({ max: 2 ** 32 - 1 }), (n) => decodeUleb(uleb(n)) === n));
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (n) => decodeSleb(sleb(n)) === n,
      ),
    );
  });

  it("this engine runs WebAssembly SIMD", () => {
    expect(simdSupported()).toBe(true);
  });

  const simdOps: [string, (c: Code) => Code, (x: number, y: number) => number][] = [
    ["f32x4.add", (c) => c.f32x4Add(), (x, y) => x + y],
    ["f32x4.sub", (c) => c.f32x4Sub(), (x, y) => x - y],
    ["f32x4.mul", (c) => c.f32x4Mul(), (x, y) => x * y],
    ["f32x4.div", (c) => c.f32x4Div(), (x, y) => x / y],
    ["f32x4.min", (c) => c.f32x4Min(), (x, y) => Math.min(x, y)],
    ["f32x4.max", (c) => c.f32x4Max(), (x, y) => Math.max(x, y)],
  ];

  it.each(simdOps)("%s matches JavaScript (rounded to float32)", (_name, emit, js) => {
    // f(): out[0..4) = op(v128.load(0), v128.load(16)), stored at byte 32.
    const body = new Code().i32(32).i32(0).v128Load(0).i32(0).v128Load(16);
    emit(body).v128Store(0);
    const bytes = encodeModule([{ name: "f", params: [], results: [], locals: [], body }]);
    expect(wasm!.validate(bytes)).toBe(true);
    const memory = new wasm!.Memory({ initial: 1 });
    const f = new wasm!.Instance(new wasm!.Module(bytes), { env: { memory } }).exports
      .f as () => void;
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 8, maxLength: 8 }),
        (values) => {
          const mem = new Float32Array(memory.buffer);
          mem.set(values, 0);
          f();
          for (let l = 0; l < 4; l++) {
            expect(mem[8 + l]).toBe(Math.fround(js(mem[l]!, mem[4 + l]!)));
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it("splat, load32_splat and extract_lane move scalars as documented", () => {
    const body = new Code()
      .i32(16)
      .i32(0)
      .v128Load32Splat(4) // splat of the float at byte 4
      .v128Store(0)
      .i32(0)
      .f32Load(8)
      .f32x4Splat()
      .f32x4ExtractLane(2);
    const bytes = encodeModule([
      { name: "f", params: [], results: [ValType.f32], locals: [], body },
    ]);
    const memory = new wasm!.Memory({ initial: 1 });
    const f = new wasm!.Instance(new wasm!.Module(bytes), { env: { memory } }).exports
      .f as () => number;
    const mem = new Float32Array(memory.buffer);
    mem.set([1.5, 2.5, 3.5]);
    expect(f()).toBe(3.5);
    expect([...mem.subarray(4, 8)]).toEqual([2.5, 2.5, 2.5, 2.5]);
  });

  it("the generated matmul modules validate for every tile height", () => {
    for (const rows of [1, 2, 4, 6, 8]) expect(wasm!.validate(matmulKernelModule(rows))).toBe(true);
  });
});

function referenceMatmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number) {
  const out = new Float64Array(m * n);
  const scale = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let p = 0; p < k; p++) {
        s += a[i * k + p]! * b[p * n + j]!;
        t += Math.abs(a[i * k + p]! * b[p * n + j]!);
      }
      out[i * n + j] = s;
      scale[i * n + j] = t;
    }
  }
  return { out, scale };
}

describe("WebAssembly SIMD matmul", () => {
  it("matches a float64 reference on random shapes, including ragged tiles and empty axes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 21 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        (m, k, n, batch, shareB) => {
          const a = Float32Array.from({ length: batch * m * k }, () =>
            Math.fround(Math.random() * 2 - 1),
          );
          const bCount = shareB ? 1 : batch;
          const b = Float32Array.from({ length: bCount * k * n }, () =>
            Math.fround(Math.random() * 2 - 1),
          );
          const got = matmulSimd(a, [batch, m, k], b, shareB ? [k, n] : [batch, k, n]);
          expect(got.shape).toEqual([batch, m, n]);
          for (let t = 0; t < batch; t++) {
            const { out, scale } = referenceMatmul(
              a.subarray(t * m * k),
              b.subarray((shareB ? 0 : t) * k * n),
              m,
              k,
              n,
            );
            for (let i = 0; i < m * n; i++) {
              const g = got.data[t * m * n + i]!;
              expect(Math.abs(g - out[i]!)).toBeLessThanOrEqual(
                1e-6 * (1 + scale[i]!) * Math.sqrt(k + 1),
              );
            }
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it("broadcasts batch axes like NumPy ([2,1,M,K] @ [3,K,N] → [2,3,M,N])", () => {
    const [m, k, n] = [5, 7, 9];
    const a = Float32Array.from({ length: 2 * m * k }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: 3 * k * n }, (_, i) => Math.cos(i));
    const got = matmulSimd(a, [2, 1, m, k], b, [3, k, n]);
    expect(got.shape).toEqual([2, 3, m, n]);
    for (let x = 0; x < 2; x++) {
      for (let y = 0; y < 3; y++) {
        const { out } = referenceMatmul(a.subarray(x * m * k), b.subarray(y * k * n), m, k, n);
        const block = got.data.subarray((x * 3 + y) * m * n, (x * 3 + y + 1) * m * n);
        for (let i = 0; i < m * n; i++) expect(block[i]).toBeCloseTo(out[i]!, 4);
      }
    }
  });
});

/**
 * The kernel's own arithmetic in one pass, k ascending: acc = fround(acc + fround(a·b)), or with
 * `fused` one rounding per step, fround(acc + a·b) (the float32 product is exact in float64).
 */
function sequentialFloat32(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  fused = false,
) {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) {
        const prod = a[i * k + p]! * b[p * n + j]!;
        acc = Math.fround(acc + (fused ? prod : Math.fround(prod)));
      }
      out[i * n + j] = acc;
    }
  }
  return out;
}

/**
 * The one-pass reference the kernel must equal: relaxed SIMD's multiply-add is fused where the
 * CPU has FMA and separate where it does not, so with `fmaSupported` either is the kernel's.
 */
function onePass(a: Float32Array, b: Float32Array, m: number, k: number, n: number) {
  const plain = sequentialFloat32(a, b, m, k, n);
  if (!fmaSupported()) return [plain];
  return [sequentialFloat32(a, b, m, k, n, true), plain];
}

/** Whether `got` equals one of the references bit for bit. */
function equalsOne(got: Float32Array, refs: Float32Array[]): boolean {
  return refs.some((r) => r.length === got.length && r.every((v, i) => Object.is(v, got[i])));
}

describe("SIMD matmul over long reductions", () => {
  it("multiplies and adds in one rounding where the CPU has FMA", () => {
    const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
    if (!/^flags\s*:.*\bfma\b/m.test(cpuinfo)) {
      console.log("skipped: no /proc/cpuinfo reporting FMA here");
      return;
    }
    expect(fmaSupported()).toBe(true); // Node 20 and later, through relaxed SIMD
    const [m, k, n] = [8, 300, 16];
    const a = Float32Array.from({ length: m * k }, (_, i) => Math.fround(Math.sin(i * 1.3) / 3));
    const b = Float32Array.from({ length: k * n }, (_, i) => Math.fround(Math.cos(i * 0.7) / 7));
    const fused = sequentialFloat32(a, b, m, k, n, true);
    const plain = sequentialFloat32(a, b, m, k, n);
    expect(equalsOne(fused, [plain])).toBe(false); // the case tells the two apart
    expect(equalsOne(matmulSimd(a, [m, k], b, [k, n]).data, [fused])).toBe(true);
  });

  it("runs blocks of k that give the bits of one pass (transposed operands, threads)", () => {
    const cases: [number, number, number][] = [
      [5, 257, 9],
      [13, 600, 3],
      [128, 700, 64], // above the threading threshold
      [3, 1030, 17],
      [130, 515, 20], // a transposed A this large is packed by the 4 × 4 transpose kernel
    ];
    for (const [m, k, n] of cases) {
      const a = Float32Array.from({ length: m * k }, () => Math.fround(Math.random() - 0.5));
      const b = Float32Array.from({ length: k * n }, () => Math.fround(Math.random() - 0.5));
      const refs = onePass(a, b, m, k, n);
      const first = matmulSimd(a, [m, k], b, [k, n]).data;
      expect(equalsOne(first, refs)).toBe(true);
      const at = new Float32Array(k * m);
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) at[p * m + i] = a[i * k + p]!;
      expect(matmulSimd(at, [k, m], b, [k, n], true).data).toEqual(first);
      const bt = new Float32Array(n * k);
      for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[j * k + p] = b[p * n + j]!;
      expect(matmulSimd(a, [m, k], bt, [n, k], false, true).data).toEqual(first);
      expect(matmulSimd(at, [k, m], bt, [n, k], true, true).data).toEqual(first);
    }
  });
});

describe("strided SIMD gemm", () => {
  it("accumulates A·B with transposed operands exactly like the JS gemm", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 11 }),
        fc.integer({ min: 1, max: 19 }),
        fc.integer({ min: 1, max: 13 }),
        fc.boolean(),
        fc.boolean(),
        (m, n, k, transA, transB) => {
          const a = Float32Array.from({ length: m * k }, () => Math.fround(Math.random() - 0.5));
          const b = Float32Array.from({ length: k * n }, () => Math.fround(Math.random() - 0.5));
          const [aRs, aCs] = transA ? [1, m] : [k, 1];
          const [bRs, bCs] = transB ? [1, k] : [n, 1];
          const start = Float64Array.from({ length: m * n }, () => Math.random());
          const want = Float64Array.from(start);
          const got = Float64Array.from(start);
          gemm(m, n, k, a, 0, aRs, aCs, b, 0, bRs, bCs, want, 0, n);
          gemmSimd(m, n, k, a, 0, aRs, aCs, b, 0, bRs, bCs, got, 0, n);
          for (let i = 0; i < m * n; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("indirect SIMD gemm (rows through address tables)", () => {
  it("the generated modules validate for every tile height", () => {
    for (const rows of [1, 2, 4, 6, 8])
      expect(wasm!.validate(indirectKernelModule(rows))).toBe(true);
  });

  it("computes A·B with overlapping (shifted) rows, across reduction and row blocks", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 140 }),
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 1, max: 21 }),
        fc.integer({ min: 1, max: 3 }),
        (m, k, n, shift) => {
          // A's rows are windows of one signal shifted by `shift` (an implicit im2col); B's rows
          // are taken in a scrambled order.
          const signal = Float32Array.from({ length: m * shift + k + 8 }, () =>
            Math.fround(Math.random() - 0.5),
          );
          const bRowsData = Float32Array.from({ length: k * n }, () =>
            Math.fround(Math.random() - 0.5),
          );
          const order = Array.from({ length: k }, (_, p) => (p * 7) % Math.max(k, 1));
          const mp = Math.ceil(m / 4) * 4;
          const np = Math.ceil(n / 8) * 8;
          // Words: signal | B rows (padded to np + 8) | A table | B table | C.
          const bo = signal.length;
          const ta = bo + k * (np + 8);
          const tb = ta + mp;
          const co = tb + k;
          const { f32, i32 } = indirectMemory(co + mp * np);
          f32.set(signal, 0);
          for (let p = 0; p < k; p++) {
            f32.fill(0, bo + p * (np + 8), bo + (p + 1) * (np + 8));
            f32.set(bRowsData.subarray(p * n, (p + 1) * n), bo + p * (np + 8));
          }
          for (let i = 0; i < mp; i++) i32[ta + i] = (i < m ? i * shift : 0) * 4;
          for (let p = 0; p < k; p++) i32[tb + p] = (bo + order[p]! * (np + 8)) * 4;
          indirectRun(ta, tb, co, m, k, n);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let s = 0;
              let scale = 0;
              for (let p = 0; p < k; p++) {
                const v = signal[i * shift + p]! * bRowsData[order[p]! * n + j]!;
                s += v;
                scale += Math.abs(v);
              }
              expect(Math.abs(f32[co + i * np + j]! - s)).toBeLessThanOrEqual(
                1e-6 * (1 + scale) * Math.sqrt(k + 1),
              );
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
