/**
 * What the browser page computes and what the answers must be, shared by the page
 * (page-entry.ts, bundled for Chromium) and the test (browser.test.ts, in Node). Only plain
 * numbers here: the expected values are closed forms written in JavaScript, not library calls.
 */

/** f(x) = Σ (x³ + sin x), so ∇f = 3x² + cos x. */
export const cubeSinX = [-1.5, -0.5, 0, 0.75, 2];

/** f(W) = Σ tanh(A W) (A is 2×3, W is 3×2), so ∇f = Aᵀ (1 − tanh²(A W)): matmul's transpose rule. */
export const tanhA = [
  [0.5, -1, 0.25],
  [1.5, 0.5, -0.75],
];
export const tanhW = [
  [0.2, -0.4],
  [0.1, 0.3],
  [-0.5, 0.6],
];

/**
 * Per-example gradients, vmap(grad(h)) over the rows xᵢ with w shared (inAxes [null, 0]) and
 * h(w, x) = (w·x)², so row i is 2 (w·xᵢ) xᵢ; and vmap of a row reduction g(x) = Σ x² + max x.
 */
export const perExampleW = [0.5, -1, 2];
export const perExampleX = [
  [1, 2, 3],
  [-1, 0.5, 0.25],
  [0, 0, 1],
  [2, -2, -0.5],
];

export const randomSeed = 42;
export const randomShape = [6];

export interface Adapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean | null;
  /** A few limits, enough to tell SwiftShader from lavapipe from a real GPU. */
  maxComputeWorkgroupSizeX: number;
  maxStorageBufferBindingSize: number;
}

/** What the page learns about WebGPU before using the library. */
export interface Diagnosis {
  userAgent: string;
  hasNavigatorGpu: boolean;
  /** The adapter from `navigator.gpu.requestAdapter()`, or null when none came back. */
  adapter: Adapter | null;
  /** An exception thrown while asking, if any. */
  error: string | null;
}

/** The numbers the page computed, and where it computed them. */
export interface PageResult {
  /** `np.backendInfo().current` after `useBackend`. */
  current: string;
  /** `np.backendInfo().choice.adapter` (the library's view of the adapter), if WebGPU. */
  libraryAdapter: { api: string; description: string; software: boolean } | null;
  /** The backend each result array lives on (read from the array, not from the setting). */
  resultBackends: string[];
  gradCubeSin: number[];
  gradTanh: number[];
  perExampleGrads: number[];
  rowReduce: number[];
  uniform: number[];
  milliseconds: number;
}

export function expectedGradCubeSin(): number[] {
  return cubeSinX.map((x) => 3 * x * x + Math.cos(x));
}

export function expectedGradTanh(): number[] {
  const [m, k, n] = [tanhA.length, tanhW.length, tanhW[0]!.length];
  const out: number[] = [];
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let i = 0; i < m; i++) {
        let aw = 0;
        for (let j = 0; j < k; j++) aw += tanhA[i]![j]! * tanhW[j]![c]!;
        s += tanhA[i]![r]! * (1 - Math.tanh(aw) ** 2);
      }
      out.push(s);
    }
  }
  return out;
}

export function expectedPerExampleGrads(): number[] {
  return perExampleX.flatMap((x) => {
    const wx = x.reduce((s, xi, i) => s + xi * perExampleW[i]!, 0);
    return x.map((xi) => 2 * wx * xi);
  });
}

export function expectedRowReduce(): number[] {
  return perExampleX.map((x) => x.reduce((s, v) => s + v * v, 0) + Math.max(...x));
}
