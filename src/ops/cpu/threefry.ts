/**
 * Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy
 * as 1, 2, 3", SC 2011): a counter-based block cipher mapping a 64-bit key and a 64-bit counter
 * (each as two uint32 words) to two uint32 output words. This is the function JAX's default PRNG
 * is built on.
 *
 * All arithmetic is uint32: additions are `(a + b) >>> 0` and rotations are
 * `((x << r) | (x >>> (32 - r))) >>> 0`, so no `Math.imul` or BigInt is needed.
 */

/** Key schedule parity constant for Threefry with 32-bit words. */
const PARITY32 = 0x1bd11bda;

// Rotation constants for Threefry-2x32: rounds 0..3 use R0..R3, rounds 4..7 use R4..R7, repeating.
const R0 = 13;
const R1 = 15;
const R2 = 26;
const R3 = 6;
const R4 = 17;
const R5 = 29;
const R6 = 16;
const R7 = 24;

/**
 * Encrypts counters (x0[i], x1[i]) under key (k0, k1); writes results to out0/out1 (may alias
 * x0/x1). All values uint32.
 *
 * The key schedule is ks = [k0, k1, k0 ^ k1 ^ 0x1BD11BDA]. Before round 0 and after every 4th
 * round the key is injected: after s groups of 4 rounds, x0 += ks[s % 3] and
 * x1 += ks[(s + 1) % 3] + s. Each round is x0 += x1; x1 = rotl(x1, R); x1 ^= x0.
 */
export function threefry2x32(
  k0: number,
  k1: number,
  x0: Uint32Array,
  x1: Uint32Array,
  out0: Uint32Array,
  out1: Uint32Array,
): void {
  const n = x0.length;
  if (x1.length !== n || out0.length < n || out1.length < n) {
    throw new RangeError("threefry2x32: counter and output arrays must have matching lengths");
  }
  const ks0 = k0 >>> 0;
  const ks1 = k1 >>> 0;
  const ks2 = (ks0 ^ ks1 ^ PARITY32) >>> 0;
  // Precomputed per-injection addends (the "+ s" is folded into the second word).
  const i1a = ks1;
  const i1b = (ks2 + 1) >>> 0;
  const i2a = ks2;
  const i2b = (ks0 + 2) >>> 0;
  const i3a = ks0;
  const i3b = (ks1 + 3) >>> 0;
  const i4a = ks1;
  const i4b = (ks2 + 4) >>> 0;
  const i5a = ks2;
  const i5b = (ks0 + 5) >>> 0;

  for (let i = 0; i < n; i++) {
    let a = (x0[i] + ks0) >>> 0;
    let b = (x1[i] + ks1) >>> 0;

    // Rounds 0-3
    a = (a + b) >>> 0;
    b = (((b << R0) | (b >>> (32 - R0))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R1) | (b >>> (32 - R1))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R2) | (b >>> (32 - R2))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R3) | (b >>> (32 - R3))) ^ a) >>> 0;
    a = (a + i1a) >>> 0;
    b = (b + i1b) >>> 0;

    // Rounds 4-7
    a = (a + b) >>> 0;
    b = (((b << R4) | (b >>> (32 - R4))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R5) | (b >>> (32 - R5))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R6) | (b >>> (32 - R6))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R7) | (b >>> (32 - R7))) ^ a) >>> 0;
    a = (a + i2a) >>> 0;
    b = (b + i2b) >>> 0;

    // Rounds 8-11
    a = (a + b) >>> 0;
    b = (((b << R0) | (b >>> (32 - R0))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R1) | (b >>> (32 - R1))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R2) | (b >>> (32 - R2))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R3) | (b >>> (32 - R3))) ^ a) >>> 0;
    a = (a + i3a) >>> 0;
    b = (b + i3b) >>> 0;

    // Rounds 12-15
    a = (a + b) >>> 0;
    b = (((b << R4) | (b >>> (32 - R4))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R5) | (b >>> (32 - R5))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R6) | (b >>> (32 - R6))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R7) | (b >>> (32 - R7))) ^ a) >>> 0;
    a = (a + i4a) >>> 0;
    b = (b + i4b) >>> 0;

    // Rounds 16-19
    a = (a + b) >>> 0;
    b = (((b << R0) | (b >>> (32 - R0))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R1) | (b >>> (32 - R1))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R2) | (b >>> (32 - R2))) ^ a) >>> 0;
    a = (a + b) >>> 0;
    b = (((b << R3) | (b >>> (32 - R3))) ^ a) >>> 0;
    a = (a + i5a) >>> 0;
    b = (b + i5b) >>> 0;

    out0[i] = a;
    out1[i] = b;
  }
}

/**
 * Random bits for a batch of keys. `keys` holds nKeys keys as consecutive pairs
 * (keys[2k], keys[2k + 1]), so its length must be even. Returns nKeys * count uint32 words; key
 * k's words occupy [k * count, (k + 1) * count).
 *
 * Layout per key (JAX's classic, non-partitionable `threefry_random_bits`): with n = count, pad
 * to the even length m = n + (n % 2) and take the counters 0, 1, ..., m - 1. The first half
 * [0, m/2) is used as the x0 words and the second half [m/2, m) as the x1 words, i.e. counter
 * pair j is (j, j + m/2). After encryption the output is out0 followed by out1 (length m),
 * truncated to n words. Consequently a key's stream for one count is generally not a prefix of
 * its stream for another count.
 */
export function randomBits(keys: Uint32Array, count: number): Uint32Array {
  if (keys.length % 2 !== 0) {
    throw new RangeError("randomBits: keys must hold consecutive (k0, k1) pairs");
  }
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`randomBits: count must be a non-negative integer, got ${count}`);
  }
  const nKeys = keys.length / 2;
  const out = new Uint32Array(nKeys * count);
  if (count === 0 || nKeys === 0) return out;

  const half = (count + (count % 2)) / 2;
  // Counters are the same for every key; outputs are written to scratch buffers then copied.
  const c0 = new Uint32Array(half);
  const c1 = new Uint32Array(half);
  for (let j = 0; j < half; j++) {
    c0[j] = j;
    c1[j] = j + half;
  }
  const o0 = new Uint32Array(half);
  const o1 = new Uint32Array(half);
  const tail = count - half; // words taken from o1 (half or half - 1)
  for (let k = 0; k < nKeys; k++) {
    threefry2x32(keys[2 * k], keys[2 * k + 1], c0, c1, o0, o1);
    const base = k * count;
    out.set(o0, base);
    out.set(tail === half ? o1 : o1.subarray(0, tail), base + half);
  }
  return out;
}
