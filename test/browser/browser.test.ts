import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as random from "../../src/ops/random.js";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium } from "../helpers/chromium.js";
import {
  type Diagnosis,
  expectedGradCubeSin,
  expectedGradTanh,
  expectedPerExampleGrads,
  expectedRowReduce,
  type PageResult,
  randomSeed,
  randomShape,
} from "./cases.js";

const STEP_MS = 30_000;

if (!haveChromium) {
  console.log(
    `Browser test skipped: no Chromium at ${CHROMIUM} (install Debian's with ` +
      "`apt-get install -y --no-install-recommends chromium`, as .ci/run does, or set NBI_CHROMIUM)",
  );
}

interface PageApi {
  diagnose(): Promise<Diagnosis>;
  run(backend: "webgpu" | "cpu"): Promise<PageResult>;
}

/** Rejects after `ms` with `what` in the message, so a hung GPU process fails the test clearly. */
function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Element-wise error relative to max(1, |expected|) at most `tol`; the message names the worst. */
function expectClose(name: string, actual: number[], expected: number[], tol: number): void {
  expect(actual.length, `${name}: length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  actual.forEach((a, i) => {
    const err = Math.abs(a - expected[i]!) / Math.max(1, Math.abs(expected[i]!));
    if (!(err <= worst)) [worst, at] = [err, i];
  });
  expect(
    worst,
    `${name}: element ${at} is ${actual[at]}, expected ${expected[at]} (got ${actual}, expected ${expected})`,
  ).toBeLessThanOrEqual(tol);
}

describe.skipIf(!haveChromium)("the library in headless Chromium", () => {
  let server: Server | undefined;
  let browser: Browser | undefined;
  let url = "";

  beforeAll(async () => {
    const bundled = await build({
      entryPoints: [fileURLToPath(new URL("./page-entry.ts", import.meta.url))],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
    });
    const script = bundled.outputFiles[0]!.text;
    // The empty icon keeps Chromium from asking for /favicon.ico (a 404 in the console).
    const html =
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
      '<script type="module" src="/page.js"></script>';
    server = createServer((req, res) => {
      const [type, body] =
        req.url === "/page.js"
          ? ["text/javascript", script]
          : req.url === "/"
            ? ["text/html", html]
            : [null, "not found"];
      res.writeHead(type ? 200 : 404, { "content-type": type ?? "text/plain" });
      res.end(body);
    });
    // 127.0.0.1 rather than a data: URL: navigator.gpu needs a secure context.
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: STEP_MS,
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  });

  /** A fresh page with the bundle loaded; console warnings/errors and page errors are collected. */
  async function openPage(): Promise<{ page: Page; problems: string[] }> {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await page.goto(url, { timeout: STEP_MS });
    await page.waitForFunction(() => "__nbi" in globalThis, null, { timeout: STEP_MS });
    return { page, problems };
  }

  function call<K extends keyof PageApi>(
    page: Page,
    method: K,
    ...args: Parameters<PageApi[K]>
  ): Promise<Awaited<ReturnType<PageApi[K]>>> {
    return withTimeout(
      `the page's ${method}(${args.join(", ")})`,
      STEP_MS,
      page.evaluate(
        ([m, a]) => {
          const api = (
            globalThis as unknown as { __nbi: Record<string, (...x: unknown[]) => unknown> }
          ).__nbi;
          return api[m]!(...a);
        },
        [method, args] as const,
      ) as Promise<Awaited<ReturnType<PageApi[K]>>>,
    );
  }

  /** The CPU backend of this Node process draws the same random numbers, bit for bit. */
  function expectedUniform(): number[] {
    const k = random.splitList(random.key(randomSeed))[1]!;
    return Array.from(random.uniform(k, randomShape).dataSync());
  }

  it("runs grad and vmap on WebGPU (navigator.gpu)", async (ctx) => {
    const { page, problems } = await openPage();
    try {
      const diagnosis = await call(page, "diagnose");
      if (!diagnosis.adapter) {
        const why = diagnosis.hasNavigatorGpu
          ? `navigator.gpu.requestAdapter() returned null${diagnosis.error ? ` (${diagnosis.error})` : ""}`
          : "navigator.gpu is missing";
        console.log(
          `Browser WebGPU test skipped: Chromium offered no WebGPU adapter: ${why}; ${problems.join("; ")}`.replace(
            /\s+/g,
            " ",
          ),
        );
        return ctx.skip();
      }
      const r = await call(page, "run", "webgpu");
      // Where it ran: the backend setting, every result array, and the browser's own GPU API.
      expect(r.current).toBe("webgpu");
      expect(r.resultBackends).toEqual(r.resultBackends.map(() => "webgpu"));
      expect(r.libraryAdapter?.api).toBe("navigator.gpu");
      if (diagnosis.adapter.isFallbackAdapter) expect(r.libraryAdapter?.software).toBe(true);
      // WGSL allows cos an absolute error of 2^-11 on [-pi, pi] (SwiftShader uses some of it).
      expectClose("grad of sum(x^3 + sin x)", r.gradCubeSin, expectedGradCubeSin(), 2 ** -10);
      expectClose("grad of sum(tanh(A W))", r.gradTanh, expectedGradTanh(), 1e-4);
      expectClose("vmap(grad((w.x)^2))", r.perExampleGrads, expectedPerExampleGrads(), 1e-6);
      expectClose("vmap(sum x^2 + max x)", r.rowReduce, expectedRowReduce(), 1e-6);
      expect(r.uniform).toEqual(expectedUniform());
      // A kernel WebGPU refused shows up only as a console warning: none may appear.
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("runs the same page on the CPU backend", async () => {
    const { page, problems } = await openPage();
    try {
      const r = await call(page, "run", "cpu");
      expect(r.current).toBe("cpu");
      expect(r.resultBackends).toEqual(r.resultBackends.map(() => "cpu"));
      expect(r.libraryAdapter).toBeNull();
      expectClose("grad of sum(x^3 + sin x)", r.gradCubeSin, expectedGradCubeSin(), 1e-6);
      expectClose("grad of sum(tanh(A W))", r.gradTanh, expectedGradTanh(), 1e-6);
      expectClose("vmap(grad((w.x)^2))", r.perExampleGrads, expectedPerExampleGrads(), 1e-6);
      expectClose("vmap(sum x^2 + max x)", r.rowReduce, expectedRowReduce(), 1e-6);
      expect(r.uniform).toEqual(expectedUniform());
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
