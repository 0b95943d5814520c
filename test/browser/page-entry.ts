/// <reference types="@webgpu/types" />
/**
 * The browser page's script, bundled by esbuild for Chromium (see browser.test.ts). It imports
 * only the array core (not src/index.ts), so the bundle holds what a browser user of the array
 * library would load. It exposes `globalThis.__nbi` for the test to call through Playwright.
 */

import * as np from "../../src/ops/np.js";
import * as random from "../../src/ops/random.js";
import type { Array as NbiArray } from "../../src/trace/array.js";
import type { ConcreteArray } from "../../src/trace/concrete-array.js";
import { grad, vmap } from "../../src/transforms/api.js";
import {
  cubeSinX,
  type Diagnosis,
  type PageResult,
  perExampleW,
  perExampleX,
  randomSeed,
  randomShape,
  tanhA,
  tanhW,
} from "./cases.js";

async function diagnose(): Promise<Diagnosis> {
  const nav = (globalThis as { navigator?: { gpu?: GPU; userAgent?: string } }).navigator;
  const result: Diagnosis = {
    userAgent: nav?.userAgent ?? "",
    hasNavigatorGpu: nav?.gpu !== undefined,
    adapter: null,
    error: null,
  };
  if (!nav?.gpu) return result;
  try {
    const adapter = await nav.gpu.requestAdapter();
    if (adapter) {
      const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
      result.adapter = {
        vendor: info.vendor,
        architecture: info.architecture,
        device: info.device,
        description: info.description,
        isFallbackAdapter: info.isFallbackAdapter ?? null,
        maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      };
    }
  } catch (e) {
    result.error = String(e);
  }
  return result;
}

async function run(backend: "webgpu" | "cpu"): Promise<PageResult> {
  const start = performance.now();
  await np.useBackend(backend);

  const gCubeSin = grad((x: NbiArray) => np.sum(np.add(np.mul(np.square(x), x), np.sin(x))))(
    np.array(cubeSinX, { dtype: "float32" }),
  ) as NbiArray;

  const a = np.array(tanhA, { dtype: "float32" });
  const gTanh = grad((w: NbiArray) => np.sum(np.tanh(np.matmul(a, w))))(
    np.array(tanhW, { dtype: "float32" }),
  ) as NbiArray;

  const h = (w: NbiArray, x: NbiArray) => np.square(np.dot(w, x));
  const perExample = vmap(grad(h), { inAxes: [null, 0] })(
    np.array(perExampleW, { dtype: "float32" }),
    np.array(perExampleX, { dtype: "float32" }),
  ) as NbiArray;
  const rowReduce = vmap((x: NbiArray) => np.add(np.sum(np.square(x)), np.max(x)))(
    np.array(perExampleX, { dtype: "float32" }),
  );

  const uniform = random.uniform(random.splitList(random.key(randomSeed))[1]!, randomShape);

  const outputs = [gCubeSin, gTanh, perExample, rowReduce, uniform];
  const values = await Promise.all(outputs.map(async (x) => Array.from(await x.data())));
  const adapter = np.backendInfo().choice.adapter;
  return {
    current: np.backendInfo().current,
    libraryAdapter: adapter
      ? { api: adapter.api, description: adapter.description, software: adapter.software }
      : null,
    resultBackends: outputs.map((x) => (x as ConcreteArray).backend.name),
    gradCubeSin: values[0]!,
    gradTanh: values[1]!,
    perExampleGrads: values[2]!,
    rowReduce: values[3]!,
    uniform: values[4]!,
    milliseconds: performance.now() - start,
  };
}

(globalThis as { __nbi?: unknown }).__nbi = { diagnose, run };
