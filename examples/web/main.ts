/**
 * The sine light-curve demo in a web page, with `nbi/browser`: SNPE-IS rounds toward one noisy
 * observation of x(t) = A sin(ωt + φ0) (50 points, unit noise; φ0 ~ U(0, 2π), A ~ U(1, 5),
 * ω ~ U(2π, 12π)), then predict's importance-weighted posterior. The simulator runs in module Web
 * Workers (sim-worker.ts), the simulations are kept in IndexedDB, and the network trains on WebGPU
 * where the browser offers a hardware adapter, on the CPU otherwise.
 *
 * Build and serve it with `npx tsx examples/web/serve.ts` (see serve.ts). The page shows n_eff and
 * efficiency per round, predict's n_eff, and a corner-style scatter of resampled draws; it also
 * leaves its results on `window.nbiDemo` (read by test/browser/web-engine.test.ts).
 *
 * In a project of your own, import from "nbi/browser" and "nbi/core" instead of ../../src.
 */
import { BrowserNBI, deleteIndexedDbStore, type RoundRecord } from "../../src/browser.js";
import { LENGTH, NOISE_SIGMA, observation, priors, truth } from "../../src/cli/demo-models/sine.js";
import { np } from "../../src/core.js";

// The page's slice of the DOM (the project type-checks without the DOM library).
interface PageElement {
  textContent: string | null;
  innerHTML: string;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  body: { dataset: Record<string, string | undefined> };
};

/** What the page found, left on `window.nbiDemo` as it goes. */
export interface DemoState {
  state: "running" | "done" | "error";
  /** "webgpu" or "cpu", and why. */
  backend?: string;
  backendReason?: string;
  /** Where the simulations were kept: "indexeddb" or "memory". */
  storeKind?: string;
  rounds: { round: number; nSimulated: number; nEff: number; efficiency: number }[];
  predict?: { ess: number; efficiency: number; nSimulations: number; paretoK: number };
  /** Posterior means of the predict draws (weighted), in the priors' order. */
  mean?: number[];
  /** Simulations the Web Workers reported running. */
  simulatedInWorkers: number;
  /** Simulations the engine asked for (fit's rounds and predict's). */
  simulationsRequested?: number;
  seconds?: { fit: number; predict: number };
  error?: string;
}

// The settings: light enough for a couple of CPU cores in well under a minute.
const SETTINGS = {
  nRounds: 3,
  nSims: 300,
  nEpochs: 60,
  batchSize: 32,
  lr: 1e-3,
  predictSamples: 1000,
};
const STORE_NAME = "nbi-sine-demo";
const labels = Object.keys(priors);

const demo: DemoState = { state: "running", rounds: [], simulatedInWorkers: 0 };
(globalThis as { nbiDemo?: DemoState }).nbiDemo = demo;

function show(id: string, text: string): void {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

/** The channel sim-worker.ts reports on: { simulated: how many a batch held }. */
const SIM_CHANNEL = "nbi-sine-simulations";
const workerCount = new BroadcastChannel(SIM_CHANNEL);
workerCount.onmessage = (event: { data: { simulated: number } }) => {
  demo.simulatedInWorkers += event.data.simulated;
};

async function run(): Promise<void> {
  document.body.dataset.state = "running";
  const xObs = observation(0);
  // Each visit starts afresh (a store kept from an earlier visit would be resumed instead).
  await deleteIndexedDbStore(STORE_NAME);
  const engine = new BrowserNBI({
    flow: { nDims: 3, flowHidden: 32, numBlocks: 3 },
    featurizer: { type: "mlp", dimIn: LENGTH, dimOut: 16, hidden: [64, 64] },
    priors,
    simulator: { workerUrl: new URL("./sim-worker.js", import.meta.url) },
    dataShape: [LENGTH],
    storeName: STORE_NAME,
    // WebGPU on a hardware adapter, else the CPU (a software adapter is slower than the CPU).
    backend: "auto",
  });
  const { kind } = await engine.store();
  demo.storeKind = kind;
  show("store", `Simulations kept in: ${kind === "indexeddb" ? "IndexedDB" : kind}`);

  const t0 = performance.now();
  const fit = await engine.fit({
    xObs,
    xErr: NOISE_SIGMA,
    noise: NOISE_SIGMA,
    nRounds: SETTINGS.nRounds,
    nSims: SETTINGS.nSims,
    nEpochs: SETTINGS.nEpochs,
    batchSize: SETTINGS.batchSize,
    lr: SETTINGS.lr,
    onSimulate: (round, done, total) =>
      show("status", `Round ${round}: simulated ${done}/${total}`),
    onEpoch: (round, e) =>
      show("status", `Round ${round}: epoch ${e.epoch + 1}/${SETTINGS.nEpochs}`),
    onRound: (r: RoundRecord) => {
      demo.rounds.push({
        round: r.round,
        nSimulated: r.nSimulated,
        nEff: r.nEff ?? Number.NaN,
        efficiency: r.efficiency ?? Number.NaN,
      });
      showRounds();
    },
  });
  const fitSeconds = (performance.now() - t0) / 1000;
  const info = np.backendInfo();
  demo.backend = fit.backend;
  demo.backendReason = info.choice.reason;
  show("backend", `Network trained on: ${backendName(fit.backend)} (${info.choice.reason})`);

  show("status", "Predicting: drawing, simulating and weighting…");
  const t1 = performance.now();
  const post = await engine.predict(xObs, {
    xErr: NOISE_SIGMA,
    nSamples: SETTINGS.predictSamples,
    onSimulate: (done, total) => show("status", `Predict: simulated ${done}/${total}`),
  });
  const predictSeconds = (performance.now() - t1) / 1000;
  demo.predict = {
    ess: post.ess,
    efficiency: post.efficiency,
    nSimulations: post.nSimulations,
    paretoK: post.paretoK,
  };
  demo.mean = weightedMean(post.samples, post.weights, labels.length);
  demo.simulationsRequested = fit.history.reduce((n, r) => n + r.nDrawn, 0) + post.nSimulations;
  demo.seconds = { fit: fitSeconds, predict: predictSeconds };
  show(
    "predict",
    `predict: n_eff ${post.ess.toFixed(0)} of ${post.nSimulations} draws ` +
      `(efficiency ${(100 * post.efficiency).toFixed(1)}%, Pareto k̂ ${post.paretoK.toFixed(2)})`,
  );
  show(
    "means",
    `Weighted posterior means: ${labels
      .map((l, j) => `${l} ${demo.mean![j]!.toFixed(2)} (true ${truth[j]})`)
      .join(", ")}`,
  );
  const corner = document.getElementById("corner");
  if (corner) corner.innerHTML = cornerSvg(resample(post.samples, post.weights, 3, 600), 3);

  // The workers' counts travel on their own channel: wait (briefly) for the last ones.
  const until = performance.now() + 2000;
  while (demo.simulatedInWorkers < demo.simulationsRequested && performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  show(
    "workers",
    `Simulations run in Web Workers: ${demo.simulatedInWorkers} of ${demo.simulationsRequested}`,
  );
  show(
    "status",
    `Done: fit ${fitSeconds.toFixed(1)} s (${fit.stopped}), predict ${predictSeconds.toFixed(1)} s`,
  );
  demo.state = "done";
  document.body.dataset.state = "done";
}

function backendName(b: string): string {
  return b === "webgpu" ? "WebGPU" : "CPU";
}

function showRounds(): void {
  const rows = demo.rounds.map(
    (r) =>
      `<tr><td>${r.round}</td><td>${r.nSimulated}</td><td>${r.nEff.toFixed(1)}</td>` +
      `<td>${(100 * r.efficiency).toFixed(1)}%</td></tr>`,
  );
  const table = document.getElementById("rounds");
  if (table) {
    table.innerHTML =
      "<tr><th>round</th><th>simulations</th><th>n_eff</th><th>efficiency</th></tr>" +
      rows.join("");
  }
}

function weightedMean(samples: Float64Array, weights: Float64Array, d: number): number[] {
  const mean = new Array<number>(d).fill(0);
  weights.forEach((w, i) => {
    for (let j = 0; j < d; j++) mean[j]! += w * samples[i * d + j]!;
  });
  return mean;
}

/** `m` draws picked in proportion to their weights (systematic resampling), n × d → m × d. */
function resample(samples: Float64Array, weights: Float64Array, d: number, m: number): number[][] {
  const out: number[][] = [];
  const total = weights.reduce((a, b) => a + b, 0);
  let i = 0;
  let cumulative = weights[0]! / total;
  const u0 = 0.5 / m;
  for (let k = 0; k < m; k++) {
    const u = u0 + k / m;
    while (u > cumulative && i < weights.length - 1) cumulative += weights[++i]! / total;
    out.push(Array.from(samples.subarray(i * d, (i + 1) * d)));
  }
  return out;
}

/** A corner-style plot: histograms on the diagonal, scatter below it, the truth in red. */
function cornerSvg(draws: number[][], d: number): string {
  const cell = 170;
  const pad = 40;
  const size = pad + d * cell;
  const ranges = Array.from({ length: d }, (_, j) => {
    const v = draws.map((p) => p[j]!).concat(truth[j]!);
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    const margin = 0.08 * (hi - lo || 1);
    return [lo - margin, hi + margin] as const;
  });
  const px = (j: number, v: number) =>
    pad + j * cell + 6 + ((v - ranges[j]![0]) / (ranges[j]![1] - ranges[j]![0])) * (cell - 12);
  const py = (i: number, v: number) =>
    i * cell + cell - 6 - ((v - ranges[i]![0]) / (ranges[i]![1] - ranges[i]![0])) * (cell - 12);
  const parts: string[] = [];
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      const x0 = pad + j * cell;
      const y0 = i * cell;
      parts.push(
        `<rect x="${x0 + 2}" y="${y0 + 2}" width="${cell - 4}" height="${cell - 4}" fill="none" stroke="#999"/>`,
      );
      if (i === j) {
        const bins = 20;
        const counts = new Array<number>(bins).fill(0);
        const [lo, hi] = ranges[j]!;
        for (const p of draws) {
          counts[Math.min(bins - 1, Math.floor(((p[j]! - lo) / (hi - lo)) * bins))]!++;
        }
        const top = Math.max(...counts);
        const w = (cell - 12) / bins;
        counts.forEach((c, b) => {
          const h = (c / top) * (cell - 20);
          parts.push(
            `<rect x="${(x0 + 6 + b * w).toFixed(1)}" y="${(y0 + cell - 6 - h).toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="#4c78a8"/>`,
          );
        });
        const tx = px(j, truth[j]!).toFixed(1);
        parts.push(
          `<line x1="${tx}" x2="${tx}" y1="${y0 + 4}" y2="${y0 + cell - 4}" stroke="#d62728"/>`,
        );
      } else {
        for (const p of draws) {
          parts.push(
            `<circle cx="${px(j, p[j]!).toFixed(1)}" cy="${py(i, p[i]!).toFixed(1)}" r="1.6" fill="#4c78a8" fill-opacity="0.45"/>`,
          );
        }
        parts.push(
          `<circle cx="${px(j, truth[j]!).toFixed(1)}" cy="${py(i, truth[i]!).toFixed(1)}" r="4" fill="#d62728"/>`,
        );
      }
    }
    parts.push(
      `<text x="${pad + i * cell + cell / 2}" y="${size - 8}" text-anchor="middle">${labels[i]}</text>`,
      `<text x="14" y="${i * cell + cell / 2}" text-anchor="middle" transform="rotate(-90 14 ${i * cell + cell / 2})">${labels[i]}</text>`,
    );
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" ` +
    `font-family="sans-serif" font-size="13">${parts.join("")}</svg>`
  );
}

run().catch((error: unknown) => {
  demo.state = "error";
  demo.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  document.body.dataset.state = "error";
  show("status", `Failed: ${demo.error}`);
  console.error(error);
});
