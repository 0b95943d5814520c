/**
 * Host-side randomness and numerics for the inference layer. Priors, data splits, noise on stored
 * simulations and importance weights are small float64 computations that must be exact and
 * reproducible whatever backend trains the network, so they run on the CPU backend from keys that
 * live there. Every draw still comes from an explicit Threefry key (`random`), never Math.random.
 */
import { fail } from "../errors.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import { defaultBackend, setDefaultBackend } from "../trace/backend.js";

/**
 * Runs `fn` with the CPU backend as the default (restoring the previous default afterwards). Keys
 * and draws need no such switch (`random.splitAt`, `foldIn`, `hostSplit`, `hostUniforms` and
 * `hostNormals` compute on the host from a CPU key); what remains is parameter initialisation,
 * whose initialisers build arrays and read them back on the host.
 */
export function onCpu<T>(fn: () => T): T {
  const previous = defaultBackend().name;
  if (previous === "cpu") return fn();
  setDefaultBackend("cpu");
  try {
    return fn();
  } finally {
    setDefaultBackend(previous);
  }
}

/**
 * A PRNG key on the CPU backend from an integer seed.
 *
 * @example
 * ```ts
 * const key = inference.hostKey(0); // a CPU key, whatever backend trains the network
 * ```
 */
export function hostKey(seed: number): Array {
  return random.key(seed, { backend: "cpu" });
}

/** `n` independent keys derived from `key` (on the CPU backend). */
export function splitKeys(key: Array, n: number): Array[] {
  return random.hostSplit(key, n);
}

/**
 * The `index`-th of a family of keys derived from `key`: keyAt(k, i) is the same key whatever
 * other indices are asked for, so round r's draws do not depend on how many rounds run.
 *
 * @example
 * ```ts
 * const roundKey = inference.keyAt(inference.hostKey(0), 3); // the same key however many others are derived
 * ```
 */
export function keyAt(key: Array, index: number): Array {
  if (!Number.isInteger(index) || index < 0)
    fail("keyAt", "index", "a non-negative integer", index);
  // The same key as splitList(key, index + 1)[index], computed alone (random.splitAt).
  return random.splitAt(key, index + 1, index);
}

/**
 * n uniforms on [0, 1) in float64.
 *
 * @example
 * ```ts
 * inference.uniforms(inference.hostKey(0), 5); // Float64Array of 5
 * ```
 */
export function uniforms(key: Array, n: number): Float64Array {
  return random.hostUniforms(key, n);
}

/**
 * n standard normals in float64.
 *
 * @example
 * ```ts
 * inference.normals(inference.hostKey(0), 5); // Float64Array of 5
 * ```
 */
export function normals(key: Array, n: number): Float64Array {
  return random.hostNormals(key, n);
}

/** A uniformly random permutation of 0..n−1 (Fisher–Yates driven by one key). */
export function permutation(key: Array, n: number): Int32Array {
  const u = uniforms(key, n);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u[i]! * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Lets timers and I/O run: setImmediate where it exists (Node), a zero timeout in browsers. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) =>
    typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0),
  );
}
