/**
 * Small seeded random number generators for the benchmark tasks' simulators and reference
 * samplers: plain float64 host code, deterministic given a seed, independent of the array library
 * (so a task's simulator is a pure function of θ and its seed).
 *
 * `Rng` is xoshiro128** (Blackman & Vigna) seeded through splitmix32; uniforms take 53 bits from
 * two outputs, normals come from the polar method. `Mt19937` with `legacyGauss` reproduces
 * NumPy's legacy `RandomState(seed).randn()` stream (Matsumoto & Nishimura's MT19937 with the
 * Knuth initialisation, Marsaglia's polar method with one cached value, as NumPy documents), used
 * only to rebuild the Bernoulli GLM's stimulus exactly as sbibm generated it.
 */

/** splitmix32: one 32-bit hash step, used to expand a seed into xoshiro's state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Marsaglia's polar method: two standard normals from uniforms in [0, 1), in the order NumPy's
 * legacy generator hands them out (f·x2 first, f·x1 cached).
 */
function polarPair(uniform: () => number): [number, number] {
  let x1: number;
  let x2: number;
  let r2: number;
  do {
    x1 = 2 * uniform() - 1;
    x2 = 2 * uniform() - 1;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1 || r2 === 0);
  const f = Math.sqrt((-2 * Math.log(r2)) / r2);
  return [f * x2, f * x1];
}

/** A seeded float64 generator (xoshiro128**): uniforms, normals, integers. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = Number.NaN;
  constructor(seed: number, stream = 0) {
    const st = { s: (seed >>> 0) ^ Math.imul(stream + 1, 0x632be5ab) };
    // Mix in the high bits of seeds beyond 2^32.
    st.s ^= Math.floor(seed / 4294967296) | 0;
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }
  /** The next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }
  /** A uniform on [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
  /** A uniform on (0, 1): never 0, so its logarithm is finite. */
  uniformOpen(): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    return u;
  }
  /** A standard normal (Marsaglia's polar method, the second value cached). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare;
      this.spare = Number.NaN;
      return s;
    }
    const [first, second] = polarPair(() => this.uniform());
    this.spare = second;
    return first;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The Mersenne Twister MT19937 (32-bit), initialised from an integer seed (init_genrand). */
export class Mt19937 {
  private readonly mt = new Uint32Array(624);
  private mti = 624;
  private spare = Number.NaN;
  constructor(seed: number) {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      // 1812433253 · prev + i, modulo 2^32, without losing bits to float64.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }
  /** The next 32-bit output. */
  nextU32(): number {
    const mt = this.mt;
    if (this.mti >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.mti = 0;
    }
    let y = mt[this.mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
  /** A uniform on [0, 1) with 53 bits (genrand_res53). */
  double(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
  /** NumPy's legacy standard normal (`RandomState.randn`): the polar method, one value cached. */
  legacyGauss(): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare;
      this.spare = Number.NaN;
      return s;
    }
    const [first, second] = polarPair(() => this.double());
    this.spare = second;
    return first;
  }
}
