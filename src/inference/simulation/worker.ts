/**
 * The source of a simulation worker thread, run with `new Worker(source, { eval: true })`.
 * It is a plain CommonJS string on purpose: the library may itself run from TypeScript sources
 * (tsx, vitest), and a worker entry file would then need a TypeScript loader of its own.
 *
 * Protocol: workerData = { moduleUrl, exportName, typescript, tsxBases }. The worker imports the
 * simulator and posts {type: "ready"} or {type: "loadError", message}. It then receives arrays
 * of tasks {index, theta, seed}, runs them one at a time in order and posts for each
 * {type: "returned", index, value} or {type: "threw", index, message}. Running tasks in the order
 * received is what lets the pool know which θ was in flight when a worker dies.
 */
export const WORKER_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { createRequire } = require("node:module");
const { readFileSync } = require("node:fs");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const messageOf = (e) =>
  e instanceof Error ? e.message || e.name : typeof e === "string" ? e : String(e);

// tsx's ESM API registers its loader for this thread; looked up from the simulator's folder,
// the working directory and the library, since the eval'd worker has no folder of its own.
async function registerTsx(bases) {
  for (const base of bases) {
    try {
      const pkgPath = createRequire(base).resolve("tsx/package.json");
      const entry = JSON.parse(readFileSync(pkgPath, "utf8")).exports["./esm/api"].import;
      const file = typeof entry === "string" ? entry : entry.default;
      const api = await import(pathToFileURL(path.join(path.dirname(pkgPath), file)).href);
      api.register();
      return true;
    } catch {}
  }
  return false;
}

async function load() {
  const { moduleUrl, exportName, typescript, tsxBases } = workerData;
  const registered = typescript ? await registerTsx(tsxBases) : false;
  let mod;
  try {
    mod = await import(moduleUrl);
  } catch (e) {
    if (typescript && !registered) {
      throw new Error(
        "cannot load a TypeScript simulator in a worker without tsx (npm install --save-dev tsx), " +
          "or compile the simulator to JavaScript: " + messageOf(e),
      );
    }
    throw e;
  }
  const fn = mod[exportName];
  if (typeof fn !== "function") {
    const names = Object.keys(mod).join(", ") || "none";
    throw new Error("expected a function export " + JSON.stringify(exportName) + ", found exports: " + names);
  }
  return fn;
}

load().then(
  (fn) => {
    const queue = [];
    let running = false;
    async function drain() {
      running = true;
      while (queue.length > 0) {
        const task = queue.shift();
        let value;
        try {
          value = await fn(task.theta, { index: task.index, seed: task.seed });
        } catch (e) {
          parentPort.postMessage({ type: "threw", index: task.index, message: messageOf(e) });
          continue;
        }
        try {
          parentPort.postMessage({ type: "returned", index: task.index, value });
        } catch (e) {
          // Not cloneable (functions, symbols): the pool reports it as a malformed output.
          parentPort.postMessage({ type: "returned", index: task.index, value: String(value) });
        }
      }
      running = false;
    }
    parentPort.on("message", (tasks) => {
      for (const t of tasks) queue.push(t);
      if (!running) drain();
    });
    parentPort.postMessage({ type: "ready" });
  },
  (e) => {
    parentPort.postMessage({ type: "loadError", message: messageOf(e) });
  },
);
`;
