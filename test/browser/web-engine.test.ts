import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DemoState } from "../../examples/web/main.js";
import { buildPage, servePage } from "../../examples/web/serve.js";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium } from "../helpers/chromium.js";

/** The whole demo (3 rounds × 300 simulations, predict) on a loaded 2-core machine. */
const DEMO_MS = 90_000;

if (!haveChromium) {
  console.log(`Web engine test skipped: no Chromium at ${CHROMIUM} (set NBI_CHROMIUM)`);
}

/** The contract page's script: the five store checks on IndexedDB stores, by name. */
const CONTRACT_ENTRY = `
import { storeContract } from "./test/inference/store-contract.ts";
import {
  BrowserNBI,
  deleteIndexedDbStore,
  hasIndexedDb,
  openIndexedDbStore,
  priors,
} from "./src/browser.ts";
let n = 0;
let name = "";
const target = {
  fresh: async (meta) => {
    name = "contract-" + n++;
    await deleteIndexedDbStore(name);
    return openIndexedDbStore(name, meta);
  },
  reopen: (meta) => openIndexedDbStore(name, meta),
};
globalThis.runContract = async () => {
  const results = { hasIndexedDb: hasIndexedDb(), checks: {} };
  for (const [check, run] of Object.entries(storeContract)) {
    try {
      await run(target);
      results.checks[check] = "ok";
    } catch (error) {
      results.checks[check] = String(error && error.message ? error.message : error);
    }
  }
  return results;
};
globalThis.fitWithMissingWorker = async (workers) => {
  const engine = new BrowserNBI({
    flow: { nDims: 1, flowHidden: 8, numBlocks: 1 },
    featurizer: { type: "mlp", dimIn: 2, dimOut: 2, hidden: [4] },
    priors: [priors.uniform(0, 1)],
    simulator: { workerUrl: new URL("./missing-worker.js", location.href), workers },
    dataShape: [2],
    store: "memory",
    backend: "cpu",
  });
  try {
    await engine.fit({ nSims: 20, nEpochs: 1 });
    return "fit resolved";
  } catch (error) {
    return String(error && error.message ? error.message : error);
  }
};
`;

describe.skipIf(!haveChromium)("the web demo in headless Chromium", () => {
  let dir = "";
  let server: Server | undefined;
  let browser: Browser | undefined;
  let url = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nbi-web-test-"));
    await buildPage(dir);
    await build({
      stdin: {
        contents: CONTRACT_ENTRY,
        resolveDir: fileURLToPath(new URL("../..", import.meta.url)),
        loader: "ts",
      },
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      outfile: join(dir, "contract.js"),
      logLevel: "silent",
    });
    await writeFile(
      join(dir, "contract.html"),
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
        '<script type="module" src="./contract.js"></script>',
    );
    ({ server, url } = await servePage(dir));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    "runs the sine demo: rounds, IndexedDB, simulations in workers, predict's n_eff",
    async () => {
      const page = await browser!.newPage();
      const problems: string[] = [];
      const workers: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console error: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("worker", (w) => workers.push(w.url()));
      try {
        const t0 = performance.now();
        await page.goto(url, { timeout: 30_000 });
        await page.waitForFunction(
          () => {
            const s = (globalThis as { nbiDemo?: { state: string } }).nbiDemo?.state;
            return s === "done" || s === "error";
          },
          null,
          { timeout: DEMO_MS, polling: 250 },
        );
        const seconds = (performance.now() - t0) / 1000;
        const demo = (await page.evaluate(
          () => (globalThis as unknown as { nbiDemo: unknown }).nbiDemo,
        )) as DemoState;
        const text = async (id: string) => (await page.locator(`#${id}`).textContent()) ?? "";
        console.log(
          `web demo: ${seconds.toFixed(1)} s in the page (fit ${demo.seconds?.fit.toFixed(1)} s, ` +
            `predict ${demo.seconds?.predict.toFixed(1)} s) on ${demo.backend}; n_eff per round ` +
            `${demo.rounds.map((r) => r.nEff.toFixed(1)).join(", ")}; predict n_eff ` +
            `${demo.predict?.ess.toFixed(1)} of ${demo.predict?.nSimulations}; means ${demo.mean?.map((m) => m.toFixed(2))}`,
        );
        expect(demo.error).toBeUndefined();
        expect(demo.state).toBe("done");
        expect(problems).toEqual([]);

        // Three rounds of 300 simulations, each with importance weights; the last round (drawn
        // from the surrogate) beats round 0's prior draws (measured n_eff 0.2, 1.1, 13.1).
        expect(demo.rounds.map((r) => r.round)).toEqual([0, 1, 2]);
        for (const r of demo.rounds) {
          expect(r.nSimulated).toBe(300);
          expect(r.nEff).toBeGreaterThan(0);
          expect(r.efficiency).toBeCloseTo(r.nEff / 300, 6);
        }
        expect(demo.rounds[2]!.nEff).toBeGreaterThan(5);
        expect(demo.rounds[2]!.nEff).toBeGreaterThan(5 * demo.rounds[0]!.nEff);
        expect(await page.locator("#rounds tr").count()).toBe(4);

        // predict: 1000 weighted draws (adaptive stages after a pilot from the surrogate) whose
        // n_eff is a usable posterior (measured 378 of 1000; the surrogate alone gives far less).
        const post = demo.predict!;
        expect(post.nSimulations).toBe(1000);
        expect(post.ess).toBeGreaterThan(150);
        expect(await text("predict")).toContain(`n_eff ${post.ess.toFixed(0)} of`);
        // The weighted means lie near the truth (φ0 1.3, A 3, ω 20).
        const [phi0, amplitude, omega] = demo.mean!;
        expect(Math.abs(phi0! - 1.3)).toBeLessThan(0.6);
        expect(Math.abs(amplitude! - 3)).toBeLessThan(0.8);
        expect(Math.abs(omega! - 20)).toBeLessThan(2);

        // Where it ran: IndexedDB, the backend named on the page, every simulation in a worker.
        expect(demo.storeKind).toBe("indexeddb");
        expect(await text("store")).toContain("IndexedDB");
        expect(["cpu", "webgpu"]).toContain(demo.backend);
        expect(await text("backend")).toContain(demo.backend === "webgpu" ? "WebGPU" : "CPU");
        expect(workers.length).toBeGreaterThan(0);
        expect(workers.every((w) => w.endsWith("/sim-worker.js"))).toBe(true);
        expect(demo.simulationsRequested).toBe(900 + post.nSimulations);
        expect(demo.simulatedInWorkers).toBe(demo.simulationsRequested);
        // The corner plot: an SVG with the 3 diagonal histograms' frames and 3 × 600 scatter dots.
        expect(await page.locator("#corner svg").count()).toBe(1);
        expect(await page.locator("#corner svg circle").count()).toBe(3 * 600 + 3);
      } finally {
        await page.close();
      }
    },
    DEMO_MS + 30_000,
  );

  it("passes the store contract with the IndexedDB store", async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    try {
      await page.goto(`${url}contract.html`, { timeout: 30_000 });
      await page.waitForFunction(() => "runContract" in globalThis, null, { timeout: 30_000 });
      const result = (await page.evaluate(() =>
        (globalThis as unknown as { runContract(): Promise<unknown> }).runContract(),
      )) as { hasIndexedDb: boolean; checks: Record<string, string> };
      expect(result.hasIndexedDb).toBe(true);
      const names = Object.keys(result.checks);
      expect(names).toHaveLength(5);
      expect(result.checks).toEqual(Object.fromEntries(names.map((n) => [n, "ok"])));
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);

  it("rejects a fit whose worker module does not load, naming it", async () => {
    const page = await browser!.newPage();
    let workersStarted = 0;
    page.on("worker", () => workersStarted++);
    try {
      await page.goto(`${url}contract.html`, { timeout: 30_000 });
      await page.waitForFunction(() => "fitWithMissingWorker" in globalThis, null, {
        timeout: 30_000,
      });
      for (const workers of [1, 3]) {
        workersStarted = 0;
        const message = await page.evaluate(
          (w) =>
            (
              globalThis as unknown as { fitWithMissingWorker(w: number): Promise<string> }
            ).fitWithMissingWorker(w),
          workers,
        );
        expect(message, `${workers} workers`).toMatch(/missing-worker\.js.*did not load/);
        // Every copy failed to load; none was started again in its place.
        expect(workersStarted, `${workers} workers`).toBeLessThanOrEqual(workers);
      }
    } finally {
      await page.close();
    }
  }, 60_000);
});
