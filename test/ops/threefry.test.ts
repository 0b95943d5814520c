import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { randomBits, threefry2x32 } from "../../src/ops/cpu/threefry.js";

function block(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const o0 = new Uint32Array(1);
  const o1 = new Uint32Array(1);
  threefry2x32(k0, k1, Uint32Array.of(c0), Uint32Array.of(c1), o0, o1);
  return [o0[0], o1[0]];
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe("threefry2x32", () => {
  // Random123 kat_vectors, Threefry-2x32 with 20 rounds.
  it.each([
    [0, 0, 0, 0, 0x6b200159, 0x99ba4efe],
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x1cb996fc, 0xbb002be7],
    [0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3, 0xc4923a9c, 0x483df7a0],
  ])("matches known answer for key (%i, %i) counter (%i, %i)", (k0, k1, c0, c1, e0, e1) => {
    expect(block(k0, k1, c0, c1)).toEqual([e0, e1]);
  });

  it("processes a batch the same as one counter at a time", () => {
    fc.assert(
      fc.property(u32, u32, fc.array(fc.tuple(u32, u32), { maxLength: 20 }), (k0, k1, ctrs) => {
        const x0 = Uint32Array.from(ctrs.map((c) => c[0]));
        const x1 = Uint32Array.from(ctrs.map((c) => c[1]));
        const o0 = new Uint32Array(ctrs.length);
        const o1 = new Uint32Array(ctrs.length);
        threefry2x32(k0, k1, x0, x1, o0, o1);
        ctrs.forEach(([c0, c1], i) => {
          expect([o0[i], o1[i]]).toEqual(block(k0, k1, c0, c1));
        });
      }),
    );
  });

  it("is deterministic", () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, (k0, k1, c0, c1) => {
        expect(block(k0, k1, c0, c1)).toEqual(block(k0, k1, c0, c1));
      }),
    );
  });

  it("allows the outputs to alias the inputs", () => {
    fc.assert(
      fc.property(u32, u32, fc.array(fc.tuple(u32, u32), { maxLength: 20 }), (k0, k1, ctrs) => {
        const x0 = Uint32Array.from(ctrs.map((c) => c[0]));
        const x1 = Uint32Array.from(ctrs.map((c) => c[1]));
        const e0 = new Uint32Array(ctrs.length);
        const e1 = new Uint32Array(ctrs.length);
        threefry2x32(k0, k1, x0, x1, e0, e1);
        threefry2x32(k0, k1, x0, x1, x0, x1);
        expect(x0).toEqual(e0);
        expect(x1).toEqual(e1);
      }),
    );
  });

  it("does not modify its inputs when outputs are separate", () => {
    const x0 = Uint32Array.of(1, 2, 3);
    const x1 = Uint32Array.of(4, 5, 6);
    threefry2x32(7, 8, x0, x1, new Uint32Array(3), new Uint32Array(3));
    expect(x0).toEqual(Uint32Array.of(1, 2, 3));
    expect(x1).toEqual(Uint32Array.of(4, 5, 6));
  });

  it("treats keys modulo 2^32", () => {
    expect(block(-1, -1, 0xffffffff, 0xffffffff)).toEqual([0x1cb996fc, 0xbb002be7]);
  });

  it("rejects mismatched lengths", () => {
    const a = new Uint32Array(2);
    const b = new Uint32Array(3);
    expect(() => threefry2x32(0, 0, a, b, a, a)).toThrow(RangeError);
  });
});

describe("randomBits", () => {
  it("uses the split-counter layout: halves of iota(m) as x0 and x1, outputs concatenated", () => {
    fc.assert(
      fc.property(u32, u32, fc.integer({ min: 0, max: 41 }), (k0, k1, n) => {
        const bits = randomBits(Uint32Array.of(k0, k1), n);
        expect(bits.length).toBe(n);
        const half = (n + (n % 2)) / 2;
        for (let j = 0; j < half; j++) {
          const [a, b] = block(k0, k1, j, j + half);
          expect(bits[j]).toBe(a);
          if (j + half < n) expect(bits[j + half]).toBe(b);
        }
      }),
    );
  });

  it("matches jax.random.split(PRNGKey(0)) under the classic threefry layout", () => {
    // split(key) = random_bits(key, 4 words) reshaped to (2, 2).
    expect(Array.from(randomBits(Uint32Array.of(0, 0), 4))).toEqual([
      4146024105, 967050713, 2718843009, 1272950319,
    ]);
  });

  it("computes each key's block independently of the rest of the batch", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(u32, u32), { minLength: 0, maxLength: 6 }),
        fc.integer({ min: 0, max: 17 }),
        (keys, n) => {
          const flat = Uint32Array.from(keys.flat());
          const bits = randomBits(flat, n);
          expect(bits.length).toBe(keys.length * n);
          keys.forEach(([k0, k1], k) => {
            expect(bits.subarray(k * n, (k + 1) * n)).toEqual(
              randomBits(Uint32Array.of(k0, k1), n),
            );
          });
        },
      ),
    );
  });

  it("gives different streams for different keys", () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, (a0, a1, b0, b1) => {
        fc.pre(a0 !== b0 || a1 !== b1);
        const a = randomBits(Uint32Array.of(a0, a1), 8);
        const b = randomBits(Uint32Array.of(b0, b1), 8);
        expect(a).not.toEqual(b);
      }),
    );
    // Neighbouring keys also differ word by word.
    const bits = randomBits(Uint32Array.of(0, 0, 0, 1, 1, 0), 16);
    const same01 = bits.subarray(0, 16).filter((w, i) => w === bits[16 + i]).length;
    const same02 = bits.subarray(0, 16).filter((w, i) => w === bits[32 + i]).length;
    expect(same01).toBe(0);
    expect(same02).toBe(0);
  });

  it("returns an empty array for count 0 or no keys", () => {
    expect(randomBits(Uint32Array.of(1, 2), 0).length).toBe(0);
    expect(randomBits(new Uint32Array(0), 5).length).toBe(0);
  });

  it("rejects an odd key array and a bad count", () => {
    expect(() => randomBits(Uint32Array.of(1, 2, 3), 4)).toThrow(RangeError);
    expect(() => randomBits(Uint32Array.of(1, 2), -1)).toThrow(RangeError);
    expect(() => randomBits(Uint32Array.of(1, 2), 1.5)).toThrow(RangeError);
  });

  it("sets each of the 32 bit positions about half the time", () => {
    const n = 100_000;
    const bits = randomBits(Uint32Array.of(0x12345678, 0x9abcdef0), n);
    const ones = new Array<number>(32).fill(0);
    for (let i = 0; i < n; i++) {
      const w = bits[i];
      for (let b = 0; b < 32; b++) ones[b] += (w >>> b) & 1;
    }
    // sd of p is 0.5/sqrt(1e5) ~ 0.0016, so 0.01 is > 6 sd.
    for (let b = 0; b < 32; b++) expect(Math.abs(ones[b] / n - 0.5)).toBeLessThan(0.01);
  });
});
